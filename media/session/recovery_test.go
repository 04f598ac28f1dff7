package session

import (
	"encoding/binary"
	"math/rand/v2"
	"sort"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
)

// phone is a simulated video phone on a virtual network in front of a
// harness: it sends the H.264 test clip at 25 fps, answers PLI and FIR with
// an IDR after Respond (a real encoder, not a replayed capture), and, with
// Retransmit, resends NACKed packets (as RTX with RTXPT). Lose decides the
// fate of each transmission.
type phone struct {
	t    testing.TB
	h    *harness
	enc  *rtph264.Encoder
	idr  testmedia.AccessUnit   // the clip's first IDR
	ps   []testmedia.AccessUnit // the clip's other pictures
	ssrc uint32

	Delay      time.Duration                   // one-way delay of every packet
	Respond    time.Duration                   // keyframe request to IDR; negative: ignored
	GOP        int                             // frames between IDRs; zero: only on request
	Retransmit bool                            // resend on NACK
	RTXPT      uint8                           // nonzero: resend as RTX with this payload type
	Lose       func(seq uint16, rtx bool) bool // true: the transmission is lost

	frame    int
	curIDR   bool // the frame being sent is an IDR
	pIndex   int
	idrDue   time.Time
	haveDue  bool
	queue    []queued
	history  map[uint16][]byte
	rtxSeq   uint16
	reqs     int // keyframe requests seen
	nacked   int // sequence numbers NACKed
	resent   int
	lost     int // original transmissions lost
	sentIDRs []time.Time
}

type queued struct {
	at   time.Time
	data []byte
}

func newPhone(t testing.TB, h *harness, ssrc uint32) *phone {
	enc, err := rtph264.NewEncoder(rtph264.EncoderConfig{PayloadType: 96, SSRC: ssrc, InitialSequenceNumber: 65500, MTU: 400})
	require.NoError(t, err)
	p := &phone{t: t, h: h, enc: enc, ssrc: ssrc, Delay: 30 * time.Millisecond,
		Respond: 60 * time.Millisecond, history: map[uint16][]byte{}}
	for i, au := range testmedia.ClipAccessUnits() {
		switch {
		case i == 0:
			p.idr = au
		case !au.Keyframe:
			p.ps = append(p.ps, au)
		}
	}
	return p
}

// send puts one transmission on the network.
func (p *phone) send(at time.Time, b []byte, seq uint16, rtx bool) bool {
	if p.Lose != nil && p.Lose(seq, rtx) {
		return false
	}
	p.queue = append(p.queue, queued{at: at.Add(p.Delay), data: b})
	return true
}

// sendFrame encodes and sends the next frame at now.
func (p *phone) sendFrame(now time.Time) {
	idr := p.frame == 0 || (p.GOP > 0 && p.frame%p.GOP == 0) || (p.haveDue && !now.Before(p.idrDue))
	var au testmedia.AccessUnit
	p.curIDR = idr
	if idr {
		au = p.idr
		p.haveDue = false
		p.sentIDRs = append(p.sentIDRs, now)
	} else {
		au = p.ps[p.pIndex%len(p.ps)]
		p.pIndex++
	}
	pkts, err := p.enc.Encode(au.NALUs, uint32(p.frame*3600))
	require.NoError(p.t, err)
	for _, pk := range pkts {
		b := marshalRTP(p.t, pk)
		p.history[pk.SequenceNumber] = b
		if !p.send(now, b, pk.SequenceNumber, false) {
			p.lost++
		}
	}
	p.frame++
}

// feedback reads what the session sent the phone over RTCP.
func (p *phone) feedback(now time.Time) {
	for _, raw := range p.h.net.take(rtcpAddr(peerVideo, 1)) {
		pkts, err := rtcp.Unmarshal(raw)
		require.NoError(p.t, err)
		for _, pk := range pkts {
			switch pk := pk.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.reqs++
				if p.Respond >= 0 && !p.haveDue {
					p.idrDue, p.haveDue = now.Add(p.Delay+p.Respond), true
				}
			case *rtcp.TransportLayerNack:
				for _, pair := range pk.Nacks {
					for _, seq := range pair.PacketList() {
						p.nacked++
						b, ok := p.history[seq]
						if !p.Retransmit || !ok {
							continue
						}
						p.resent++
						at := now.Add(p.Delay) // the NACK's trip to the phone
						if p.RTXPT == 0 {
							p.send(at, b, seq, true)
							continue
						}
						var orig rtp.Packet
						require.NoError(p.t, orig.Unmarshal(b))
						rtx := rtp.Packet{Header: orig.Header, Payload: binary.BigEndian.AppendUint16(nil, seq)}
						rtx.Payload = append(rtx.Payload, orig.Payload...)
						rtx.PayloadType, rtx.SSRC, rtx.SequenceNumber = p.RTXPT, p.ssrc+1, p.rtxSeq
						p.rtxSeq++
						p.send(at, marshalRTP(p.t, &rtx), seq, true)
					}
				}
			}
		}
	}
}

// run plays the call until until: frames every 40 ms, packets delivered
// when due, feedback answered.
func (p *phone) run(until time.Time) {
	next := p.h.now
	for {
		sort.SliceStable(p.queue, func(i, j int) bool { return p.queue[i].at.Before(p.queue[j].at) })
		at := next
		if len(p.queue) > 0 && p.queue[0].at.Before(at) {
			at = p.queue[0].at
		}
		if at.After(until) {
			p.h.advance(until)
			p.feedback(until)
			return
		}
		if len(p.queue) > 0 && !p.queue[0].at.After(at) {
			q := p.queue[0]
			p.queue = p.queue[1:]
			p.h.deliver(media.KindVideo, peerVideo, q.data, q.at)
		} else {
			p.h.advance(at)
			p.sendFrame(at)
			next = at.Add(40 * time.Millisecond)
		}
		p.feedback(p.h.now)
	}
}

// keyframeGaps returns the largest distance between delivered keyframes
// and between delivered frames.
func keyframeGaps(frames []media.Frame) (kf, frame time.Duration) {
	var lastKey, last time.Duration
	haveKey := false
	for i, f := range frames {
		if i > 0 {
			frame = max(frame, f.PTS-last)
		}
		if f.Keyframe {
			if haveKey {
				kf = max(kf, f.PTS-lastKey)
			}
			lastKey, haveKey = f.PTS, true
		}
		last = f.PTS
	}
	return kf, frame
}

// TestKeyframeEscalation: while no keyframe comes, requests are repeated
// after the response time and a frame, escalating PLI → PLI → FIR → INFO,
// backing off after the fourth, never closer than KeyframeMinGap; INFO at
// most once a second; a keyframe ends them.
func TestKeyframeEscalation(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fb       media.Feedback
		fallback bool
		want     []string
	}{
		{"pli fir info", media.Feedback{NACK: true, PLI: true, FIR: true}, true, []string{"pli", "pli", "fir", "fallback", "pli", "pli", "fir", "fallback"}},
		{"pli only", media.Feedback{PLI: true}, false, []string{"pli", "pli", "pli", "pli", "pli", "pli"}},
		{"fir only", media.Feedback{FIR: true}, false, []string{"fir", "fir", "fir", "fir", "fir", "fir"}},
		{"info only", media.Feedback{}, true, []string{"fallback", "fallback", "fallback", "fallback", "fallback"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Video: true}
			if tc.fallback {
				cfg.RequestKeyframeFallback = func() {}
			}
			h := newHarness(t, cfg)
			h.start(videoSpec(peerVideo, tc.fb))
			p := newPhone(t, h, 0x77)
			p.Respond = -1 // ignores every request
			p.frame = 1    // and starts without an IDR: the decoder waits
			p.run(t0.Add(6 * time.Second))
			reqs := h.eventsOf(EventKeyframeRequested)
			require.GreaterOrEqual(t, len(reqs), len(tc.want))
			for i, w := range tc.want {
				require.Equal(t, w, reqs[i].Detail, "request %d", i)
			}
			var lastInfo time.Time
			for i, r := range reqs {
				if i > 0 {
					gap := r.Time.Sub(reqs[i-1].Time)
					require.GreaterOrEqual(t, gap, 100*time.Millisecond)
					require.LessOrEqual(t, gap, 2*time.Second+40*time.Millisecond)
					if i < 4 && (tc.fb.PLI || tc.fb.FIR) {
						require.Less(t, gap, 400*time.Millisecond, "request %d: the first ones follow the response time", i)
					}
				}
				if r.Detail == "fallback" {
					if !lastInfo.IsZero() {
						require.GreaterOrEqual(t, r.Time.Sub(lastInfo), time.Second)
					}
					lastInfo = r.Time
				}
			}
			require.Less(t, len(reqs), 20, "a phone that never answers is not stormed")
			require.Equal(t, len(reqs), p.reqs+int(h.s.Stats().Video.KeyframeFallbacks))
			// an IDR ends the requests
			p.Respond = 0
			p.haveDue, p.idrDue = true, h.now
			p.run(h.now.Add(3 * time.Second))
			n := len(h.eventsOf(EventKeyframeRequested))
			require.NotZero(t, h.s.Stats().Video.KeyframesReceived)
			p.run(h.now.Add(3 * time.Second))
			require.Len(t, h.eventsOf(EventKeyframeRequested), n)
			// a sink's request: asked at once, three times at most
			p.Respond = -1
			h.s.RequestKeyframe()
			p.run(h.now.Add(5 * time.Second))
			require.Len(t, h.eventsOf(EventKeyframeRequested), n+3)
		})
	}
}

// TestKeyframeRecoveryFast: a phone that answers in 60 ms on a 30 ms path
// whose requested IDR is itself lost: the request is repeated after the
// measured response time, not a second later, and the freeze is short.
func TestKeyframeRecoveryFast(t *testing.T) {
	h := newHarness(t, Config{Video: true})
	h.start(videoSpec(peerVideo, media.Feedback{PLI: true, FIR: true}))
	p := newPhone(t, h, 0x99)
	// frame 30 lost: a plain recovery, which measures the response time;
	// frame 100 lost, and the IDR answering the request loses a packet too
	armed := false
	p.Lose = func(seq uint16, rtx bool) bool {
		switch {
		case p.frame == 30 || p.frame == 100:
			armed = p.frame == 100
			return true
		case armed && p.curIDR:
			armed = false
			return true
		}
		return false
	}
	p.run(t0.Add(6 * time.Second))
	st := h.s.Stats().Video
	require.NotZero(t, st.FramesDropped)
	require.Len(t, p.sentIDRs, 4, "the lost answer was asked for again")
	require.Equal(t, uint64(2), st.Freezes)
	// loss, request, IDR lost, request again: well under 600 ms
	require.Less(t, st.LongestFreeze, 400*time.Millisecond, "%+v", st)
	// the answer to the second loss broke: asked again as soon as its
	// gap arrived, not after a retry interval and a jitter-buffer wait
	reqs := h.eventsOf(EventKeyframeRequested)
	require.Len(t, reqs, 3)
	again := reqs[2].Time.Sub(reqs[1].Time)
	require.Less(t, again, st.KeyframeResponse+50*time.Millisecond, "re-asked %v after the request whose answer broke", again)
	require.Greater(t, st.KeyframeResponse, 50*time.Millisecond)
	require.Less(t, st.KeyframeResponse, 250*time.Millisecond)
	t.Logf("freeze %v, response %v, requests %d", st.LongestFreeze, st.KeyframeResponse, p.reqs)
}

// TestEarlyKeyframes: a phone that sends an IDR every 10 s, or when asked:
// with MaxKeyframeInterval 2 s the delivered keyframes are never further
// apart than 2 s, and not much closer than that either.
func TestEarlyKeyframes(t *testing.T) {
	for _, respond := range []time.Duration{20 * time.Millisecond, 200 * time.Millisecond} {
		h := newHarness(t, Config{Video: true, MaxKeyframeInterval: 2 * time.Second})
		h.start(videoSpec(peerVideo, media.Feedback{PLI: true}))
		p := newPhone(t, h, 0x55)
		p.GOP, p.Respond = 250, respond
		p.run(t0.Add(20 * time.Second))
		frames := h.frames[media.KindVideo]
		kf, fr := keyframeGaps(frames)
		require.LessOrEqual(t, kf, 2*time.Second, "respond %v", respond)
		require.GreaterOrEqual(t, kf, 1200*time.Millisecond, "respond %v: keyframes asked for too early", respond)
		require.LessOrEqual(t, fr, 41*time.Millisecond, "no frame lost")
		require.LessOrEqual(t, len(p.sentIDRs), 18) // 20 s / 1.2 s, the first, a double
		t.Logf("respond %v: max keyframe interval %v, %d IDRs in 20 s", respond, kf, len(p.sentIDRs))
	}
}

// TestNACKRecovers: 2 % random loss on a phone that retransmits (plainly
// and as RTX): every lost packet is asked for and recovered, no frame is
// dropped, and with RTX the payloads are the original ones.
func TestNACKRecovers(t *testing.T) {
	for _, rtxPT := range []uint8{0, 99} {
		h := newHarness(t, Config{Video: true})
		spec := videoSpec(peerVideo, media.Feedback{NACK: true, PLI: true})
		if rtxPT != 0 {
			spec.Formats = append(spec.Formats, media.PayloadFormat{PayloadType: rtxPT, Codec: media.CodecRTX, ClockRate: 90000, Fmtp: "apt=96"})
		}
		h.start(spec)
		p := newPhone(t, h, 0x1234)
		p.Retransmit, p.RTXPT = true, rtxPT
		rng := rand.New(rand.NewPCG(5, uint64(rtxPT)))
		end := t0.Add(9500 * time.Millisecond) // what is lost after it may not be noticed yet
		p.Lose = func(seq uint16, rtx bool) bool { return p.frame > 0 && h.now.Before(end) && rng.Float64() < 0.02 }
		p.GOP = 25
		p.run(t0.Add(10 * time.Second))
		st := h.s.Stats().Video
		require.Greater(t, p.lost, 10)
		require.Zero(t, st.FramesDropped, "rtx %d: %+v", rtxPT, st)
		require.GreaterOrEqual(t, int(st.Frames), 249, "every frame (the last may be in flight)")
		require.GreaterOrEqual(t, int(st.PacketsRecovered), p.lost, "rtx %d", rtxPT)
		if rtxPT != 0 {
			require.NotZero(t, st.RTXPackets)
			base := testmedia.ClipAccessUnits()
			valid := map[string]bool{}
			for _, au := range base {
				valid[string(rtph264.JoinAVC(au.NALUs))] = true
			}
			for _, f := range h.frames[media.KindVideo] {
				require.True(t, valid[string(f.Payload)], "a frame rebuilt from RTX differs from the clip")
			}
		}
		t.Logf("rtx %d: %d lost, %d NACKed, %d recovered, %d NACK packets", rtxPT, p.lost, p.nacked, st.PacketsRecovered, st.NACKSent)
	}
}

// TestNACKPeerNeverRetransmits: a peer that accepts NACK but never answers
// is noticed; frames behind a gap then wait only the jitter delay.
func TestNACKPeerNeverRetransmits(t *testing.T) {
	h := newHarness(t, Config{Video: true})
	h.start(videoSpec(peerVideo, media.Feedback{NACK: true, PLI: true}))
	p := newPhone(t, h, 0x4321)
	rng := rand.New(rand.NewPCG(9, 9))
	p.Lose = func(seq uint16, rtx bool) bool { return p.frame > 0 && rng.Float64() < 0.03 }
	p.run(t0.Add(10 * time.Second))
	st := h.s.Stats().Video
	require.GreaterOrEqual(t, st.NACKedPackets, uint64(trustNACK))
	require.Zero(t, st.PacketsRecovered)
	require.False(t, h.s.video.peerRetransmits())
}

// TestFramesStrictlyIncrease: whatever the packets do (loss, reordering,
// duplicates, an SSRC change, a timestamp jump, bursts), each stream's
// frames leave the session with strictly increasing timestamps.
func TestFramesStrictlyIncrease(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, 77))
		h := newHarness(t, Config{Audio: true, Video: true})
		h.start(audioSpec(peerAudio), videoSpec(peerVideo, media.Feedback{NACK: true, PLI: true}))
		type pkt struct {
			at   time.Duration
			kind media.Kind
			data []byte
		}
		var pkts []pkt
		_, video := clipPackets(t, 2, 0xabc, rng.Uint32())
		audio := tonePackets(t, 200, 0xdef, uint16(rng.Uint32()), rng.Uint32())
		jump, offset := time.Duration(rng.IntN(4000))*time.Millisecond, uint32(rng.Uint32())
		for _, p := range video {
			b := append([]byte(nil), p.Data...)
			if p.At > jump && seed%3 == 0 {
				binary.BigEndian.PutUint32(b[4:], binary.BigEndian.Uint32(b[4:])+offset) // a timestamp jump
			}
			pkts = append(pkts, pkt{p.At, media.KindVideo, b})
		}
		for i, p := range audio {
			b := append([]byte(nil), p.Data...)
			if i > 100 && seed%2 == 0 {
				binary.BigEndian.PutUint32(b[8:], 0xfeed) // a new SSRC
			}
			pkts = append(pkts, pkt{p.At, media.KindAudio, b})
		}
		var sched []pkt
		for _, p := range pkts {
			if rng.Float64() < 0.03 {
				continue // lost
			}
			at := p.at + time.Duration(rng.IntN(60))*time.Millisecond
			if rng.Float64() < 0.05 {
				at += 150 * time.Millisecond // very late
			}
			sched = append(sched, pkt{at, p.kind, p.data})
			if rng.Float64() < 0.02 {
				sched = append(sched, pkt{at + time.Millisecond, p.kind, p.data}) // duplicate
			}
		}
		sort.SliceStable(sched, func(i, j int) bool { return sched[i].at < sched[j].at })
		for _, p := range sched {
			from := peerAudio
			if p.kind == media.KindVideo {
				from = peerVideo
			}
			h.deliver(p.kind, from, p.data, t0.Add(p.at))
		}
		h.advance(h.now.Add(time.Second))
		for _, k := range []media.Kind{media.KindAudio, media.KindVideo} {
			frames := h.frames[k]
			require.NotEmpty(t, frames, "seed %d %v", seed, k)
			for i := 1; i < len(frames); i++ {
				require.Greater(t, frames[i].DTS, frames[i-1].DTS, "seed %d %v frame %d", seed, k, i)
				require.GreaterOrEqual(t, frames[i].PTS, frames[i].DTS)
			}
		}
	}
}

// TestKeyframeRequestBeforeVideo: a sink asks for a keyframe before any
// video arrived from a peer that accepts PLI: no SIP INFO is sent in its
// place; the PLI goes out once the peer's SSRC is known.
func TestKeyframeRequestBeforeVideo(t *testing.T) {
	h := newHarness(t, Config{Video: true, RequestKeyframeFallback: func() {}})
	h.start(videoSpec(peerVideo, media.Feedback{PLI: true}))
	h.s.keyframeAsked.Store(true)
	h.advance(t0.Add(time.Second))
	require.Empty(t, h.eventsOf(EventKeyframeRequested))
	p := newPhone(t, h, 0x66)
	p.frame = 1 // P-frames: the decoder waits too
	p.run(t0.Add(1500 * time.Millisecond))
	reqs := h.eventsOf(EventKeyframeRequested)
	require.NotEmpty(t, reqs)
	require.Equal(t, "pli", reqs[0].Detail)
	require.Zero(t, h.s.Stats().Video.KeyframeFallbacks)
}

// TestLossConceal: with LossConceal a loss that NACK cannot repair (the
// phone does not retransmit) does not freeze the picture: frames keep
// coming, the keyframe that cleans up is still asked for; with LossFreeze
// the same losses freeze.
func TestLossConceal(t *testing.T) {
	run := func(policy LossPolicy) (StreamStats, int) {
		h := newHarness(t, Config{Video: true, LossPolicy: policy})
		h.start(videoSpec(peerVideo, media.Feedback{PLI: true}))
		p := newPhone(t, h, 0x31)
		p.GOP = 250
		lost := 0
		p.Lose = func(seq uint16, rtx bool) bool {
			// one packet of every 40th frame (P-frames of several packets)
			if p.frame%40 == 20 && !p.curIDR && lost < 1000 && seq%2 == 0 {
				lost++
				return true
			}
			return false
		}
		p.run(t0.Add(10 * time.Second))
		return h.s.Stats().Video, len(h.frames[media.KindVideo])
	}
	conceal, nc := run(LossConceal)
	freeze, nf := run(LossFreeze)
	require.NotZero(t, freeze.Freezes)
	// a frame whose first packet is lost has nothing decodable and is
	// dropped even when concealing: a one-frame hiccup, never a freeze
	// until the keyframe
	require.LessOrEqual(t, conceal.LongestFreeze, 2*defaultFrame, "%+v", conceal)
	require.Greater(t, freeze.LongestFreeze, 2*defaultFrame)
	require.GreaterOrEqual(t, nc, 240)
	require.Less(t, nf, nc)
	require.NotZero(t, conceal.PLISent, "the clean-up keyframe is still asked for")
	t.Logf("frames delivered: conceal %d, freeze %d (freezes %d, %v)", nc, nf, freeze.Freezes, freeze.FrozenTime)
}

// TestKeyframeResponseFromBrokenAnswer: the first recovery's answer loses
// its first packet and is asked for again at once. The response time is taken from that
// broken answer, not from the first request to the keyframe that finally
// comes (twice the real time and more, which kept later retries twice as
// far apart as needed).
func TestKeyframeResponseFromBrokenAnswer(t *testing.T) {
	h := newHarness(t, Config{Video: true})
	h.start(videoSpec(peerVideo, media.Feedback{PLI: true, FIR: true}))
	p := newPhone(t, h, 0x77)
	p.Respond = 120 * time.Millisecond
	armed := false
	p.Lose = func(seq uint16, rtx bool) bool {
		switch {
		case p.frame == 30:
			armed = true
			return true
		case armed && p.curIDR:
			armed = false
			return true
		}
		return false
	}
	p.run(t0.Add(3 * time.Second))
	st := h.s.Stats().Video
	require.Len(t, p.sentIDRs, 3, "the first, the broken answer, the one asked for again")
	require.Len(t, h.eventsOf(EventKeyframeRequested), 2)
	reqs := h.eventsOf(EventKeyframeRequested)
	again := reqs[1].Time.Sub(reqs[0].Time)
	t.Logf("response %v (the phone answers in %v), asked again %v after the first request, freeze %v",
		st.KeyframeResponse, p.Respond, again, st.LongestFreeze)
	// The loss is the answer's first packet (its SPS and PPS), before any
	// packet that shows it is a keyframe: asked again as that one arrives.
	require.Less(t, again, st.KeyframeResponse+50*time.Millisecond)
	require.Greater(t, st.KeyframeResponse, p.Respond)
	require.Less(t, st.KeyframeResponse, p.Respond+100*time.Millisecond)
}
