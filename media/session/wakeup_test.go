package session

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

// idleWakeups counts the owner goroutine's timer wake-ups over d of a
// started session that receives nothing (on the fake clock: every
// deadline reached is one wake-up of the real loop).
func idleWakeups(t *testing.T, d time.Duration, specs ...media.StreamSpec) int {
	h := newHarness(t, Config{Audio: true, Video: true})
	h.start(specs...)
	return h.timerPolls(h.now.Add(d))
}

// TestIdleWakeups: a call that receives nothing wakes its owner goroutine
// only for RTCP reports, the media timeouts and, when it sends audio, the
// silence that keeps phones from hanging up, two packets per wake-up.
func TestIdleWakeups(t *testing.T) {
	const d = 60 * time.Second
	recvOnly := audioSpec(peerAudio)
	recvOnly.Direction = media.RecvOnly
	video := videoSpec(peerVideo, media.Feedback{PLI: true, NACK: true})

	quiet := idleWakeups(t, d, recvOnly, video)
	t.Logf("receive-only A/V: %d wake-ups in %v (%.2f/s)", quiet, d, float64(quiet)/d.Seconds())
	// a report for both streams every 5 s, the media timeout once
	require.LessOrEqual(t, quiet, 14)

	sending := idleWakeups(t, d, audioSpec(peerAudio), video)
	t.Logf("sendrecv audio + video: %d wake-ups in %v (%.2f/s)", sending, d, float64(sending)/d.Seconds())
	require.LessOrEqual(t, sending, int(d/(2*silencePtime))+14)
}

// TestSilenceRidesOnArrivals: a sendrecv call receiving audio sends its
// silence from the wake-ups of the arriving packets: its timer wakes the
// owner only for RTCP reports.
func TestSilenceRidesOnArrivals(t *testing.T) {
	h := newHarness(t, Config{Audio: true})
	h.start(audioSpec(peerAudio))
	const d = 60 * time.Second
	pkts := tonePackets(t, int(d/(20*time.Millisecond)), 0x1234, 0, 0)
	timer := 0
	for _, p := range pkts {
		at := t0.Add(7*time.Millisecond + p.At) // not in step with the silence
		timer += h.timerPolls(at)
		h.now = at
		h.s.receive(h.s.audio.rtpSock, p.Data, peerAudio, at)
		h.s.poll(at)
	}
	sent := h.s.Stats().Audio.PacketsSent
	t.Logf("%v of audio in, %d silence packets out, %d timer wake-ups", d, sent, timer)
	require.InDelta(t, len(pkts), int(sent), 2, "silence keeps its pace")
	require.LessOrEqual(t, timer, int(d/(5*time.Second))+2, "timer wake-ups beyond RTCP")
}
