package session

import (
	"context"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/netsim"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtpdtmf"
)

type sentRTP struct {
	at  time.Duration
	pkt rtp.Packet
}

// TestSilenceAndDTMFSchedule: silence every 20 ms; the digits "1#" as RFC
// 4733 events on the audio SSRC: marker on the first packet, the same
// timestamp throughout an event, growing durations, the end packet three
// times, 100 ms gap, audio resuming with the marker and timestamps that
// kept running, one sequence number space.
func TestSilenceAndDTMFSchedule(t *testing.T) {
	h := newHarness(t, Config{Audio: true, RTCPInterval: time.Hour})
	h.start(audioSpec(peerAudio))
	var log []sentRTP
	collect := func() {
		for _, sp := range h.net.takeTimed(peerAudio) {
			var p rtp.Packet
			require.NoError(t, p.Unmarshal(sp.data))
			log = append(log, sentRTP{at: sp.at.Sub(t0), pkt: p})
		}
	}
	step := func(until time.Duration) {
		for h.now.Sub(t0) < until {
			h.advance(h.now.Add(time.Millisecond))
			collect()
		}
	}
	step(100 * time.Millisecond)
	job := &dtmfJob{digits: []rune("1#"), done: make(chan error, 1)}
	require.NoError(t, h.s.queueDTMF(job))
	step(800 * time.Millisecond)
	select {
	case err := <-job.done:
		require.NoError(t, err)
	default:
		t.Fatal("DTMF not finished")
	}

	var events, audio []sentRTP
	for i, s := range log {
		require.Equal(t, h.s.audio.localSSRC, s.pkt.SSRC)
		if i > 0 {
			require.Equal(t, log[i-1].pkt.SequenceNumber+1, s.pkt.SequenceNumber, "one sequence space")
		}
		if s.pkt.PayloadType == 101 {
			events = append(events, s)
		} else {
			require.Equal(t, uint8(8), s.pkt.PayloadType)
			require.Len(t, s.pkt.Payload, 160)
			audio = append(audio, s)
		}
	}
	require.True(t, audio[0].pkt.Marker)
	require.Equal(t, 0*time.Millisecond, audio[0].at)
	// 5 silence packets 20 ms apart before the first digit
	for i := 1; i < 5; i++ {
		require.Equal(t, audio[i-1].pkt.Timestamp+160, audio[i].pkt.Timestamp)
		require.Equal(t, 20*time.Millisecond, audio[i].at-audio[i-1].at)
	}
	// two digits: an update at 0 ms (duration so far 50 ms), end at 100,
	// 120, 140 ms
	type want struct {
		at     time.Duration
		marker bool
		end    bool
		dur    uint16
	}
	schedule := []want{{0, true, false, 400}, {100, false, true, 800}, {120, false, true, 800}, {140, false, true, 800}}
	require.Len(t, events, 8)
	for d := 0; d < 2; d++ {
		first := events[d*4]
		for k, w := range schedule {
			e := events[d*4+k]
			var p rtpdtmf.Payload
			require.NoError(t, p.Unmarshal(e.pkt.Payload))
			require.Equal(t, []uint8{1, 11}[d], p.Event)
			require.Equal(t, w.marker, e.pkt.Marker, "digit %d packet %d", d, k)
			require.Equal(t, w.end, p.End)
			require.Equal(t, w.dur, p.Duration)
			require.Equal(t, first.pkt.Timestamp, e.pkt.Timestamp)
			require.Equal(t, w.at*time.Millisecond, e.at-first.at, "digit %d packet %d", d, k)
		}
	}
	// the first event takes the next audio packet's slot and timestamp
	require.Equal(t, 120*time.Millisecond, events[0].at, "the audio slot after the request")
	var before *sentRTP
	for i := range audio {
		if audio[i].pkt.SequenceNumber == events[0].pkt.SequenceNumber-1 {
			before = &audio[i]
		}
	}
	require.NotNil(t, before)
	require.Equal(t, before.pkt.Timestamp+160, events[0].pkt.Timestamp)
	// no audio while an event is sent; the 100 ms gap carries audio that
	// starts with the marker and a timestamp that kept running
	for _, a := range audio {
		for d := 0; d < 2; d++ {
			in := a.pkt.SequenceNumber-events[d*4].pkt.SequenceNumber < events[d*4+3].pkt.SequenceNumber-events[d*4].pkt.SequenceNumber
			require.False(t, in, "audio at %v inside an event", a.at)
		}
	}
	var resumed *sentRTP
	for i := range audio {
		if audio[i].pkt.SequenceNumber == events[3].pkt.SequenceNumber+1 {
			resumed = &audio[i]
			break
		}
	}
	require.NotNil(t, resumed)
	require.True(t, resumed.pkt.Marker)
	require.Equal(t, events[0].pkt.Timestamp+uint32((resumed.at-events[0].at)/time.Millisecond*8), resumed.pkt.Timestamp)
	require.Equal(t, 240*time.Millisecond, events[4].at-events[0].at, "140 ms event + 100 ms gap")
	require.Equal(t, uint64(2), h.s.Stats().Audio.DTMFSent)
}

func TestDTMFNotNegotiated(t *testing.T) {
	h := newHarness(t, Config{Audio: true})
	sp := audioSpec(peerAudio)
	sp.Formats = sp.Formats[:2]
	h.start(sp)
	require.ErrorIs(t, h.s.queueDTMF(&dtmfJob{digits: []rune("1"), done: make(chan error, 1)}), ErrNoDTMF)
	sp = audioSpec(peerAudio)
	sp.Direction = media.RecvOnly
	require.NoError(t, h.s.apply([]media.StreamSpec{sp}, h.now))
	require.ErrorIs(t, h.s.queueDTMF(&dtmfJob{digits: []rune("1"), done: make(chan error, 1)}), ErrNoDTMF)
	h.net.take(peerAudio) // the silence sent while it was sendrecv
	h.advance(h.now.Add(time.Second))
	require.Empty(t, h.net.take(peerAudio), "recvonly: no silence")
}

// TestTimeouts: no media since start, then media that stops and resumes,
// and no timeout while on hold.
func TestTimeouts(t *testing.T) {
	h := newHarness(t, Config{Audio: true, MediaTimeout: 10 * time.Second, IdleTimeout: 5 * time.Second})
	h.start(audioSpec(peerAudio))
	h.advance(t0.Add(9 * time.Second))
	require.Empty(t, h.eventsOf(EventMediaTimeout))
	h.advance(t0.Add(10 * time.Second))
	require.Len(t, h.eventsOf(EventMediaTimeout), 1)
	require.Equal(t, t0.Add(10*time.Second), h.eventsOf(EventMediaTimeout)[0].Time)
	h.advance(t0.Add(30 * time.Second))
	require.Len(t, h.eventsOf(EventMediaTimeout), 1, "once")

	pkts := tonePackets(t, 50, 3, 1, 0)
	for i, p := range pkts {
		h.deliver(media.KindAudio, peerAudio, p.Data, t0.Add(31*time.Second+time.Duration(i)*20*time.Millisecond))
	}
	last := h.now
	h.advance(last.Add(4 * time.Second))
	require.Empty(t, h.eventsOf(EventMediaStopped))
	h.advance(last.Add(5 * time.Second))
	require.Len(t, h.eventsOf(EventMediaStopped), 1)
	require.Equal(t, last.Add(5*time.Second), h.eventsOf(EventMediaStopped)[0].Time)
	h.advance(last.Add(60 * time.Second))
	require.Len(t, h.eventsOf(EventMediaStopped), 1, "once")
	h.deliver(media.KindAudio, peerAudio, tonePackets(t, 60, 3, 1, 0)[55].Data, h.now)
	require.Len(t, h.eventsOf(EventMediaResumed), 1)

	// hold: the peer sends nothing, no event
	sp := audioSpec(peerAudio)
	sp.Direction = media.SendOnly
	require.NoError(t, h.s.apply([]media.StreamSpec{sp}, h.now))
	h.advance(h.now.Add(time.Minute))
	require.Len(t, h.eventsOf(EventMediaStopped), 1)
	// resume: the idle timeout counts from the resume
	require.NoError(t, h.s.apply([]media.StreamSpec{audioSpec(peerAudio)}, h.now))
	resumed := h.now
	h.advance(resumed.Add(4 * time.Second))
	require.Len(t, h.eventsOf(EventMediaStopped), 1)
	h.advance(resumed.Add(5 * time.Second))
	require.Len(t, h.eventsOf(EventMediaStopped), 2)
}

// TestOpusSilence: an Opus stream sends the 20 ms silent Opus frame with
// timestamps in steps of 960 (48 kHz).
func TestOpusSilence(t *testing.T) {
	h := newHarness(t, Config{Audio: true, RTCPInterval: time.Hour})
	h.start(media.StreamSpec{Kind: media.KindAudio, Remote: peerAudio, Formats: []media.PayloadFormat{
		{PayloadType: 111, Codec: media.CodecOpus, ClockRate: 48000, Channels: 2},
		{PayloadType: 110, Codec: media.CodecTelephoneEvent, ClockRate: 48000},
	}})
	h.advance(t0.Add(100 * time.Millisecond))
	var pkts []rtp.Packet
	for _, b := range h.net.take(peerAudio) {
		var p rtp.Packet
		require.NoError(t, p.Unmarshal(b))
		pkts = append(pkts, p)
	}
	require.Len(t, pkts, 6) // 0, 20, ... 100 ms
	for i, p := range pkts {
		require.Equal(t, uint8(111), p.PayloadType)
		require.Equal(t, []byte{0xf8, 0xff, 0xfe}, p.Payload)
		if i > 0 {
			require.Equal(t, pkts[i-1].Timestamp+960, p.Timestamp)
		}
	}
}

// TestAdaptiveJitter: with JitterAdaptive the wait follows the measured
// jitter (here 30 ms of it).
func TestAdaptiveJitter(t *testing.T) {
	h := newHarness(t, Config{Audio: true, JitterAdaptive: true, JitterDelay: 40 * time.Millisecond})
	sp := audioSpec(peerAudio)
	sp.Direction = media.RecvOnly
	h.start(sp)
	require.Equal(t, 40*time.Millisecond, h.s.Stats().Audio.JitterDelay)
	arr, _, err := netsim.Schedule(netsim.Config{Seed: 3, Jitter: 30 * time.Millisecond}, tonePackets(t, 300, 1, 1, 0))
	require.NoError(t, err)
	for _, p := range arr {
		h.deliver(media.KindAudio, peerAudio, p.Data, t0.Add(p.At))
	}
	st := h.s.Stats().Audio
	require.Greater(t, st.Jitter, 3*time.Millisecond)
	require.NotEqual(t, 40*time.Millisecond, st.JitterDelay)
	require.InDelta(t, float64(4*st.Jitter), float64(st.JitterDelay), float64(3*time.Millisecond), "four times the estimate")
	require.Len(t, h.frames[media.KindAudio], 300)
}

// TestOldStyleHold: c=0.0.0.0 in the peer's SDP means send nothing.
func TestOldStyleHold(t *testing.T) {
	h := newHarness(t, Config{Audio: true, RTCPInterval: 100 * time.Millisecond})
	h.start(audioSpec(mustAddr("0.0.0.0:4000")))
	h.advance(t0.Add(time.Second))
	h.net.mu.Lock()
	defer h.net.mu.Unlock()
	require.Empty(t, h.net.sent)
}

// An empty digit string is sent at once (nothing to send); it must not
// reach the owner goroutine's DTMF scheduler, which indexes the first digit.
func TestSendDTMFEmpty(t *testing.T) {
	s, err := New(Config{IP: loopback, Audio: true, Listen: newMemNet().listen})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Start([]media.StreamSpec{audioSpec(peerAudio)}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, s.SendDTMF(ctx, ""))
	require.NoError(t, s.SendDTMF(ctx, "1"), "the session still works")
}
