package rtmp

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/stretchr/testify/require"
)

// The benchmarks in this file publish the same media (the test clip's
// H.264 at 25 fps plus 48 kHz AAC, 1024-sample frames, as rtmpsink sends
// them) through our Client and, for reference, through gortmplib's own
// Client and Writer, to the same server: a gortmplib ServerConn that
// accepts the publication and discards what follows, counting the bytes.
// They report ns, allocations and
// bytes on the wire (an op is 40 ms of a 25 fps A/V call: one video
// frame and 1.875 audio frames), so that one implementation can be compared with the
// other in the same run, and one version of ours with the next.

// wireSink is a discarding RTMP server; bytes counts what arrives after
// the publication was accepted.
type wireSink struct {
	url   string
	bytes atomic.Int64
}

func startWireSink(tb testing.TB) *wireSink {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	ws := &wireSink{url: "rtmp://" + l.Addr().String() + "/live/bench"}
	done := make(chan struct{})
	var conns []net.Conn
	connsDone := make(chan struct{}, 16)
	go func() {
		defer close(done)
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, nc)
			go func() {
				defer func() { connsDone <- struct{}{} }()
				defer nc.Close()
				sc := &gortmplib.ServerConn{RW: nc}
				if sc.Initialize() != nil || sc.AcceptConn() != nil || !sc.Publish || sc.AcceptAction() != nil {
					return
				}
				_, _ = io.Copy(countingDiscard{&ws.bytes}, nc)
			}()
		}
	}()
	tb.Cleanup(func() {
		l.Close()
		<-done
		for _, nc := range conns {
			nc.Close()
		}
		for range conns {
			<-connsDone
		}
	})
	return ws
}

type countingDiscard struct{ n *atomic.Int64 }

func (d countingDiscard) Write(p []byte) (int, error) {
	d.n.Add(int64(len(p)))
	return len(p), nil
}

// benchAudio is one AAC access unit of a typical size at 64 kbit/s.
var benchAudio = make([]byte, 170)

var benchASC = []byte{0x11, 0x90} // AAC-LC 48 kHz mono

// runPublishBench publishes b.N frames: each iteration is one video frame
// and, every 40 ms of media, the 1.875 AAC frames that fall in it (15
// audio per 8 video), so a frame is what a 25 fps A/V call sends.
func runPublishBench(b *testing.B, ws *wireSink, writeVideo func(ts time.Duration, i int) error,
	writeAudio func(ts time.Duration) error,
) {
	n := len(clipFrames())
	b.ReportAllocs()
	b.ResetTimer()
	audioNext := time.Duration(0)
	start := ws.bytes.Load()
	sent := 0
	for i := 0; i < b.N; i++ {
		ts := time.Duration(i) * 40 * time.Millisecond
		if err := writeVideo(ts, i%n); err != nil {
			b.Fatal(err)
		}
		sent++
		for audioNext <= ts {
			if err := writeAudio(audioNext); err != nil {
				b.Fatal(err)
			}
			audioNext += 1024 * time.Second / 48000
			sent++
		}
	}
	b.StopTimer()
	time.Sleep(50 * time.Millisecond) // let the sink count the tail
	b.ReportMetric(float64(ws.bytes.Load()-start)/float64(b.N), "wireB/op")
	b.ReportMetric(float64(sent)/float64(b.N), "frames/op")
}

// BenchmarkPublishOurs publishes through rtmp.Client.
func BenchmarkPublishOurs(b *testing.B) {
	ws := startWireSink(b)
	c, err := Dial(context.Background(), ws.url, ClientConfig{})
	require.NoError(b, err)
	defer c.Close()
	require.NoError(b, c.WriteAACConfig(benchASC))
	frames := clipFrames()
	runPublishBench(b, ws,
		func(ts time.Duration, i int) error { return c.WriteH264(ts, ts, frames[i].avcc, frames[i].key) },
		func(ts time.Duration) error { return c.WriteAAC(ts, benchAudio) })
}

// BenchmarkPublishGortmplib publishes through gortmplib's Client and
// Writer, the library's own path, for reference. Its Writer takes access
// units as NAL unit lists, so the AVC frames are split beforehand (not
// measured).
func BenchmarkPublishGortmplib(b *testing.B) {
	ws := startWireSink(b)
	u, err := url.Parse(ws.url)
	require.NoError(b, err)
	c := &gortmplib.Client{URL: u, Publish: true}
	require.NoError(b, c.Initialize(context.Background()))
	defer c.Close()
	sps, pps := clipParamSets(b)
	video := &gortmplib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}}
	var asc mpeg4audio.AudioSpecificConfig
	require.NoError(b, asc.Unmarshal(benchASC))
	audio := &gortmplib.Track{Codec: &codecs.MPEG4Audio{Config: &asc}}
	w := &gortmplib.Writer{Conn: c, Tracks: []*gortmplib.Track{video, audio}}
	require.NoError(b, w.Initialize())
	var split [][][]byte
	for _, f := range clipFrames() {
		var au [][]byte
		for p := f.avcc; len(p) >= 4; {
			n := int(binary.BigEndian.Uint32(p))
			au = append(au, p[4:4+n])
			p = p[4+n:]
		}
		split = append(split, au)
	}
	runPublishBench(b, ws,
		func(ts time.Duration, i int) error { return w.WriteH264(video, ts, ts, split[i]) },
		func(ts time.Duration) error { return w.WriteMPEG4Audio(audio, ts, benchAudio) })
}
