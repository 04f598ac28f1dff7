//go:build interop

package rtmp

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/abema/go-mp4"
	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/opus"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
)

// TestInteropEnhancedRTMP publishes HEVC and Opus with our Client's
// Enhanced RTMP methods to ffmpeg -listen, which records them (stream
// copy, Matroska), and checks the recording with ffprobe/ffmpeg: codecs,
// size, frame count, a clean decode and the keyframe flags, which come
// from the Enhanced RTMP frame type we send. The same media then goes
// through gortmplib's own Client and Writer to a second ffmpeg, logged
// side by side for comparison only.
//
// ffmpeg reads Enhanced RTMP HEVC from 6.1 on and Enhanced audio (Opus)
// from 8.0 on (7.1 says "Audio codec (9) is not implemented"); with an
// older ffmpeg the codec it cannot read is left out, and with one that
// reads neither (Debian 12 has 5.1) our publication is read by another
// implementation instead, gortmplib's ServerConn and Reader, and what it
// received is decoded by this ffmpeg (HEVC from Annex B) and compared
// packet by packet (Opus). To run the ffmpeg path there, put a newer
// ffmpeg/ffprobe first in PATH.
func TestInteropEnhancedRTMP(t *testing.T) {
	major, minor, ver := testenv.FFmpegVersion(t)
	hevcOK := major > 6 || (major == 6 && minor >= 1)
	opusOK := major >= 8
	t.Logf("ffmpeg version %s: reads Enhanced RTMP HEVC: %v, Opus: %v", ver, hevcOK, opusOK)
	if !hevcOK && !opusOK {
		t.Logf("ffmpeg %s reads no Enhanced RTMP (HEVC needs ffmpeg >= 6.1, Opus >= 8.0): gortmplib reads it, ffmpeg decodes", ver)
		readEnhancedWithGortmplib(t, makeEnhancedMedia(t, true, true))
		return
	}
	m := makeEnhancedMedia(t, hevcOK, opusOK)
	if hevcOK {
		t.Logf("test media: %d HEVC access units (keyframes at %v), hvcC %d bytes", len(m.frames), m.keyIndexes(), len(m.hvcc))
	}
	if opusOK {
		t.Logf("test media: %d Opus packets, OpusHead %d bytes", len(m.opusPackets), len(m.opusHead))
	}

	var ours, theirs enhancedReport
	t.Run("ours", func(t *testing.T) {
		ours = publishEnhancedOurs(t, m)
		t.Logf("ours: %s", ours)
		require.NoError(t, ours.err)
		file := ours.file
		streams := testenv.ProbeStreams(t, file)
		if hevcOK {
			v := streams["video"]
			require.Equal(t, "hevc", v.CodecName)
			require.Equal(t, 320, v.Width)
			require.Equal(t, 240, v.Height)
			require.InDelta(t, len(m.frames), testenv.CountVideoFrames(t, file), 2, "decoded video frames")
			require.Equal(t, m.keyIndexes(), ours.keyIdx, "video packets flagged as keyframes (K)")
		} else {
			t.Logf("HEVC not checked: ffmpeg %s cannot read Enhanced RTMP HEVC (needs >= 6.1)", ver)
		}
		if opusOK {
			a := streams["audio"]
			require.Equal(t, "opus", a.CodecName)
			require.Equal(t, "48000", a.SampleRate)
			require.InDelta(t, len(m.opusPackets), ours.audioPackets, 2, "Opus packets")
		} else {
			t.Logf("Opus not checked: ffmpeg %s cannot read Enhanced RTMP Opus (needs >= 8.0; 7.1 says Audio codec (9) is not implemented)", ver)
		}
		require.Empty(t, ours.decodeErrors, "ffmpeg reported decoding errors")
	})

	// For comparison only: gortmplib's Client and Writer, nothing asserted.
	t.Run("gortmplib", func(t *testing.T) {
		theirs = publishEnhancedGortmplib(t, m)
		t.Logf("gortmplib: %s", theirs)
	})
	t.Logf("side by side (ffmpeg %s):\n  ours:      %s\n  gortmplib: %s", ver, ours, theirs)
}

// enhancedMedia is 4 s of HEVC (25 fps, a keyframe each second, no
// B-frames) and Opus (48 kHz mono, 20 ms packets) made by ffmpeg.
type enhancedMedia struct {
	vps, sps, pps []byte
	hvcc          []byte
	frames        [][][]byte // access units: NAL units without start codes or parameter sets
	keys          []bool
	opusHead      []byte
	opusPackets   [][]byte
}

func (m *enhancedMedia) keyIndexes() []int {
	var idx []int
	for i, k := range m.keys {
		if k {
			idx = append(idx, i)
		}
	}
	return idx
}

func makeEnhancedMedia(t *testing.T, withHEVC, withOpus bool) *enhancedMedia {
	t.Helper()
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	m := &enhancedMedia{}
	if withHEVC {
		f := filepath.Join(dir, "v.hevc")
		out, err := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
			"-t", "4", "-pix_fmt", "yuv420p", "-c:v", "libx265", "-preset", "ultrafast",
			"-x265-params", "keyint=25:min-keyint=25:scenecut=0:bframes=0:log-level=error", "-f", "hevc", f).CombinedOutput()
		require.NoError(t, err, "libx265: %s", out)
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		m.splitHEVC(t, b)
		m.hvcc = marshalHvcC(t, m.vps, m.sps, m.pps)
	}
	if withOpus {
		f := filepath.Join(dir, "a.ogg")
		out, err := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
			"-t", "4", "-ac", "1", "-c:a", "libopus", "-b:a", "32k", "-frame_duration", "20", "-f", "ogg", f).CombinedOutput()
		require.NoError(t, err, "libopus: %s", out)
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		pkts, err := oggPackets(b)
		require.NoError(t, err)
		require.Greater(t, len(pkts), 2)
		require.True(t, bytes.HasPrefix(pkts[0], []byte("OpusHead")), "first Ogg packet is not OpusHead")
		require.True(t, bytes.HasPrefix(pkts[1], []byte("OpusTags")), "second Ogg packet is not OpusTags")
		m.opusHead, m.opusPackets = pkts[0], pkts[2:]
	}
	return m
}

// splitHEVC cuts an Annex B stream into access units: one slice per
// picture (libx265's default), prefix NAL units (SEI, AUD) going with the
// next picture, suffix SEI with the previous one, and VPS/SPS/PPS kept
// aside for the hvcC.
func (m *enhancedMedia) splitHEVC(t *testing.T, b []byte) {
	t.Helper()
	// mediacommon's h264.AnnexB refuses more than 50 NAL units: the
	// start codes are searched here.
	var nalus [][]byte
	for _, part := range bytes.Split(b, []byte{0, 0, 1}) {
		if part = bytes.TrimRight(part, "\x00"); len(part) > 0 {
			nalus = append(nalus, part)
		}
	}
	var pending [][]byte
	for _, n := range nalus {
		require.NotEmpty(t, n)
		typ := h265.NALUType((n[0] >> 1) & 0x3f)
		switch {
		case typ == h265.NALUType_VPS_NUT:
			m.vps = n
		case typ == h265.NALUType_SPS_NUT:
			m.sps = n
		case typ == h265.NALUType_PPS_NUT:
			m.pps = n
		case typ == h265.NALUType_SUFFIX_SEI_NUT && len(m.frames) > 0:
			m.frames[len(m.frames)-1] = append(m.frames[len(m.frames)-1], n)
		case typ < 32: // VCL
			au := append(pending, n)
			pending = nil
			m.frames = append(m.frames, au)
			m.keys = append(m.keys, h265.IsRandomAccess(au))
		default:
			pending = append(pending, n)
		}
	}
	require.NotNil(t, m.vps, "no VPS")
	require.NotNil(t, m.sps, "no SPS")
	require.NotNil(t, m.pps, "no PPS")
	require.Len(t, m.frames, 100) // 4 s at 25 fps
}

// lengthPrefixed joins NAL units with 4-byte lengths, as WriteHEVC takes
// them.
func lengthPrefixed(au [][]byte) []byte {
	var b []byte
	for _, n := range au {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

// marshalHvcC builds an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 8.3.3.1) from the parameter sets, the way gortmplib's writer does, and
// returns the record without the box header.
func marshalHvcC(t *testing.T, vps, sps, pps []byte) []byte {
	t.Helper()
	var s h265.SPS
	require.NoError(t, s.Unmarshal(sps))
	require.Greater(t, len(sps), 12)
	arr := func(typ h265.NALUType, n []byte) mp4.HEVCNaluArray {
		return mp4.HEVCNaluArray{Completeness: true, NaluType: byte(typ), NumNalus: 1,
			Nalus: []mp4.HEVCNalu{{Length: uint16(len(n)), NALUnit: n}}}
	}
	box := &mp4.HvcC{
		ConfigurationVersion:        1,
		GeneralProfileSpace:         s.ProfileTierLevel.GeneralProfileSpace,
		GeneralTierFlag:             s.ProfileTierLevel.GeneralTierFlag == 1,
		GeneralProfileIdc:           s.ProfileTierLevel.GeneralProfileIdc,
		GeneralProfileCompatibility: s.ProfileTierLevel.GeneralProfileCompatibilityFlag,
		GeneralConstraintIndicator:  [6]uint8{sps[7], sps[8], sps[9], sps[10], sps[11], sps[12]},
		GeneralLevelIdc:             s.ProfileTierLevel.GeneralLevelIdc,
		Reserved1:                   0b1111,
		Reserved2:                   0b111111,
		Reserved3:                   0b111111,
		ChromaFormatIdc:             uint8(s.ChromaFormatIdc),
		Reserved4:                   0b11111,
		BitDepthLumaMinus8:          uint8(s.BitDepthLumaMinus8),
		Reserved5:                   0b11111,
		BitDepthChromaMinus8:        uint8(s.BitDepthChromaMinus8),
		NumTemporalLayers:           1,
		LengthSizeMinusOne:          3,
		NumOfNaluArrays:             3,
		NaluArrays: []mp4.HEVCNaluArray{
			arr(h265.NALUType_VPS_NUT, vps), arr(h265.NALUType_SPS_NUT, sps), arr(h265.NALUType_PPS_NUT, pps),
		},
	}
	var buf bytes.Buffer
	_, err := mp4.Marshal(&buf, box, mp4.Context{})
	require.NoError(t, err)
	return buf.Bytes()
}

// oggPackets returns the packets of the single logical stream of an Ogg
// file (RFC 3533), joining those that span pages.
func oggPackets(b []byte) ([][]byte, error) {
	var pkts [][]byte
	var cur []byte
	for len(b) > 0 {
		if len(b) < 27 || string(b[:4]) != "OggS" {
			return nil, errors.New("ogg: bad page header")
		}
		nseg := int(b[26])
		if len(b) < 27+nseg {
			return nil, errors.New("ogg: short segment table")
		}
		lacing := b[27 : 27+nseg]
		body := b[27+nseg:]
		for _, l := range lacing {
			if len(body) < int(l) {
				return nil, errors.New("ogg: short page")
			}
			cur = append(cur, body[:l]...)
			body = body[l:]
			if l < 255 {
				pkts = append(pkts, cur)
				cur = nil
			}
		}
		b = body
	}
	return pkts, nil
}

// publishEnhanced sends the media interleaved in timestamp order: the
// pictures 40 ms apart, the Opus packets 20 ms apart, from 0.
func publishEnhanced(m *enhancedMedia, video func(i int, ts time.Duration) error, audio func(i int, ts time.Duration) error) error {
	ai := 0
	sendAudioUntil := func(end time.Duration) error {
		for ; ai < len(m.opusPackets) && time.Duration(ai)*20*time.Millisecond < end; ai++ {
			if err := audio(ai, time.Duration(ai)*20*time.Millisecond); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range m.frames {
		ts := time.Duration(i) * 40 * time.Millisecond
		if err := sendAudioUntil(ts); err != nil {
			return err
		}
		if err := video(i, ts); err != nil {
			return err
		}
	}
	return sendAudioUntil(time.Duration(1 << 62))
}

// enhancedReport is what ffmpeg made of one publish: what ffmpeg -listen
// said, and what ffprobe/ffmpeg find in its recording.
type enhancedReport struct {
	file                   string
	err                    error // publishing, or ffmpeg -listen failing
	listenerLog            string
	videoCodec             string
	audioCodec             string
	videoPackets           int
	audioPackets           int
	keyIdx                 []int
	decodedFrames          int
	decodeErrors           []string
	serverHEVC, serverOpus bool
}

func (r enhancedReport) String() string {
	if r.err != nil {
		return fmt.Sprintf("FAILED: %v (ffmpeg -listen: %q)", r.err, strings.TrimSpace(r.listenerLog))
	}
	return fmt.Sprintf("video=%s packets=%d decoded=%d keyframes(K)=%d at %v; audio=%s packets=%d; decodeErrors=%d %q; ffmpeg -listen said %q; connect answer announced hvc1=%v Opus=%v",
		r.videoCodec, r.videoPackets, r.decodedFrames, len(r.keyIdx), r.keyIdx, r.audioCodec, r.audioPackets,
		len(r.decodeErrors), r.decodeErrors, strings.TrimSpace(r.listenerLog), r.serverHEVC, r.serverOpus)
}

// listenFFmpeg runs ffmpeg -listen 1 recording rtmp://127.0.0.1:PORT/live/x
// by stream copy into a Matroska file. Its wait does not fail the test:
// the comparison run only logs.
func listenFFmpeg(t *testing.T) (rtmpURL, file string, wait func() (string, error)) {
	t.Helper()
	rtmpURL = fmt.Sprintf("rtmp://127.0.0.1:%d/live/x", testenv.FreePort(t, "tcp"))
	file = filepath.Join(t.TempDir(), "out.mkv")
	return rtmpURL, file, startFFmpeg(t, "-listen", "1", "-i", rtmpURL, "-c", "copy", file)
}

// inspectRecording fills r from the recording, without failing the test.
func inspectRecording(t *testing.T, r *enhancedReport) {
	t.Helper()
	ffprobe := testenv.LookPath(t, "ffprobe")
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_type,codec_name", "-of", "json", r.file).Output()
	if err != nil {
		r.err = fmt.Errorf("ffprobe: %w", err)
		return
	}
	var res struct{ Streams []testenv.ProbedStream }
	if err := json.Unmarshal(out, &res); err != nil {
		r.err = err
		return
	}
	vIdx, aIdx := -1, -1
	for i, s := range res.Streams {
		switch s.CodecType {
		case "video":
			r.videoCodec, vIdx = s.CodecName, i
		case "audio":
			r.audioCodec, aIdx = s.CodecName, i
		}
	}
	out, err = exec.Command(ffprobe, "-v", "error", "-show_entries", "packet=stream_index,flags", "-of", "csv=p=0", r.file).Output()
	if err != nil {
		r.err = fmt.Errorf("ffprobe -show_packets: %w", err)
		return
	}
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(l), ",")
		if len(f) < 2 {
			continue
		}
		idx, _ := strconv.Atoi(f[0])
		switch idx {
		case vIdx:
			if strings.Contains(f[1], "K") {
				r.keyIdx = append(r.keyIdx, r.videoPackets)
			}
			r.videoPackets++
		case aIdx:
			r.audioPackets++
		}
	}
	if vIdx >= 0 {
		out, err = exec.Command(ffprobe, "-v", "error", "-select_streams", "v:0", "-count_frames",
			"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", r.file).Output()
		if err == nil {
			r.decodedFrames, _ = strconv.Atoi(strings.TrimSpace(strings.Split(string(out), ",")[0]))
		}
	}
	r.decodeErrors, err = testenv.DecodeErrorsOf(t, r.file)
	if err != nil {
		r.decodeErrors = append(r.decodeErrors, "ffmpeg exited: "+err.Error())
	}
}

func publishEnhancedOurs(t *testing.T, m *enhancedMedia) enhancedReport {
	t.Helper()
	rtmpURL, file, wait := listenFFmpeg(t)
	r := enhancedReport{file: file}
	c := dialRetry(t, rtmpURL, ClientConfig{FourCCs: []string{"hvc1", "Opus"}})
	r.serverHEVC, r.serverOpus = c.ServerSupports("hvc1"), c.ServerSupports("Opus")
	// ffmpeg -listen answers connect without a fourCcList: the codecs
	// are sent regardless, as a publisher that knows its server would.
	if len(m.frames) > 0 {
		require.NoError(t, c.WriteHEVCConfig(m.hvcc))
	}
	if len(m.opusPackets) > 0 {
		require.NoError(t, c.WriteOpusConfig(m.opusHead))
	}
	err := publishEnhanced(m,
		func(i int, ts time.Duration) error {
			return c.WriteHEVC(ts, ts, lengthPrefixed(m.frames[i]), m.keys[i])
		},
		func(i int, ts time.Duration) error { return c.WriteOpus(ts, m.opusPackets[i]) })
	require.NoError(t, err)
	st := c.Stats()
	t.Logf("our client sent %d video and %d audio frames", st.VideoFrames, st.AudioFrames)
	require.NoError(t, c.Close())
	r.listenerLog, r.err = wait()
	requireListenerClean(t, r.listenerLog)
	require.NoError(t, r.err, "ffmpeg -listen: %s", r.listenerLog)
	inspectRecording(t, &r)
	return r
}

// publishEnhancedGortmplib publishes the same media through gortmplib's
// Client and Writer. Nothing is asserted: failures end up in the report.
func publishEnhancedGortmplib(t *testing.T, m *enhancedMedia) (r enhancedReport) {
	t.Helper()
	rtmpURL, file, wait := listenFFmpeg(t)
	r.file = file
	u, err := url.Parse(rtmpURL)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*testTimeout)
	defer cancel()
	var c *gortmplib.Client
	var firstErr error
	for deadline := time.Now().Add(testTimeout); ; time.Sleep(100 * time.Millisecond) {
		c = &gortmplib.Client{URL: u, Publish: true}
		if err = c.Initialize(ctx); err == nil {
			break
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && firstErr == nil {
			firstErr = err // ffmpeg -listen accepted, and this is what went wrong
		}
		if firstErr != nil || time.Now().After(deadline) {
			// ffmpeg -listen accepts once: no use retrying after that.
			r.err = fmt.Errorf("gortmplib dial: %w (after ffmpeg accepted: %v)", err, firstErr)
			r.listenerLog, _ = wait()
			return r
		}
	}
	var tracks []*gortmplib.Track
	var video, audio *gortmplib.Track
	if len(m.frames) > 0 {
		video = &gortmplib.Track{Codec: &codecs.H265{VPS: m.vps, SPS: m.sps, PPS: m.pps}}
		tracks = append(tracks, video)
	}
	if len(m.opusPackets) > 0 {
		var h opus.IDHeader
		if err := h.Unmarshal(m.opusHead); err != nil {
			r.err = fmt.Errorf("OpusHead: %w", err)
			c.Close()
			return r
		}
		audio = &gortmplib.Track{Codec: &codecs.Opus{IDHeader: &h}}
		tracks = append(tracks, audio)
	}
	w := &gortmplib.Writer{Conn: c, Tracks: tracks}
	err = w.Initialize()
	if err == nil {
		err = publishEnhanced(m,
			func(i int, ts time.Duration) error { return w.WriteH265(video, ts, ts, m.frames[i]) },
			func(i int, ts time.Duration) error { return w.WriteOpus(audio, ts, m.opusPackets[i]) })
	}
	c.Close()
	log, werr := wait()
	r.listenerLog = log
	if err != nil {
		r.err = fmt.Errorf("gortmplib publish: %w", err)
		return r
	}
	if werr != nil {
		r.err = fmt.Errorf("ffmpeg -listen: %w", werr)
		return r
	}
	inspectRecording(t, &r)
	return r
}

// readEnhancedWithGortmplib publishes m with our Client to gortmplib's
// ServerConn and Reader (an Enhanced RTMP implementation of its own),
// checks that the tracks it finds are HEVC and Opus with our parameter
// sets, that every Opus packet arrives unchanged, and that ffmpeg decodes
// the HEVC access units it received (written as Annex B) without error.
func readEnhancedWithGortmplib(t *testing.T, m *enhancedMedia) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	type received struct {
		tracks []*gortmplib.Track
		hevc   [][][]byte
		opus   [][]byte
		err    error
	}
	got := make(chan received, 1)
	go func() {
		var r received
		defer func() { got <- r }()
		nc, err := l.Accept()
		if err != nil {
			r.err = err
			return
		}
		defer nc.Close()
		_ = nc.SetDeadline(time.Now().Add(3 * testTimeout))
		sc := &gortmplib.ServerConn{RW: nc}
		if r.err = sc.Initialize(); r.err != nil {
			return
		}
		if r.err = sc.AcceptConn(); r.err != nil {
			return
		}
		rd := &gortmplib.Reader{Conn: sc}
		if r.err = rd.Initialize(); r.err != nil {
			return
		}
		r.tracks = rd.Tracks()
		for _, tr := range r.tracks {
			switch tr.Codec.(type) {
			case *codecs.H265:
				rd.OnDataH265(tr, func(_, _ time.Duration, au [][]byte) {
					cp := make([][]byte, len(au))
					for i, n := range au {
						cp[i] = append([]byte(nil), n...)
					}
					r.hevc = append(r.hevc, cp)
				})
			case *codecs.Opus:
				rd.OnDataOpus(tr, func(_ time.Duration, p []byte) { r.opus = append(r.opus, append([]byte(nil), p...)) })
			}
		}
		for {
			if err := rd.Read(); err != nil {
				return // the publisher hung up
			}
		}
	}()

	c := dialRetry(t, "rtmp://"+l.Addr().String()+"/live/key", ClientConfig{FourCCs: []string{"hvc1", "Opus"}})
	require.NoError(t, c.WriteHEVCConfig(m.hvcc))
	require.NoError(t, c.WriteOpusConfig(m.opusHead))
	require.NoError(t, publishEnhanced(m,
		func(i int, ts time.Duration) error {
			return c.WriteHEVC(ts, ts, lengthPrefixed(m.frames[i]), m.keys[i])
		},
		func(i int, ts time.Duration) error { return c.WriteOpus(ts, m.opusPackets[i]) }))
	require.NoError(t, c.Close())
	var r received
	select {
	case r = <-got:
	case <-time.After(3 * testTimeout):
		t.Fatal("gortmplib reader did not finish")
	}
	require.NoError(t, r.err)
	var hevc *codecs.H265
	var op *codecs.Opus
	for _, tr := range r.tracks {
		switch cd := tr.Codec.(type) {
		case *codecs.H265:
			hevc = cd
		case *codecs.Opus:
			op = cd
		}
	}
	require.NotNil(t, hevc, "gortmplib found no HEVC track")
	require.NotNil(t, op, "gortmplib found no Opus track")
	require.Equal(t, m.sps, hevc.SPS)
	require.Equal(t, m.pps, hevc.PPS)
	require.Equal(t, m.opusPackets, r.opus, "every Opus packet, unchanged")
	// gortmplib's reader analyses the first 2 s before it hands out data
	// and then replays them: every access unit arrives.
	require.InDelta(t, len(m.frames), len(r.hevc), 1, "HEVC access units")
	t.Logf("gortmplib read %d HEVC access units and %d Opus packets of %d and %d sent", len(r.hevc), len(r.opus), len(m.frames), len(m.opusPackets))

	// ffmpeg decodes what arrived: VPS/SPS/PPS first, then the pictures.
	var annexB []byte
	for _, n := range [][]byte{m.vps, m.sps, m.pps} {
		annexB = append(append(annexB, 0, 0, 0, 1), n...)
	}
	for _, au := range r.hevc {
		for _, n := range au {
			annexB = append(append(annexB, 0, 0, 0, 1), n...)
		}
	}
	f := filepath.Join(t.TempDir(), "received.hevc")
	require.NoError(t, os.WriteFile(f, annexB, 0o600))
	errs := testenv.DecodeErrors(t, f)
	frames := testenv.CountVideoFrames(t, f)
	t.Logf("ffmpeg decoded %d HEVC pictures of what gortmplib received; errors: %v", frames, errs)
	require.Empty(t, errs, "ffmpeg decode errors")
	require.InDelta(t, len(m.frames), frames, 1)
}
