package session

import (
	"errors"
	"io"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/sound"
)

type sourceEnd struct {
	src sound.Source
	err error
}

// decodeG711 returns the linear samples of a PCMA (8) or PCMU (0) packet.
func decodeG711(p *rtp.Packet) []int16 {
	if p.PayloadType == 0 {
		return g711.DecodeULaw(nil, p.Payload)
	}
	return g711.DecodeALaw(nil, p.Payload)
}

func isSilence(s []int16) bool {
	for _, v := range s {
		if v > 16 || v < -16 {
			return false
		}
	}
	return true
}

// TestInjectUDP: a session on real loopback sockets sends a 16 kHz clip
// (resampled to the 8 kHz clock) to a UDP peer in place of silence: the
// peer decodes the PCMA and finds the 1 kHz tone for the clip's 300 ms,
// then silence once OnAudioSourceEnd reported the end; a looped clip
// plays until it is replaced, then silence again. One SSRC, sequence
// numbers and timestamps continuous throughout, the marker only on the
// first packet (or where a stall of the machine made the sender skip
// ahead).
func TestInjectUDP(t *testing.T) {
	ends := make(chan sourceEnd, 4)
	s, err := New(Config{IP: loopback, Audio: true, RTCPInterval: time.Hour,
		OnAudioSourceEnd: func(src sound.Source, err error) { ends <- sourceEnd{src, err} }})
	require.NoError(t, err)
	defer s.Close()
	pa := newPeer(t)
	require.NoError(t, s.Start([]media.StreamSpec{audioSpec(pa.addr)}))

	var pkts []rtp.Packet
	next := func() []int16 {
		pa.recv(t, func(b []byte) bool {
			var p rtp.Packet
			require.NoError(t, p.Unmarshal(b))
			pkts = append(pkts, p)
			return true
		})
		return decodeG711(&pkts[len(pkts)-1])
	}
	waitEnd := func() sourceEnd {
		select {
		case e := <-ends:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no end reported")
			return sourceEnd{}
		}
	}
	for range 3 {
		require.True(t, isSilence(next()), "silence before injection")
	}

	// Once: 300 ms of tone, then silence.
	once := &sound.Clip{SampleRate: 16000, Samples: testmedia.Tone(1000, 16000, 0, 4800, 0.5)}
	onceSrc := once.Play(16000, false)
	require.NoError(t, s.SetAudioSource(onceSrc))
	var toneBlocks [][]int16
	quiet := 0
	for quiet < 5 {
		pcm := next()
		switch {
		case !isSilence(pcm):
			require.Zero(t, quiet, "tone after silence")
			toneBlocks = append(toneBlocks, pcm)
		case len(toneBlocks) > 0:
			quiet++
		}
	}
	e := waitEnd()
	require.Same(t, onceSrc, e.src)
	require.NoError(t, e.err)
	require.InDelta(t, 15, len(toneBlocks), 1, "300 ms in 20 ms packets")
	var toneAll []int16
	for _, b := range toneBlocks[1 : len(toneBlocks)-1] {
		toneAll = append(toneAll, b...)
		require.Greater(t, testmedia.Goertzel(b, 8000, 1000), 0.9)
	}
	require.Greater(t, testmedia.Goertzel(toneAll, 8000, 1000), 0.95)
	require.InDelta(t, 0.5*32768/1.4142, rmsOf(toneAll), 0.5*32768*0.05, "level kept through resampling and G.711")

	// Looped: 100 ms clip, a second of tone, until replaced.
	loop := &sound.Clip{SampleRate: 8000, Samples: testmedia.Tone(1000, 8000, 0, 800, 0.5)}
	loopSrc := loop.Play(8000, true)
	require.NoError(t, s.SetAudioSource(loopSrc))
	for isSilence(next()) {
	}
	for range 50 {
		require.Greater(t, testmedia.Goertzel(next(), 8000, 1000), 0.9, "looped tone")
	}
	require.NoError(t, s.SetAudioSource(nil))
	e = waitEnd()
	require.Same(t, loopSrc, e.src)
	require.ErrorIs(t, e.err, ErrSourceReplaced)
	for isSilence(next()) == false {
	}
	for range 3 {
		require.True(t, isSilence(next()), "silence after the source was stopped")
	}

	// One RTP stream throughout.
	require.True(t, pkts[0].Marker)
	for i := 1; i < len(pkts); i++ {
		p, q := pkts[i-1], pkts[i]
		require.Equal(t, p.SSRC, q.SSRC)
		require.Equal(t, p.SequenceNumber+1, q.SequenceNumber)
		if q.Marker {
			// Only after the owner goroutine stalled over 200 ms (a loaded
			// machine): the timestamps skip ahead by whole packets.
			require.Zero(t, (q.Timestamp-p.Timestamp)%160)
			require.Greater(t, q.Timestamp-p.Timestamp, uint32(160))
		} else {
			require.Equal(t, p.Timestamp+160, q.Timestamp)
		}
		require.Equal(t, uint8(8), q.PayloadType)
	}
	require.NoError(t, s.Close())
	require.GreaterOrEqual(t, s.Stats().Audio.PacketsSent, uint64(len(pkts)), "counted (some may still be in flight)")
	require.ErrorIs(t, s.SetAudioSource(loopSrc), ErrClosed)
}

func rmsOf(s []int16) float64 {
	var sum float64
	for _, v := range s {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(len(s)))
}

// sentAudio returns the packets the harness's session sent to the peer
// since the last call, with their send times.
func sentAudio(t *testing.T, h *harness) []sentRTP {
	var out []sentRTP
	for _, sp := range h.net.takeTimed(peerAudio) {
		var p rtp.Packet
		require.NoError(t, p.Unmarshal(sp.data))
		out = append(out, sentRTP{at: sp.at.Sub(t0), pkt: p})
	}
	return out
}

// stepTo advances the harness in 1 ms steps to t0+until and returns what
// was sent.
func stepTo(t *testing.T, h *harness, until time.Duration) []sentRTP {
	var out []sentRTP
	for h.now.Sub(t0) < until {
		h.advance(h.now.Add(time.Millisecond))
		out = append(out, sentAudio(t, h)...)
	}
	return out
}

func toneSpec(pt uint8, c media.Codec, dir media.Direction) media.StreamSpec {
	sp := audioSpec(peerAudio)
	sp.Formats = []media.PayloadFormat{{PayloadType: pt, Codec: c, ClockRate: 8000}, {PayloadType: 101, Codec: media.CodecTelephoneEvent, ClockRate: 8000}}
	sp.Direction = dir
	return sp
}

// TestInjectSchedule drives a session on a fake clock: injected packets
// leave every 20 ms on time (not in pairs like silence); a DTMF digit
// takes priority (no audio packet during the event, the tone resumes
// after it with the marker); on hold nothing is sent and the sound waits;
// a re-INVITE to PCMU goes on in PCMU; one to Opus ends the source with
// ErrCannotEncode and Opus silence follows.
func TestInjectSchedule(t *testing.T) {
	var ends []sourceEnd
	h := newHarness(t, Config{Audio: true, RTCPInterval: time.Hour,
		OnAudioSourceEnd: func(src sound.Source, err error) { ends = append(ends, sourceEnd{src, err}) }})
	h.start(audioSpec(peerAudio))
	src := (&sound.Clip{SampleRate: 8000, Samples: testmedia.Tone(1000, 8000, 0, 800, 0.5)}).Play(8000, true)
	require.NoError(t, h.s.setAudioSource(src))
	pkts := sentAudio(t, h) // the silence packet sent at Start
	pkts = append(pkts, stepTo(t, h, 200*time.Millisecond)...)
	require.Len(t, pkts, 11)
	for i, p := range pkts[1:] {
		require.Equal(t, time.Duration(i+1)*20*time.Millisecond, p.at, "on time")
		require.Greater(t, testmedia.Goertzel(decodeG711(&p.pkt), 8000, 1000), 0.9)
	}

	job := &dtmfJob{digits: []rune("5"), done: make(chan error, 1)}
	require.NoError(t, h.s.queueDTMF(job))
	dt := stepTo(t, h, 600*time.Millisecond)
	require.NoError(t, <-job.done)
	var first, last = -1, -1
	for i, p := range dt {
		if p.pkt.PayloadType == 101 {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	require.GreaterOrEqual(t, first, 0)
	after := dt[last+1]
	require.True(t, after.pkt.Marker, "the tone after the event starts a talkspurt")
	for _, p := range append(append([]sentRTP(nil), dt[:first]...), dt[last+1:]...) {
		require.Equal(t, uint8(8), p.pkt.PayloadType)
		require.Greater(t, testmedia.Goertzel(decodeG711(&p.pkt), 8000, 1000), 0.9)
	}
	require.Equal(t, 140*time.Millisecond, after.at-dt[first].at, "no audio during the 100 ms event and its end packets")

	require.NoError(t, h.s.apply([]media.StreamSpec{toneSpec(8, media.CodecPCMA, media.RecvOnly)}, h.now))
	require.Empty(t, stepTo(t, h, 800*time.Millisecond), "on hold nothing is sent")
	require.Empty(t, ends)

	require.NoError(t, h.s.apply([]media.StreamSpec{toneSpec(0, media.CodecPCMU, media.SendRecv)}, h.now))
	mu := stepTo(t, h, 900*time.Millisecond)
	require.NotEmpty(t, mu)
	for _, p := range mu {
		require.Equal(t, uint8(0), p.pkt.PayloadType)
		require.Greater(t, testmedia.Goertzel(decodeG711(&p.pkt), 8000, 1000), 0.9)
	}

	opus := media.StreamSpec{Kind: media.KindAudio, Remote: peerAudio, Formats: []media.PayloadFormat{{PayloadType: 111, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2}}}
	require.NoError(t, h.s.apply([]media.StreamSpec{opus}, h.now))
	require.Len(t, ends, 1)
	require.Same(t, src, ends[0].src)
	require.ErrorIs(t, ends[0].err, ErrCannotEncode)
	for _, p := range stepTo(t, h, time.Second) {
		require.Equal(t, []byte{0xf8, 0xff, 0xfe}, p.pkt.Payload)
	}
	require.ErrorIs(t, h.s.setAudioSource(src), ErrCannotEncode)
}

// failing is a Source that gives n samples, then err.
type failing struct {
	n   int
	err error
	max bool // return more than asked
}

func (f *failing) SampleRate() int { return 8000 }
func (f *failing) Read(p []int16) (int, error) {
	if f.max {
		return len(p) + 1, nil
	}
	if f.n == 0 {
		return 0, f.err
	}
	k := min(f.n, len(p))
	for i := range p[:k] {
		p[i] = 8000
	}
	f.n -= k
	return k, nil
}

// TestInjectEnds: a source's error, a source that misbehaves, a Start to
// a codec that cannot be encoded, each end the source with the reason
// and silence follows; the last short packet of a source is padded with
// silence; bad arguments are refused.
func TestInjectEnds(t *testing.T) {
	var ends []sourceEnd
	h := newHarness(t, Config{Audio: true, RTCPInterval: time.Hour,
		OnAudioSourceEnd: func(src sound.Source, err error) { ends = append(ends, sourceEnd{src, err}) }})
	// Before Start any source is taken; Start to Opus ends it.
	early := &failing{n: 1000, err: io.EOF}
	require.NoError(t, h.s.setAudioSource(early))
	require.NoError(t, h.s.start([]media.StreamSpec{{Kind: media.KindAudio, Remote: peerAudio, Formats: []media.PayloadFormat{{PayloadType: 111, Codec: media.CodecOpus, ClockRate: 48000}}}}))
	require.Len(t, ends, 1)
	require.ErrorIs(t, ends[0].err, ErrCannotEncode)
	require.NoError(t, h.s.apply([]media.StreamSpec{audioSpec(peerAudio)}, h.now))
	sentAudio(t, h)

	boom := errors.New("boom")
	src := &failing{n: 200, err: boom}
	require.NoError(t, h.s.setAudioSource(src))
	pkts := stepTo(t, h, 100*time.Millisecond)
	require.Len(t, ends, 2)
	require.Same(t, src, ends[1].src)
	require.ErrorIs(t, ends[1].err, boom)
	pcm := decodeG711(&pkts[0].pkt)
	require.Equal(t, pcm[0], pcm[159])
	require.Greater(t, pcm[0], int16(7000))
	pcm = decodeG711(&pkts[1].pkt)
	require.Greater(t, pcm[39], int16(7000))
	require.True(t, isSilence(pcm[40:]), "the rest of the last packet is silence")
	for _, p := range pkts[2:] {
		require.True(t, isSilence(decodeG711(&p.pkt)))
	}

	bad := &failing{max: true}
	require.NoError(t, h.s.setAudioSource(bad))
	stepTo(t, h, 200*time.Millisecond)
	require.Len(t, ends, 3)
	require.ErrorIs(t, ends[2].err, errBadRead)

	require.ErrorIs(t, h.s.setAudioSource((&sound.Clip{SampleRate: 100}).Play(100, false)), sound.ErrRate)
	v := newHarness(t, Config{Video: true})
	require.ErrorIs(t, v.s.setAudioSource(src), ErrNoAudio)
}

// TestInjectAllocs: sending injected audio allocates nothing per packet
// once the buffers have grown (the resampler's included).
func TestInjectAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	h := newHarness(t, Config{Audio: true, RTCPInterval: time.Hour})
	h.start(audioSpec(peerAudio))
	src := (&sound.Clip{SampleRate: 16000, Samples: testmedia.Tone(1000, 16000, 0, 16000, 0.5)}).Play(16000, true)
	require.NoError(t, h.s.setAudioSource(src))
	st := h.s.audio
	for range 10 {
		st.injected()
	}
	require.Zero(t, testing.AllocsPerRun(200, func() { st.injected() }))
}

// TestInjectLiveStream: the audio one call receives is sent into another
// call. Session A receives a 1 kHz PCMA tone from its peer over UDP; its
// OnFrame (A's goroutine) writes the frames into a sound.Live that
// session B reads (B's goroutine) as its audio source, in PCMU at 8 kHz;
// B's peer decodes the tone. A Live closed at the end ends B's source and
// B goes back to silence.
func TestInjectLiveStream(t *testing.T) {
	live, err := sound.NewLive(8000)
	require.NoError(t, err)
	ends := make(chan sourceEnd, 1)
	a, err := New(Config{IP: loopback, Audio: true, OnFrame: func(f *media.Frame) { _ = live.WriteFrame(f) }})
	require.NoError(t, err)
	defer a.Close()
	b, err := New(Config{IP: loopback, Audio: true, RTCPInterval: time.Hour,
		OnAudioSourceEnd: func(src sound.Source, err error) { ends <- sourceEnd{src, err} }})
	require.NoError(t, err)
	defer b.Close()
	peerA, peerB := newPeer(t), newPeer(t)
	require.NoError(t, a.Start([]media.StreamSpec{audioSpec(peerA.addr)}))
	require.NoError(t, b.Start([]media.StreamSpec{toneSpecTo(peerB.addr, 0, media.CodecPCMU)}))
	require.NoError(t, b.SetAudioSource(live))

	// A's peer sends up to 3 s of tone, in real time.
	pkts := tonePackets(t, 150, 0xabc, 1, 1000)
	stop, stopped := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-stopped }()
	go func() {
		defer close(stopped)
		start := time.Now()
		for _, p := range pkts {
			select {
			case <-stop:
				return
			case <-time.After(time.Until(start.Add(p.At))):
			}
			if _, err := peerA.conn.WriteToUDPAddrPort(p.Data, a.LocalAddr(media.KindAudio)); err != nil {
				return
			}
		}
	}()
	var heard []int16
	peerB.recv(t, func(raw []byte) bool {
		var p rtp.Packet
		require.NoError(t, p.Unmarshal(raw))
		require.Equal(t, uint8(0), p.PayloadType)
		if pcm := decodeG711(&p); !isSilence(pcm) || len(heard) > 0 {
			heard = append(heard, pcm...)
		}
		return len(heard) >= 8000 // a second of it
	})
	require.Greater(t, testmedia.Goertzel(heard[160:], 8000, 1000), 0.9)
	gaps := 0
	for i := 160; i+160 <= len(heard); i += 160 {
		if isSilence(heard[i : i+160]) {
			gaps++
		}
	}
	require.LessOrEqual(t, gaps, 2, "the live audio flows without holes (a late packet may cost one)")
	st := live.Stats()
	t.Logf("live: %d frames, %d samples dropped, %d underruns", st.Frames, st.Dropped, st.Underruns)

	require.NoError(t, live.Close())
	select {
	case e := <-ends:
		require.Same(t, sound.Source(live), e.src)
		require.NoError(t, e.err)
	case <-time.After(10 * time.Second):
		t.Fatal("the closed Live did not end the source")
	}
}

func toneSpecTo(remote netip.AddrPort, pt uint8, c media.Codec) media.StreamSpec {
	sp := audioSpec(remote)
	sp.Formats = []media.PayloadFormat{{PayloadType: pt, Codec: c, ClockRate: 8000}}
	return sp
}
