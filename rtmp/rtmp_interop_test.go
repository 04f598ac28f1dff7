//go:build interop

package rtmp

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/rtmp/flv"
)

// The interop tests publish with our Client to real servers (nginx with
// libnginx-mod-rtmp, ffmpeg -listen 1) and play from our Server with
// ffmpeg, then check what arrived with ffprobe/ffmpeg: codecs,
// resolution, frame count, a clean decode (-v error prints nothing) and
// the audio tone.

// requireTone decodes the audio of file at 8 kHz mono and checks that the
// middle second is a 1 kHz tone.
func requireTone(t *testing.T, file string) {
	t.Helper()
	pcm := testenv.DecodePCM(t, file, 8000)
	require.Greater(t, len(pcm), 16000, "less than 2 s of audio")
	mid := pcm[len(pcm)/2-4000 : len(pcm)/2+4000]
	require.Greater(t, testmedia.Goertzel(mid, 8000, 1000), 0.8, "no 1 kHz tone in the decoded audio")
}

// makeAAC encodes 4.2 s of a 1 kHz tone with ffmpeg's AAC encoder.
func makeAAC(t *testing.T) (frames [][]byte, asc []byte, rate int) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "tone.aac")
	out, err := exec.Command(testenv.LookPath(t, "ffmpeg"), "-nostdin", "-v", "error", "-f", "lavfi",
		"-i", "sine=frequency=1000:sample_rate=48000", "-t", "4.2", "-c:a", "aac", "-b:a", "64k", "-f", "adts", f).CombinedOutput()
	require.NoError(t, err, "%s", out)
	b, err := os.ReadFile(f)
	require.NoError(t, err)
	frames, asc, rate, err = adtsFrames(b)
	require.NoError(t, err)
	return frames, asc, rate
}

// publishMedia sends the clip (100 pictures, 4 s) with G.711 or AAC audio
// in timestamp order, starting at dts0.
func publishMedia(t *testing.T, c *Client, dts0 time.Duration, audio string, aacFrames [][]byte, asc []byte, aacRate int) {
	t.Helper()
	md := flv.Metadata{Width: 320, Height: 240, FrameRate: 25, VideoCodecID: flv.CodecAVC, Encoder: "sipstream test"}
	if audio == "aac" {
		md.AudioCodecID, md.AudioSampleRate = flv.SoundAAC, aacRate
		require.NoError(t, c.WriteMetadata(md))
		require.NoError(t, c.WriteAACConfig(asc))
	} else {
		md.AudioCodecID, md.AudioSampleRate = flv.SoundG711ALaw, 8000
		if audio == "g711u" {
			md.AudioCodecID = flv.SoundG711MuLaw
		}
		require.NoError(t, c.WriteMetadata(md))
	}
	tone := toneALaw(200)
	if audio == "g711u" {
		tone = toneULaw(200)
	}
	ai := 0
	for i, f := range clipFrames() {
		ts := dts0 + time.Duration(i)*40*time.Millisecond
		require.NoError(t, c.WriteH264(ts, ts, f.avcc, f.key))
		end := ts + 40*time.Millisecond
		switch audio {
		case "g711", "g711u":
			for ; ai < len(tone) && time.Duration(ai)*20*time.Millisecond+dts0 < end; ai++ {
				require.NoError(t, c.WriteG711(dts0+time.Duration(ai)*20*time.Millisecond, audio == "g711", tone[ai]))
			}
		case "aac":
			for ; ai < len(aacFrames) && dts0+aacPTS(ai, aacRate) < end; ai++ {
				require.NoError(t, c.WriteAAC(dts0+aacPTS(ai, aacRate), aacFrames[ai]))
			}
		}
	}
}

func checkRecording(t *testing.T, file, audio string) {
	t.Helper()
	streams := testenv.ProbeStreams(t, file)
	v, a := streams["video"], streams["audio"]
	require.Equal(t, "h264", v.CodecName)
	require.Equal(t, 320, v.Width)
	require.Equal(t, 240, v.Height)
	switch audio {
	case "aac":
		require.Equal(t, "aac", a.CodecName)
	case "g711":
		require.Equal(t, "pcm_alaw", a.CodecName)
		require.Equal(t, "8000", a.SampleRate)
	case "g711u":
		require.Equal(t, "pcm_mulaw", a.CodecName)
		require.Equal(t, "8000", a.SampleRate)
	}
	require.Equal(t, testmedia.ClipFrames, testenv.CountVideoFrames(t, file))
	require.Empty(t, testenv.DecodeErrors(t, file), "ffmpeg reported decoding errors")
	requireTone(t, file)
}

// waitListening waits until something accepts TCP on port.
func waitListening(t *testing.T, port int, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatal("server process exited")
		default:
		}
		var d net.Dialer
		if c, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("server did not start listening")
}

// waitFile waits until file exists and its size stops changing.
func waitFile(t *testing.T, file string) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	last := int64(-1)
	for time.Now().Before(deadline) {
		if st, err := os.Stat(file); err == nil && st.Size() > 0 {
			if st.Size() == last {
				return
			}
			last = st.Size()
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s not written", file)
}

func TestInteropNginx(t *testing.T) {
	// on_publish asks our HTTP handler, which refuses names not starting
	// with "s_" (as a stream-key check would).
	auth := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if !strings.HasPrefix(r.Form.Get("name"), "s_") {
			w.WriteHeader(http.StatusForbidden)
		}
	}))
	defer auth.Close()
	ngx := testenv.StartNginx(t, testenv.NginxConfig{Record: true, LiveDirectives: "on_publish " + auth.URL + "/auth;"})
	port, rec := ngx.RTMPPort, ngx.RecordDir
	aacFrames, asc, rate := makeAAC(t)
	for _, audio := range []string{"aac", "g711"} {
		t.Run(audio, func(t *testing.T) {
			ctx := testCtx(t)
			name := "s_" + audio
			c, err := Dial(ctx, fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s?token=x", port, name), ClientConfig{})
			require.NoError(t, err)
			publishMedia(t, c, 0, audio, aacFrames, asc, rate)
			// While the stream is live, nginx's statistics show what it
			// made of our metadata and sequence headers.
			var got *testenv.NginxStream
			for deadline := time.Now().Add(testTimeout); got == nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				streams, err := ngx.Streams(ctx)
				require.NoError(t, err)
				for _, st := range streams {
					if st.Name == name && st.Publishing != nil && st.Video.Codec != "" && st.Audio.Codec != "" {
						got = &st
					}
				}
			}
			require.NotNil(t, got, "stream not on nginx's statistics page")
			require.Equal(t, "H264", got.Video.Codec)
			require.Equal(t, "Baseline", got.Video.Profile)
			require.Equal(t, 320, got.Video.Width)
			require.Equal(t, 240, got.Video.Height)
			if audio == "aac" {
				require.Equal(t, "AAC", got.Audio.Codec)
				require.Equal(t, rate, got.Audio.SampleRate)
			} else {
				require.Equal(t, "G711A", got.Audio.Codec)
			}
			require.NoError(t, c.Close())
			file := filepath.Join(rec, name+".flv")
			waitFile(t, file)
			checkRecording(t, file, audio)
		})
	}
	t.Run("refused key", func(t *testing.T) {
		_, err := Dial(testCtx(t), fmt.Sprintf("rtmp://127.0.0.1:%d/live/WRONGKEY", port), ClientConfig{})
		var pe *PublishError
		require.ErrorAs(t, err, &pe, "%v", err)
		require.Equal(t, "publish", pe.Stage)
		require.NotContains(t, err.Error(), "WRONGKEY")
		t.Logf("nginx refused the key: %v", err)
	})
	t.Run("already publishing", func(t *testing.T) {
		ctx := testCtx(t)
		url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/s_dup", port)
		c, err := Dial(ctx, url, ClientConfig{})
		require.NoError(t, err)
		defer c.Close()
		_, err = Dial(ctx, url, ClientConfig{})
		require.ErrorIs(t, err, ErrBadName, "nginx-rtmp answers NetStream.Publish.BadName")
	})
}

// startFFmpeg starts ffmpeg with args and returns a function that waits
// for it to exit (testTimeout at most) and returns its combined output;
// it fails nothing, so comparison runs can only log.
func startFFmpeg(t *testing.T, args ...string) (wait func() (string, error)) {
	t.Helper()
	p := testenv.StartProcess(t, exec.Command(testenv.LookPath(t, "ffmpeg"), append([]string{"-nostdin", "-v", "error", "-y"}, args...)...))
	return func() (string, error) {
		err := p.Wait(testTimeout)
		return p.Output(), err
	}
}

// runFFmpeg is startFFmpeg whose wait fails the test when ffmpeg does.
func runFFmpeg(t *testing.T, args ...string) (wait func() string) {
	t.Helper()
	w := startFFmpeg(t, args...)
	return func() string {
		out, err := w()
		require.NoError(t, err, "ffmpeg: %s", out)
		return out
	}
}

func TestInteropFFmpegListen(t *testing.T) {
	for _, audio := range []string{"g711", "g711u"} {
		t.Run(audio, func(t *testing.T) {
			port := testenv.FreePort(t, "tcp")
			out := filepath.Join(t.TempDir(), "out.flv")
			wait := runFFmpeg(t, "-listen", "1", "-i", fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", port), "-c", "copy", out)
			c := dialRetry(t, fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", port), ClientConfig{})
			publishMedia(t, c, 0, audio, nil, nil, 0)
			require.NoError(t, c.Close())
			requireListenerClean(t, wait())
			checkRecording(t, out, audio)
		})
	}
}

// dialRetry dials until ffmpeg -listen listens. Dialing is the only
// probe: anything else would use up its single accept.
func dialRetry(t *testing.T, url string, cfg ClientConfig) *Client {
	t.Helper()
	ctx := testCtx(t)
	var err error
	for deadline := time.Now().Add(testTimeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var c *Client
		if c, err = Dial(ctx, url, cfg); err == nil {
			return c
		}
	}
	t.Fatalf("ffmpeg -listen never accepted: %v", err)
	return nil
}

// requireListenerClean checks ffmpeg -listen's output. ffmpeg 5.1's
// listener reports "<url>: Input/output error" when its publisher hangs
// up, whoever the publisher is (ffmpeg itself too), and exits with status
// 0. Anything else it prints is a failure.
func requireListenerClean(t *testing.T, output string) {
	t.Helper()
	var other []string
	for _, l := range strings.Split(strings.TrimSpace(output), "\n") {
		// ffmpeg 5.1 names the URL, 7 and later the demuxer.
		if l != "" && !strings.HasSuffix(l, "/live/x: Input/output error") &&
			!strings.HasSuffix(l, "Error during demuxing: Input/output error") {
			other = append(other, l)
		}
	}
	require.Empty(t, other, "ffmpeg -listen reported errors")
}

// TestInteropPlayFromServer publishes to our Server (plain and TLS) while
// ffmpeg plays the stream from it and records what it gets.
func TestInteropPlayFromServer(t *testing.T) {
	cert := testenv.SelfSigned(t, "localhost")
	for _, scheme := range []string{"rtmp", "rtmps"} {
		t.Run(scheme, func(t *testing.T) {
			cfg := ServerConfig{}
			if scheme == "rtmps" {
				cfg.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert.Certificate}}
			}
			s, addr := startServer(t, cfg)
			url := scheme + "://" + addr + "/live/x"
			out := filepath.Join(t.TempDir(), "play.flv")
			wait := runFFmpeg(t, "-i", url, "-c", "copy", out)
			waitSubscribers(t, s, "live/x", 1)
			ctx := testCtx(t)
			c, err := Dial(ctx, url, ClientConfig{TLSConfig: &tls.Config{RootCAs: cert.Pool}, StreamName: "", DialTimeout: testTimeout})
			require.NoError(t, err)
			publishMedia(t, c, 0, "g711", nil, nil, 0)
			require.NoError(t, c.Close())
			msg := wait()
			require.Empty(t, strings.TrimSpace(msg), "ffmpeg player reported errors")
			checkRecording(t, out, "g711")
		})
	}
}

// requireIncreasingDTS checks that the video packets of file have
// strictly increasing decoding times and returns the last one (ms).
func requireIncreasingDTS(t *testing.T, file string) float64 {
	t.Helper()
	out, err := exec.Command(testenv.LookPath(t, "ffprobe"), "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=dts", "-of", "csv=p=0", file).Output()
	require.NoError(t, err)
	prev := -1.0
	lines := strings.Fields(string(out))
	require.Len(t, lines, testmedia.ClipFrames)
	for _, l := range lines {
		d, err := strconv.ParseFloat(l, 64)
		require.NoError(t, err)
		require.Greater(t, d, prev)
		prev = d
	}
	return prev
}

// sendConfigsAtZero sends the AVC and AAC sequence headers at timestamp 0.
func sendConfigsAtZero(t *testing.T, c *Client, asc []byte) {
	t.Helper()
	sps, pps := clipParamSets(t)
	require.NoError(t, c.WriteAVCConfig(sps, pps))
	require.NoError(t, c.WriteAACConfig(asc))
}

// TestInteropTimestampWrap publishes across 0xFFFFFF ms (4 h 39 min 37 s),
// the point where RTMP needs the extended timestamp field, to our Server
// (written to FLV from a Subscription), to nginx-rtmp (its recording) and
// to ffmpeg -listen; each result must decode without errors, with every
// picture and increasing timestamps. "crossing" reaches the boundary by
// small deltas. "beyond" sends the AVC and AAC configurations at 0 and the
// media from past the boundary with 1 KiB chunks: the first IDR then goes
// out with an extended timestamp delta in its header and again in each of
// its continuation chunks, and the first AAC frame with one in its header.
// (Chunks of 64 bytes were tried first: nginx-rtmp then intermittently
// stalls on the connect that follows Set Chunk Size in the same read.)
func TestInteropTimestampWrap(t *testing.T) {
	aacFrames, asc, rate := makeAAC(t)
	ngx := testenv.StartNginx(t, testenv.NginxConfig{Record: true})
	nginxPort, rec := ngx.RTMPPort, ngx.RecordDir
	for _, tc := range []struct {
		name      string
		dts0      time.Duration
		chunkSize uint32
	}{
		{"crossing", (0xffffff - 2000) * time.Millisecond, 0},
		{"beyond", (0xffffff + 5000) * time.Millisecond, 1024},
	} {
		t.Run(tc.name+"/our server", func(t *testing.T) {
			s, addr := startServer(t, ServerConfig{})
			ctx := testCtx(t)
			sub := s.Subscribe("live", "long", 4096)
			defer sub.Close()
			c, err := Dial(ctx, "rtmp://"+addr+"/live/long", ClientConfig{ChunkSize: tc.chunkSize})
			require.NoError(t, err)
			var wg sync.WaitGroup
			var tags []flv.Tag
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					tag, err := sub.ReadTag(ctx)
					if err != nil {
						return
					}
					tags = append(tags, tag)
				}
			}()
			if tc.name == "beyond" {
				sendConfigsAtZero(t, c, asc)
			}
			publishMedia(t, c, tc.dts0, "aac", aacFrames, asc, rate)
			require.NoError(t, c.Close())
			wg.Wait()

			file := filepath.Join(t.TempDir(), "wrap.flv")
			f, err := os.Create(file)
			require.NoError(t, err)
			w, err := flv.NewWriter(f, true, true)
			require.NoError(t, err)
			var beyond bool
			for _, tag := range tags {
				beyond = beyond || tag.Timestamp > 0xffffff
				require.NoError(t, w.WriteTag(tag))
			}
			require.NoError(t, f.Close())
			require.True(t, beyond)
			checkRecording(t, file, "aac")
			require.InDelta(t, float64(tc.dts0/time.Millisecond)+99*40, requireIncreasingDTS(t, file), 1)
		})
		t.Run(tc.name+"/nginx", func(t *testing.T) {
			name := "wrap_" + tc.name
			c, err := Dial(testCtx(t), fmt.Sprintf("rtmp://127.0.0.1:%d/live/%s", nginxPort, name), ClientConfig{ChunkSize: tc.chunkSize})
			require.NoError(t, err)
			if tc.name == "beyond" {
				sendConfigsAtZero(t, c, asc)
			}
			publishMedia(t, c, tc.dts0, "aac", aacFrames, asc, rate)
			require.NoError(t, c.Close())
			file := filepath.Join(rec, name+".flv")
			waitFile(t, file)
			checkRecording(t, file, "aac")
			requireIncreasingDTS(t, file)
		})
		t.Run(tc.name+"/ffmpeg listen", func(t *testing.T) {
			port := testenv.FreePort(t, "tcp")
			out := filepath.Join(t.TempDir(), "out.flv")
			wait := runFFmpeg(t, "-listen", "1", "-i", fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", port), "-c", "copy", out)
			c := dialRetry(t, fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", port), ClientConfig{ChunkSize: tc.chunkSize})
			if tc.name == "beyond" {
				sendConfigsAtZero(t, c, asc)
			}
			publishMedia(t, c, tc.dts0, "aac", aacFrames, asc, rate)
			require.NoError(t, c.Close())
			requireListenerClean(t, wait())
			checkRecording(t, out, "aac")
			requireIncreasingDTS(t, out)
		})
	}
}

// TestInteropFFmpegPublishesToServer has ffmpeg publish H.264 + AAC to our
// Server; what a Subscription receives, written as FLV, must decode
// cleanly with every picture.
func TestInteropFFmpegPublishesToServer(t *testing.T) {
	var published []StreamInfo
	s, addr := startServer(t, ServerConfig{OnPublish: func(i StreamInfo) error { published = append(published, i); return nil }})
	ctx := testCtx(t)
	sub := s.Subscribe("live", "ff", 4096)
	defer sub.Close()
	var tags []flv.Tag
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			tag, err := sub.ReadTag(ctx)
			if err != nil {
				return
			}
			tags = append(tags, tag)
		}
	}()
	wait := runFFmpeg(t, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100",
		"-t", "3", "-c:v", "libx264", "-g", "25", "-bf", "2", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv",
		"rtmp://"+addr+"/live/ff?key=1")
	require.Empty(t, strings.TrimSpace(wait()))
	<-done
	require.Len(t, published, 1)
	require.Equal(t, "key=1", published[0].Query)

	file := filepath.Join(t.TempDir(), "ff.flv")
	f, err := os.Create(file)
	require.NoError(t, err)
	w, err := flv.NewWriter(f, true, true)
	require.NoError(t, err)
	for _, tag := range tags {
		require.NoError(t, w.WriteTag(tag))
	}
	require.NoError(t, f.Close())
	streams := testenv.ProbeStreams(t, file)
	require.Equal(t, "h264", streams["video"].CodecName)
	require.Equal(t, "aac", streams["audio"].CodecName)
	require.Equal(t, 75, testenv.CountVideoFrames(t, file))
	require.Empty(t, testenv.DecodeErrors(t, file), "ffmpeg reported decoding errors")
	requireTone(t, file)
}
