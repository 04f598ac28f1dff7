package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtcpx"
	"github.com/sipstream/sipstream/sip/sdp"
)

func TestMarkerRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		call  int
		frame int64
	}{{0, 0}, {1, 1}, {7, 149}, {1<<21 - 1, 1<<35 - 1}, {12345, 987654321}} {
		b := newMarker()
		putMarker(b, tc.call, tc.frame)
		assert.NotContains(t, string(b[1:27]), "\x00", "a zero byte would need emulation prevention")
		c, f, ok := parseMarker(b)
		require.True(t, ok)
		assert.Equal(t, tc.call, c)
		assert.Equal(t, tc.frame, f)
	}
	b := newMarker()
	b[5] ^= 1 // another UUID
	_, _, ok := parseMarker(b)
	assert.False(t, ok)
	_, _, ok = parseMarker([]byte{0x65, 1, 2})
	assert.False(t, ok)
}

func TestFindMarker(t *testing.T) {
	m := newMarker()
	putMarker(m, 3, 42)
	var avcc []byte
	for _, nal := range [][]byte{{0x09, 0xf0}, m, {0x65, 0x88, 0x84}} {
		avcc = binary.BigEndian.AppendUint32(avcc, uint32(len(nal)))
		avcc = append(avcc, nal...)
	}
	c, f, ok := findMarker(avcc)
	require.True(t, ok)
	assert.Equal(t, 3, c)
	assert.Equal(t, int64(42), f)
	_, _, ok = findMarker(avcc[:len(avcc)-len(m)-8]) // cut inside
	assert.False(t, ok)
	_, _, ok = findMarker([]byte{0, 0, 0, 200, 1})
	assert.False(t, ok)
}

// depacketize joins the RTP payloads of one frame back into NAL units.
func depacketize(t *testing.T, payloads [][]byte) [][]byte {
	t.Helper()
	var out [][]byte
	var fu []byte
	for _, p := range payloads {
		switch p[0] & 0x1f {
		case 28:
			if p[1]&0x80 != 0 {
				fu = []byte{p[0]&0xe0 | p[1]&0x1f}
			}
			require.NotNil(t, fu, "FU-A continuation without a start")
			fu = append(fu, p[2:]...)
			if p[1]&0x40 != 0 {
				out = append(out, fu)
				fu = nil
			}
		default:
			require.Nil(t, fu, "single NAL unit inside an FU-A")
			out = append(out, p)
		}
	}
	require.Nil(t, fu, "FU-A without an end")
	return out
}

func TestLoadClip(t *testing.T) {
	const mtu = 1200
	c, err := loadClip(clipH264, mtu)
	require.NoError(t, err)
	require.Len(t, c.frames, 150)
	var nals [][]byte
	for i, f := range c.frames {
		assert.Equal(t, i%25 == 0, f.key, "frame %d", i)
		for _, p := range f.payloads {
			assert.LessOrEqual(t, len(p), mtu)
		}
		got := depacketize(t, f.payloads)
		_, _, ok := parseMarker(f.payloads[f.marker])
		require.True(t, ok, "frame %d: marker", i)
		types := []uint8{}
		for _, n := range got {
			types = append(types, n[0]&0x1f)
			if _, _, ok := parseMarker(n); !ok {
				nals = append(nals, n)
			}
		}
		if f.key {
			assert.Equal(t, []uint8{7, 8}, types[:2], "frame %d: SPS and PPS first", i)
		}
		assert.Equal(t, uint8(6), types[len(types)-2], "frame %d: marker SEI right before the slice", i)
	}
	// Every NAL unit of the clip is sent, unchanged and in order.
	want := testmedia.SplitAnnexB(clipH264)
	require.Equal(t, len(want), len(nals))
	for i := range want {
		require.True(t, bytes.Equal(want[i], nals[i]), "NAL unit %d differs", i)
	}
	_, err = loadClip([]byte{0, 0, 1, 0x41, 0x80}, mtu)
	assert.Error(t, err, "a clip starting with a P picture cannot loop")
}

func TestOfferAnswer(t *testing.T) {
	// sipstream's own offer, as callmgr makes it.
	o, err := sdp.NewOffer(sdp.OfferConfig{
		Addr:  netip.MustParseAddr("127.0.0.1"),
		Audio: &sdp.MediaConfig{Port: 30000, Codecs: []media.Codec{media.CodecPCMU, media.CodecPCMA}, Direction: media.RecvOnly},
		Video: &sdp.MediaConfig{Port: 30002, Codecs: []media.Codec{media.CodecH264, media.CodecVP8}, Feedback: true},
	})
	require.NoError(t, err)
	got, err := parseOffer(o.Marshal())
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddrPort("127.0.0.1:30000"), got.AudioAddr)
	assert.Equal(t, netip.MustParseAddrPort("127.0.0.1:30002"), got.VideoAddr)
	assert.Equal(t, uint8(8), got.AudioPT)

	ans := answerSDP("127.0.0.1", 7, 40000, 40002, got.AudioPT, got.VideoPT)
	specs, err := o.Negotiate(ans)
	require.NoError(t, err, "sipstream accepts the callee's answer:\n%s", ans)
	for _, s := range specs {
		switch s.Kind {
		case media.KindAudio:
			assert.Equal(t, media.CodecPCMA, s.Formats[0].Codec)
			assert.Equal(t, uint16(40000), s.Remote.Port())
		case media.KindVideo:
			assert.Equal(t, media.CodecH264, s.Formats[0].Codec)
			assert.Equal(t, uint16(40002), s.Remote.Port())
		}
	}

	_, err = parseOffer([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"))
	assert.Error(t, err, "PCMU only, no video")
	_, err = parseOffer([]byte("not sdp"))
	assert.Error(t, err)
}

func TestFFmpegSDP(t *testing.T) {
	s := ffmpegSDP(5000, 5002)
	assert.Contains(t, s, "m=video 5000 RTP/AVP 96\r\n")
	assert.Contains(t, s, "a=fmtp:96 packetization-mode=1\r\n")
	assert.Contains(t, s, "m=audio 5002 RTP/AVP 8\r\n")
}

func TestParseStatCPU(t *testing.T) {
	// utime 250, stime 50 ticks; the command name holds a space and ')'.
	stat := "4242 (ff mpeg) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 5 0 100 1000000 500 18446744073709551615\n"
	cpu, err := parseStatCPU([]byte(stat))
	require.NoError(t, err)
	assert.InDelta(t, 3.0, cpu, 1e-9)
	_, err = parseStatCPU([]byte("4242 (x) S 1 2"))
	assert.Error(t, err)
	_, err = parseStatCPU([]byte("garbage"))
	assert.Error(t, err)
}

func TestParseKB(t *testing.T) {
	status := "Name:\tffmpeg\nVmPeak:\t  200 kB\nVmRSS:\t   51234 kB\nThreads:\t5\n"
	v, err := parseKB([]byte(status), "VmRSS")
	require.NoError(t, err)
	assert.Equal(t, int64(51234*1024), v)
	rollup := "55d0-7ffd ---p 00000000 00:00 0  [rollup]\nRss:               60000 kB\nPss:               30000 kB\n"
	v, err = parseKB([]byte(rollup), "Pss")
	require.NoError(t, err)
	assert.Equal(t, int64(30000*1024), v)
	_, err = parseKB([]byte(status), "Pss")
	assert.Error(t, err)
	_, err = parseKB([]byte("Pss: 12 MB\n"), "Pss")
	assert.Error(t, err)
}

// TestProcSelf reads this process's own /proc files.
func TestProcSelf(t *testing.T) {
	pid := os.Getpid()
	cpu, err := procCPU(pid)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, cpu, 0.0)
	rss, err := procRSS(pid)
	require.NoError(t, err)
	assert.Greater(t, rss, int64(1<<20))
	pss, err := procPSS(pid)
	require.NoError(t, err)
	assert.Greater(t, pss, int64(1<<20))
	threads, err := procThreads(pid)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, threads, 2, "a Go program runs a few threads")
	_, err = procThreads(1 << 30)
	assert.Error(t, err)
}

func TestRTPWire(t *testing.T) {
	b := make([]byte, rtpHeaderLen+3)
	putRTPHeader(b, true, 96, 65535, 0xdeadbeef, 0x01020304)
	copy(b[rtpHeaderLen:], "abc")
	var p rtp.Packet
	require.NoError(t, p.Unmarshal(b))
	assert.Equal(t, uint8(2), p.Version)
	assert.True(t, p.Marker)
	assert.Equal(t, uint8(96), p.PayloadType)
	assert.Equal(t, uint16(65535), p.SequenceNumber)
	assert.Equal(t, uint32(0xdeadbeef), p.Timestamp)
	assert.Equal(t, uint32(0x01020304), p.SSRC)
	assert.Equal(t, []byte("abc"), p.Payload)

	sr := make([]byte, srLen)
	now := time.Date(2026, 12, 7, 12, 0, 0, 500_000_000, time.UTC)
	putSR(sr, 7, rtcpx.NTP(now), 1234, 10, 1600)
	pkts, err := rtcp.Unmarshal(sr)
	require.NoError(t, err)
	require.Len(t, pkts, 1)
	got, ok := pkts[0].(*rtcp.SenderReport)
	require.True(t, ok)
	assert.Equal(t, uint32(7), got.SSRC)
	assert.Equal(t, uint64(0xeec1_1e40_8000_0000), got.NTPTime, "2026-12-07 12:00:00.5 UTC in NTP format")
	assert.Equal(t, uint32(1234), got.RTPTime)
	assert.Equal(t, uint32(10), got.PacketCount)
	assert.Equal(t, uint32(1600), got.OctetCount)

	tone := tonePayload()
	require.Len(t, tone, 160)
	assert.Equal(t, tone[:8], tone[8:16], "1 kHz at 8 kHz repeats every 8 samples")
}

func TestParseOptions(t *testing.T) {
	opt, err := parseOptions([]string{"-n", "1, 10,50", "-ffmpeg-n", "10", "-rtp-ports", "40000-40999"}, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, []int{1, 10, 50}, opt.ns)
	assert.Equal(t, []int{10}, opt.ffmpegNs)
	assert.Equal(t, 40000, opt.rtpMin)
	assert.Equal(t, 40999, opt.rtpMax)
	for _, bad := range [][]string{{"-n", "0"}, {"-n", "x"}, {"-rtp-ports", "10-20"}, {"-audio", "mp3"}, {"-duration", "0s"}, {"-rest", "http://x", "-webrtc"}, {"-max-cpu", "1.5"}, {"-max-cpu", "-0.1"}, {"-rest", "http://x", "-max-cpu", "0.5"}, {"-ramp", "-1s"}} {
		_, err := parseOptions(bad, &strings.Builder{})
		assert.Error(t, err, "%v", bad)
	}
}

func TestSummarize(t *testing.T) {
	assert.Equal(t, dist{}, summarize(nil))
	v := make([]float64, 100)
	for i := range v {
		v[i] = float64(100 - i) // 1..100, reversed
	}
	d := summarize(v)
	assert.Equal(t, dist{N: 100, Median: 50, P99: 99, Max: 100, Min: 1}, d)
	assert.Equal(t, 100.0, v[0], "the input is not sorted in place")
}

// readRTP reads one packet from c and parses it.
func readRTP(t *testing.T, c net.PacketConn) rtp.Packet {
	t.Helper()
	buf := make([]byte, 2048)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	n, _, err := c.ReadFrom(buf)
	require.NoError(t, err)
	var p rtp.Packet
	require.NoError(t, p.Unmarshal(append([]byte(nil), buf[:n]...)))
	return p
}

// TestSenderRewrites checks what the shared sender puts on the wire for
// one call: per-call SSRC, consecutive sequence numbers, timestamps on the
// media clock, the marker with the call's index and frame number, and
// Sender Reports of both streams.
func TestSenderRewrites(t *testing.T) {
	cl, err := loadClip(clipH264, defaultMTU)
	require.NoError(t, err)
	snd, err := newSender(cl, "127.0.0.1")
	require.NoError(t, err)
	defer snd.close()
	aRTP, aRTCP, err := listenPair("127.0.0.1")
	require.NoError(t, err)
	defer aRTP.Close()
	defer aRTCP.Close()
	vRTP, vRTCP, err := listenPair("127.0.0.1")
	require.NoError(t, err)
	defer vRTP.Close()
	defer vRTCP.Close()

	snd.newCall(aRTP.LocalAddr().(*net.UDPAddr), vRTP.LocalAddr().(*net.UDPAddr), 8, 96) // index 0, never started
	c := snd.newCall(aRTP.LocalAddr().(*net.UDPAddr), vRTP.LocalAddr().(*net.UDPAddr), 8, 97)
	require.Equal(t, 1, c.idx)
	require.Same(t, c, snd.lookup(1))
	require.Nil(t, snd.lookup(2))
	snd.start(c)
	defer snd.stopAll()

	// Video: the first three frames, packet by packet.
	first := readRTP(t, vRTP)
	prev := first
	frame := int64(0)
	var payloads [][]byte
	checkFrame := func() {
		want := cl.frames[frame]
		require.Len(t, payloads, len(want.payloads), "frame %d", frame)
		for i, p := range payloads {
			if i == want.marker {
				call, n, ok := parseMarker(p)
				require.True(t, ok, "frame %d", frame)
				assert.Equal(t, 1, call)
				assert.Equal(t, frame, n)
				continue
			}
			assert.Equal(t, want.payloads[i], p, "frame %d packet %d: the clip's payload", frame, i)
		}
	}
	payloads = append(payloads, first.Payload)
	for frame < 3 {
		p := readRTP(t, vRTP)
		assert.Equal(t, prev.SequenceNumber+1, p.SequenceNumber)
		assert.Equal(t, first.SSRC, p.SSRC)
		assert.Equal(t, uint8(97), p.PayloadType)
		if p.Timestamp != prev.Timestamp {
			require.True(t, prev.Marker, "the marker bit ends frame %d", frame)
			assert.Equal(t, prev.Timestamp+3600, p.Timestamp, "25 fps on the 90 kHz clock")
			checkFrame()
			frame++
			payloads = nil
		} else {
			assert.False(t, prev.Marker)
		}
		payloads = append(payloads, p.Payload)
		prev = p
	}
	assert.Equal(t, int64(1), snd.active.Load())

	// Audio: 20 ms of the tone per packet.
	a0 := readRTP(t, aRTP)
	a1 := readRTP(t, aRTP)
	assert.Equal(t, a0.SequenceNumber+1, a1.SequenceNumber)
	assert.Equal(t, a0.Timestamp+160, a1.Timestamp)
	assert.Equal(t, uint8(8), a1.PayloadType)
	assert.NotEqual(t, first.SSRC, a1.SSRC)
	assert.Equal(t, tonePayload(), a1.Payload)
	assert.Equal(t, silencePayload(), a0.Payload, "packet 0, at frame 0's media time, is an A/V marker")

	// Sender Reports of both streams (the first after 200 ms).
	for _, tc := range []struct {
		conn net.PacketConn
		ssrc uint32
	}{{aRTCP, a1.SSRC}, {vRTCP, first.SSRC}} {
		buf := make([]byte, 1500)
		require.NoError(t, tc.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		n, _, err := tc.conn.ReadFrom(buf)
		require.NoError(t, err)
		pkts, err := rtcp.Unmarshal(buf[:n])
		require.NoError(t, err)
		sr, ok := pkts[0].(*rtcp.SenderReport)
		require.True(t, ok)
		assert.Equal(t, tc.ssrc, sr.SSRC)
		assert.NotZero(t, sr.PacketCount)
	}
	sentAt, ok := c.sentAt(0)
	assert.True(t, ok)
	assert.GreaterOrEqual(t, sentAt, c.start)
	_, ok = c.sentAt(100000)
	assert.False(t, ok)
}

// TestSenderTickDoesNotAllocate checks the media path's cost: a tick that
// sends a frame and audio for each of 20 calls allocates nothing per
// packet (the clip is shared, headers go to a reused arena, one sendmmsg
// per socket).
func TestSenderTickDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; CI runs this guard without -race")
	}
	cl, err := loadClip(clipH264, defaultMTU)
	require.NoError(t, err)
	snd, err := newSender(cl, "127.0.0.1")
	require.NoError(t, err)
	defer snd.close()
	a, ac, err := listenPair("127.0.0.1")
	require.NoError(t, err)
	defer a.Close()
	defer ac.Close()
	v, vc, err := listenPair("127.0.0.1")
	require.NoError(t, err)
	defer v.Close()
	defer vc.Close()
	var calls []*sendCall
	for range 20 {
		c := snd.newCall(a.LocalAddr().(*net.UDPAddr), v.LocalAddr().(*net.UDPAddr), 8, 96)
		snd.start(c)
		calls = append(calls, c)
	}
	defer snd.stopAll()
	sentBefore, _ := snd.stats()
	allocs := testing.AllocsPerRun(50, func() {
		// Move the calls' media time on by one frame, so that each tick
		// has a frame and two audio packets per call due, whatever the
		// wall clock did.
		snd.mu.Lock()
		for _, c := range calls {
			c.start -= frameDuration
			c.nextSR -= frameDuration
		}
		snd.mu.Unlock()
		snd.tick()
	})
	sent, errs := snd.stats()
	assert.Zero(t, errs)
	assert.Greater(t, sent-sentBefore, uint64(50*20*3), "a frame and audio per call per tick")
	assert.Zero(t, allocs, "allocations per tick (over 60 packets)")
}

func TestCountErrOverload(t *testing.T) {
	var r result
	r.countErr("c1", fmt.Errorf("start c1: %w", &callmgr.OverloadError{Reason: "CPU 90%"}))
	r.countErr("c2", errors.New("/call/startup: HTTP 503: overloaded"))
	r.countErr("c3", errors.New("call c3 ended FAILED"))
	r.countErr("c4", errors.New("call c4 ended FAILED"))
	assert.Equal(t, 2, r.RefusedOverload)
	assert.Equal(t, "start <id>: callmgr: overloaded: CPU 90%", r.RefusedReason)
	assert.Equal(t, 2, r.CallsFailed, "refusals are not failures")
	assert.Equal(t, map[string]int{"call <id> ended FAILED": 2}, r.Errors)
}
