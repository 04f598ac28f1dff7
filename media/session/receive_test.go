package session

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/netsim"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/rtcpx"
	"github.com/sipstream/sipstream/media/rtph264"
)

// sched is a packet of a generated stream: when it was captured and sent.
type sched struct {
	capture time.Duration
	data    []byte
}

// tonePackets returns n 20 ms PCMA packets of a 1 kHz tone.
func tonePackets(t testing.TB, n int, ssrc uint32, seq uint16, ts uint32) []netsim.Packet {
	var out []netsim.Packet
	for i := 0; i < n; i++ {
		pcm := testmedia.Tone(1000, 8000, i*160, 160, 0.5)
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: seq + uint16(i), Timestamp: ts + uint32(i*160), SSRC: ssrc, Marker: i == 0},
			Payload: g711.EncodeALaw(nil, pcm)}
		out = append(out, netsim.Packet{At: time.Duration(i) * 20 * time.Millisecond, Data: marshalRTP(t, p)})
	}
	return out
}

// clipPackets packetizes the H.264 clip reps times at 25 fps.
func clipPackets(t testing.TB, reps int, ssrc uint32, tsBase uint32) (aus [][]byte, pkts []netsim.Packet) {
	enc, err := rtph264.NewEncoder(rtph264.EncoderConfig{PayloadType: 96, SSRC: ssrc, InitialSequenceNumber: 65000})
	require.NoError(t, err)
	base := testmedia.ClipAccessUnits()
	for r := 0; r < reps; r++ {
		for _, au := range base {
			i := len(aus)
			aus = append(aus, rtph264.JoinAVC(au.NALUs))
			ps, err := enc.Encode(au.NALUs, tsBase+uint32(i*3600))
			require.NoError(t, err)
			for k, p := range ps {
				pkts = append(pkts, netsim.Packet{At: time.Duration(i)*40*time.Millisecond + time.Duration(k)*200*time.Microsecond, Data: marshalRTP(t, p)})
			}
		}
	}
	return aus, pkts
}

func TestToneThroughPCMA(t *testing.T) {
	h := newHarness(t, Config{Audio: true})
	h.start(audioSpec(peerAudio))
	arr, st, err := netsim.Schedule(netsim.Config{Seed: 11, Loss: 0.05, Jitter: 30 * time.Millisecond, Reorder: 0.02}, tonePackets(t, 150, 0x1111, 65500, 0xfffff000))
	require.NoError(t, err)
	for _, p := range arr {
		h.deliver(media.KindAudio, peerAudio, p.Data, t0.Add(p.At))
	}
	h.advance(h.now.Add(time.Second))
	frames := h.frames[media.KindAudio]
	require.InDelta(t, 150-int(st.Lost), len(frames), 2)
	var last time.Duration
	for i, f := range frames {
		require.Equal(t, media.CodecPCMA, f.Codec)
		require.Equal(t, 20*time.Millisecond, f.Duration)
		require.GreaterOrEqual(t, f.PTS, last, "frame %d", i)
		last = f.PTS
		pcm := g711.DecodeALaw(nil, f.Payload)
		require.Greater(t, testmedia.Goertzel(pcm, 8000, 1000), 0.9, "frame %d", i)
		require.Less(t, testmedia.Goertzel(pcm, 8000, 1500), 0.1, "frame %d", i)
	}
	stats := h.s.Stats().Audio
	require.Equal(t, uint64(len(frames)), stats.Frames)
	require.NotZero(t, stats.PacketsLost)
}

// TestLossyH264 sends the clip through 5 % loss, 30 ms jitter and 2 %
// reordering: every emitted frame is one of the clip's access units byte
// for byte, a non-IDR frame only follows the frame before it, and PLIs go
// out about once a second while the decoder waits.
func TestLossyH264(t *testing.T) {
	base := testmedia.ClipAccessUnits()
	index := map[string]int{}
	for i, au := range base {
		index[string(rtph264.JoinAVC(au.NALUs))] = i
	}
	for seed := uint64(1); seed <= 3; seed++ {
		h := newHarness(t, Config{Video: true})
		h.start(videoSpec(peerVideo, media.Feedback{PLI: true, FIR: true}))
		_, pkts := clipPackets(t, 4, 0xabcd, 0xfff00000)
		arr, st, err := netsim.Schedule(netsim.Config{Seed: seed, Loss: 0.05, Jitter: 30 * time.Millisecond, Reorder: 0.02}, pkts)
		require.NoError(t, err)
		require.NotZero(t, st.Lost)
		for _, p := range arr {
			h.deliver(media.KindVideo, peerVideo, p.Data, t0.Add(p.At))
		}
		h.advance(h.now.Add(time.Second))
		frames := h.frames[media.KindVideo]
		require.NotEmpty(t, frames)
		prev := -1
		var lastPTS time.Duration
		for k, f := range frames {
			i, ok := index[string(f.Payload)]
			require.True(t, ok, "seed %d frame %d is not an access unit of the clip", seed, k)
			require.Equal(t, base[i].Keyframe, f.Keyframe)
			if !f.Keyframe {
				require.Equal(t, (prev+1)%len(base), i, "seed %d: frame %d follows a missing picture", seed, k)
			}
			require.GreaterOrEqual(t, f.PTS, lastPTS)
			lastPTS, prev = f.PTS, i
		}
		stats := h.s.Stats().Video
		require.NotZero(t, stats.FramesDropped)
		require.NotZero(t, stats.PLISent)
		// requests repeat while no keyframe comes (the clip has one every
		// second and ignores requests), paced, never a storm
		reqs := h.eventsOf(EventKeyframeRequested)
		require.Less(t, len(reqs), 60)
		for i := 1; i < len(reqs); i++ {
			require.GreaterOrEqual(t, reqs[i].Time.Sub(reqs[i-1].Time), 100*time.Millisecond)
		}
		plis := 0
		for _, p := range rtcpPackets(t, h.net.take(rtcpAddr(peerVideo, 1))) {
			if pli, ok := p.(*rtcp.PictureLossIndication); ok {
				require.Equal(t, uint32(0xabcd), pli.MediaSSRC)
				plis++
			}
		}
		require.Equal(t, int(stats.PLISent), plis)
		t.Logf("seed %d: %d of %d frames emitted, %d packets lost, %d PLIs", seed, len(frames), 4*len(base), st.Lost, plis)
	}
}

func TestLatching(t *testing.T) {
	h := newHarness(t, Config{Audio: true})
	h.start(audioSpec(peerAudio))
	nat := mustAddr("192.0.2.7:31000") // the phone behind NAT: not the SDP address
	stranger := mustAddr("198.51.100.1:5000")
	pkts := tonePackets(t, 200, 0x42, 100, 1000)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 20 * time.Millisecond) }
	for i := 0; i < 50; i++ {
		h.deliver(media.KindAudio, nat, pkts[i].Data, at(i))
		h.deliver(media.KindAudio, stranger, pkts[i].Data, at(i)) // injected copies
	}
	// the NAT address is not the SDP's: it is latched once the SDP
	// address stayed silent for learnDelay (25 packets)
	learnt := int(learnDelay / (20 * time.Millisecond))
	require.Len(t, h.frames[media.KindAudio], 50-learnt)
	st := h.s.Stats().Audio
	require.Equal(t, uint64(50+learnt), st.StrangerPackets)
	require.Equal(t, nat, st.Source)
	require.Len(t, h.eventsOf(EventSourceLatched), 1)
	// symmetric RTP: silence goes back to where the packets come from
	require.NotEmpty(t, h.net.take(nat))
	require.LessOrEqual(t, len(h.net.take(peerAudio)), learnt+1, "nothing to the SDP address after latching")
	// the phone moves (new NAT binding): after 0.5 s of silence from the
	// old address and 10 packets from the new one, it is taken
	moved := mustAddr("192.0.2.7:31002")
	for i := 50; i < 100; i++ {
		h.deliver(media.KindAudio, moved, pkts[i].Data, at(i+30))
	}
	require.Len(t, h.eventsOf(EventSourceSwitched), 1)
	require.Equal(t, moved, h.s.Stats().Audio.Source)
	require.InDelta(t, 50-learnt+40, len(h.frames[media.KindAudio]), 1)
}

// TestSSRCChangeAndWrap: timestamps and sequence numbers wrap, then the
// peer re-INVITEs after a 2 s hold with a new SSRC, new timestamps and
// another codec: PTS stays monotonic and the hold shows as a gap.
func TestSSRCChangeAndWrap(t *testing.T) {
	h := newHarness(t, Config{Audio: true})
	h.start(audioSpec(peerAudio))
	for _, p := range tonePackets(t, 100, 1, 65500, 0xffffff00) {
		h.deliver(media.KindAudio, peerAudio, p.Data, t0.Add(p.At))
	}
	hold := t0.Add(2 * time.Second)
	sp := audioSpec(peerAudio)
	sp.Direction = media.Inactive
	h.advance(hold)
	require.NoError(t, h.s.apply([]media.StreamSpec{sp}, h.now))
	resume := hold.Add(2 * time.Second)
	h.advance(resume)
	require.NoError(t, h.s.apply([]media.StreamSpec{audioSpec(peerAudio)}, h.now))
	// PCMU now, new SSRC and timestamps
	for i, p := range tonePackets(t, 50, 2, 7, 123456) {
		var pkt rtp.Packet
		require.NoError(t, pkt.Unmarshal(p.Data))
		pkt.PayloadType = 0
		h.deliver(media.KindAudio, peerAudio, marshalRTP(t, &pkt), resume.Add(time.Duration(i)*20*time.Millisecond))
	}
	frames := h.frames[media.KindAudio]
	require.Len(t, frames, 150)
	for i := 1; i < len(frames); i++ {
		require.GreaterOrEqual(t, frames[i].PTS, frames[i-1].PTS, "frame %d", i)
		if i != 100 {
			require.InDelta(t, float64(20*time.Millisecond), float64(frames[i].PTS-frames[i-1].PTS), float64(time.Millisecond), "frame %d", i)
		}
	}
	require.Equal(t, media.CodecPCMU, frames[100].Codec)
	gap := frames[100].PTS - frames[99].PTS
	require.InDelta(t, float64(4*time.Second-99*20*time.Millisecond), float64(gap), float64(5*time.Millisecond), "hold gap shown")
	require.Len(t, h.eventsOf(EventSSRCChanged), 1)
	require.Empty(t, h.eventsOf(EventMediaStopped), "no timeout while on hold")
}

// TestLipSync: audio arrives at once, video 120 ms later (plus jitter),
// both send SRs: after convergence the offset is within 20 ms.
func TestLipSync(t *testing.T) {
	h := newHarness(t, Config{Audio: true, Video: true})
	h.start(audioSpec(peerAudio), videoSpec(peerVideo, media.Feedback{PLI: true}))
	const dur = 8 * time.Second
	rng := rand.New(rand.NewPCG(5, 6))
	type ev struct {
		at   time.Time
		kind media.Kind
		rtcp bool
		data []byte
	}
	var evs []ev
	audio := tonePackets(t, int(dur/(20*time.Millisecond)), 0xa, 1, 0xfffff000)
	for _, p := range audio {
		evs = append(evs, ev{at: t0.Add(p.At + time.Duration(rng.Int64N(int64(5*time.Millisecond)))), kind: media.KindAudio, data: p.Data})
	}
	_, video := clipPackets(t, 2, 0xb, 0x10000000)
	for _, p := range video {
		evs = append(evs, ev{at: t0.Add(p.At + 120*time.Millisecond + time.Duration(rng.Int64N(int64(10*time.Millisecond)))), kind: media.KindVideo, data: p.Data})
	}
	ntp0 := rtcpx.NTP(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	for c := 300 * time.Millisecond; c < dur; c += time.Second {
		ntp := ntp0 + uint64(c)*(1<<32)/uint64(time.Second)
		a, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 0xa, NTPTime: ntp, RTPTime: 0xfffff000 + uint32(c/time.Millisecond*8)}})
		v, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 0xb, NTPTime: ntp, RTPTime: 0x10000000 + uint32(c/time.Millisecond*90)}})
		evs = append(evs, ev{at: t0.Add(c), kind: media.KindAudio, rtcp: true, data: a}, ev{at: t0.Add(c + 120*time.Millisecond), kind: media.KindVideo, rtcp: true, data: v})
	}
	sortEvents := func(i, j int) bool { return evs[i].at.Before(evs[j].at) }
	sortSlice(evs, sortEvents)
	for _, e := range evs {
		if e.rtcp {
			h.deliverRTCP(e.kind, rtcpAddr(h.s.stream(e.kind).spec.Remote, 1), e.data, e.at)
			continue
		}
		h.deliver(e.kind, h.s.stream(e.kind).spec.Remote, e.data, e.at)
	}
	h.advance(h.now.Add(time.Second))
	a, v := h.frames[media.KindAudio], h.frames[media.KindVideo]
	require.Len(t, a, len(audio))
	require.Len(t, v, 200)
	require.Equal(t, uint64(8), h.s.Stats().Video.SenderReports)
	checked := 0
	for i, f := range v {
		c := time.Duration(i) * 40 * time.Millisecond
		if c < 4*time.Second {
			continue
		}
		off := f.PTS - a[c/(20*time.Millisecond)].PTS
		require.LessOrEqual(t, off.Abs(), 20*time.Millisecond, "video frame %d: offset %v", i, off)
		checked++
	}
	require.Equal(t, 100, checked)
	// before the first SR the video sits 120 ms late (arrival time)
	early := v[3].PTS - a[6].PTS
	require.InDelta(t, float64(120*time.Millisecond), float64(early), float64(15*time.Millisecond))
	// and no frame-to-frame jump on the way
	for i := 1; i < len(v); i++ {
		require.InDelta(t, float64(40*time.Millisecond), float64(v[i].PTS-v[i-1].PTS), float64(6*time.Millisecond), "video frame %d", i)
	}
}

func TestReceiveDTMF(t *testing.T) {
	h := newHarness(t, Config{Audio: true})
	h.start(audioSpec(peerAudio))
	seq := uint16(1)
	at := t0
	send := func(pt uint8, marker bool, ts uint32, payload []byte) {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: seq, Timestamp: ts, SSRC: 9}, Payload: payload}
		seq++
		h.deliver(media.KindAudio, peerAudio, marshalRTP(t, p), at)
		at = at.Add(20 * time.Millisecond)
	}
	send(8, true, 0, bytes.Repeat([]byte{0xd5}, 160))
	for i, d := range []uint16{400, 800, 1200} {
		send(101, i == 0, 160, []byte{5, 10, byte(d >> 8), byte(d)})
	}
	for i := 0; i < 3; i++ {
		send(101, false, 160, []byte{5, 0x80 | 10, 0x04, 0xb0})
	}
	require.Equal(t, []rune{'5'}, h.dtmf)
	require.Len(t, h.frames[media.KindAudio], 1)
}

// TestRTCPReports: SR from the peer, then an RR/SR from the session with
// a reception block (loss, LSR/DLSR) and SDES CNAME, to the RTCP port.
func TestRTCPReports(t *testing.T) {
	h := newHarness(t, Config{Audio: true, RTCPInterval: 2 * time.Second, CNAME: "test@sipstream"})
	sp := audioSpec(peerAudio)
	sp.Direction = media.RecvOnly
	h.start(sp)
	pkts := tonePackets(t, 100, 0x99, 10, 0)
	for i, p := range pkts {
		if i%10 == 3 {
			continue // 10 % loss
		}
		h.deliver(media.KindAudio, peerAudio, p.Data, t0.Add(p.At))
	}
	srNTP := rtcpx.NTP(t0.Add(time.Second))
	b, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.SenderReport{SSRC: 0x99, NTPTime: srNTP, RTPTime: 8000}})
	h.deliverRTCP(media.KindAudio, rtcpAddr(peerAudio, 1), b, t0.Add(1500*time.Millisecond))
	h.advance(t0.Add(3100 * time.Millisecond)) // reports at 1 s and 3 s
	var rr *rtcp.ReceiverReport
	var cname string
	for _, p := range rtcpPackets(t, h.net.take(rtcpAddr(peerAudio, 1))) {
		switch p := p.(type) {
		case *rtcp.ReceiverReport:
			rr = p
		case *rtcp.SourceDescription:
			cname = p.Chunks[0].Items[0].Text
		}
	}
	require.NotNil(t, rr, "RR sent to the RTCP port")
	require.Equal(t, "test@sipstream", cname)
	require.Len(t, rr.Reports, 1)
	rb := rr.Reports[0]
	require.Equal(t, uint32(0x99), rb.SSRC)
	require.Equal(t, uint32(10), rb.TotalLost)
	require.Equal(t, uint32(srNTP>>16), rb.LastSenderReport)
	require.InDelta(t, 65536*1.5, float64(rb.Delay), 65536*0.01)
	require.Equal(t, uint64(1), h.s.Stats().Audio.SenderReports)
}

// TestNACK: with NACK negotiated, a lost FU-A fragment is asked for at
// once; the retransmission arrives within the jitter delay and the frame
// comes out whole, with no keyframe request.
func TestNACK(t *testing.T) {
	h := newHarness(t, Config{Video: true})
	h.start(videoSpec(peerVideo, media.Feedback{NACK: true, PLI: true}))
	aus, pkts := clipPackets(t, 1, 0x31, 0)
	// the first IDR is several packets: lose the second one
	require.Greater(t, len(pkts), 3)
	lost := pkts[1]
	for i, p := range pkts[:30] {
		if i == 1 {
			continue
		}
		h.deliver(media.KindVideo, peerVideo, p.Data, t0.Add(p.At))
		if i == 2 {
			var nacks []*rtcp.TransportLayerNack
			for _, rp := range rtcpPackets(t, h.net.take(rtcpAddr(peerVideo, 1))) {
				if n, ok := rp.(*rtcp.TransportLayerNack); ok {
					nacks = append(nacks, n)
				}
			}
			require.Len(t, nacks, 1)
			require.Equal(t, uint32(0x31), nacks[0].MediaSSRC)
			require.Equal(t, []uint16{65001}, nacks[0].Nacks[0].PacketList())
			// the retransmission, 20 ms later
			h.deliver(media.KindVideo, peerVideo, lost.Data, t0.Add(p.At+20*time.Millisecond))
		}
	}
	h.advance(h.now.Add(time.Second))
	frames := h.frames[media.KindVideo]
	require.NotEmpty(t, frames)
	require.Equal(t, aus[0], frames[0].Payload)
	require.Zero(t, h.s.Stats().Video.PLISent, "%+v %+v", h.events, h.s.Stats().Video)
	require.Equal(t, uint64(1), h.s.Stats().Video.NACKSent)
}

// TestUpdateNewRemote: a re-INVITE moves the peer (a transfer, a media
// server): latching starts over at the new address and the old one
// becomes a stranger; the timeline goes on.
func TestUpdateNewRemote(t *testing.T) {
	h := newHarness(t, Config{Audio: true})
	h.start(audioSpec(peerAudio))
	pkts := tonePackets(t, 100, 1, 1, 0)
	for _, p := range pkts[:50] {
		h.deliver(media.KindAudio, peerAudio, p.Data, t0.Add(p.At))
	}
	other := mustAddr("10.0.0.20:6000")
	require.NoError(t, h.s.apply([]media.StreamSpec{audioSpec(other)}, h.now))
	later := tonePackets(t, 50, 2, 900, 5000)
	for i, p := range later {
		at := h.now.Add(20 * time.Millisecond)
		h.deliver(media.KindAudio, other, p.Data, at)
		h.deliver(media.KindAudio, peerAudio, pkts[50+i].Data, at)
	}
	require.Equal(t, other, h.s.Stats().Audio.Source)
	require.Equal(t, uint64(50), h.s.Stats().Audio.StrangerPackets)
	frames := h.frames[media.KindAudio]
	require.Len(t, frames, 100)
	for i := 1; i < len(frames); i++ {
		require.Greater(t, frames[i].PTS, frames[i-1].PTS)
	}
	require.Len(t, h.eventsOf(EventSourceLatched), 2)
}

// TestRTCPFromNATAndBye: RTCP from the peer's host on an unexpected port
// is accepted, reports go back there, a stranger's RTCP is dropped, and a
// BYE for the peer's SSRC is reported.
func TestRTCPFromNATAndBye(t *testing.T) {
	h := newHarness(t, Config{Audio: true, RTCPInterval: time.Second})
	sp := audioSpec(peerAudio)
	sp.Direction = media.RecvOnly
	h.start(sp)
	for _, p := range tonePackets(t, 10, 0x61, 1, 0) {
		h.deliver(media.KindAudio, peerAudio, p.Data, t0.Add(p.At))
	}
	natRTCP := mustAddr("10.0.0.9:34567")
	rr, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 0x61}})
	h.deliverRTCP(media.KindAudio, natRTCP, rr, t0.Add(300*time.Millisecond))
	h.deliverRTCP(media.KindAudio, mustAddr("203.0.113.5:9"), rr, t0.Add(310*time.Millisecond))
	h.advance(t0.Add(1600 * time.Millisecond))
	require.NotEmpty(t, rtcpPackets(t, h.net.take(natRTCP)))
	st := h.s.Stats().Audio
	require.Equal(t, uint64(1), st.RTCPReceived)
	require.Equal(t, uint64(1), st.StrangerPackets)
	bye, _ := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 0x61}, &rtcp.Goodbye{Sources: []uint32{0x61}}})
	h.deliverRTCP(media.KindAudio, natRTCP, bye, t0.Add(1700*time.Millisecond))
	require.Len(t, h.eventsOf(EventRTCPBye), 1)
	require.Equal(t, uint32(0x61), h.eventsOf(EventRTCPBye)[0].SSRC)
}

// With SRTP, only authenticated packets may latch or switch the source: a
// stranger who knows the port but not the key must not make the session
// send the call's media (and RTCP) to it, nor lock the real peer out.
func TestSRTPLatchesOnlyAuthenticated(t *testing.T) {
	local, remote := bytes.Repeat([]byte{1}, 30), bytes.Repeat([]byte{2}, 30)
	h := newHarness(t, Config{Audio: true})
	sp := audioSpec(peerAudio)
	sp.Crypto = &media.Crypto{Suite: "AES_CM_128_HMAC_SHA1_80", LocalKey: local, RemoteKey: remote}
	h.start(sp)
	enc, err := srtp.CreateContext(remote[:16], remote[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	require.NoError(t, err)
	nat := mustAddr("192.0.2.7:31000")
	stranger := mustAddr("198.51.100.1:5000")
	pkts := tonePackets(t, 100, 0x42, 100, 1000)
	forged := tonePackets(t, 100, 0x66, 5000, 9000)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 20 * time.Millisecond) }
	// The stranger comes first and keeps sending (plain RTP, or garbage
	// tags); the phone starts later.
	for i := 0; i < 100; i++ {
		h.deliver(media.KindAudio, stranger, append(forged[i].Data, make([]byte, 10)...), at(i))
		if i >= 20 {
			b, err := enc.EncryptRTP(nil, pkts[i].Data, nil)
			require.NoError(t, err)
			h.deliver(media.KindAudio, nat, b, at(i))
		}
	}
	st := h.s.Stats().Audio
	require.Equal(t, nat, st.Source, "latched to the key holder")
	require.Zero(t, st.SourceSwitches)
	require.Equal(t, 100-int(learnDelay/(20*time.Millisecond)), len(h.frames[media.KindAudio]), "all of the phone's audio once learnt (it is not at the SDP address: learnDelay)")
	require.Empty(t, h.net.take(stranger), "nothing sent to the stranger")
}

// TestStrangerCannotHijack: a stranger on another port of the peer's host
// sends in-sequence RTP (and RTCP) before the peer's first packet and all
// through the call, and keeps sending while the peer pauses: none of its
// packets reaches the frames, and none of ours (RTP, RTCP) goes to it.
func TestStrangerCannotHijack(t *testing.T) {
	h := newHarness(t, Config{Audio: true})
	h.start(audioSpec(peerAudio))
	stranger := netip.AddrPortFrom(peerAudio.Addr(), 4444)
	strangerRTCP := mustAddr("198.51.100.1:5001")
	peer := tonePackets(t, 300, 0x42, 100, 1000)
	forged := tonePackets(t, 300, 0x66, 5000, 9000)
	for _, p := range forged {
		for i := 12; i < len(p.Data); i++ {
			p.Data[i] = 0x2a // not the peer's tone
		}
	}
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 20 * time.Millisecond) }
	rr, err := rtcp.Marshal([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: 0x66}})
	require.NoError(t, err)
	for i := 0; i < 300; i++ {
		h.deliver(media.KindAudio, stranger, forged[i].Data, at(i))
		if i%25 == 0 {
			h.deliverRTCP(media.KindAudio, strangerRTCP, rr, at(i))
			h.deliverRTCP(media.KindAudio, netip.AddrPortFrom(peerAudio.Addr(), 4445), rr, at(i))
		}
		// the peer starts 100 ms late and pauses from 2 s to 4 s
		if i >= 5 && (i < 100 || i >= 200) && i-5 < len(peer) {
			h.deliver(media.KindAudio, peerAudio, peer[i-5].Data, at(i))
		}
	}
	h.advance(h.now.Add(6 * time.Second))
	st := h.s.Stats().Audio
	require.Equal(t, peerAudio, st.Source)
	require.Zero(t, st.SourceSwitches)
	require.Equal(t, uint64(300+2*12), st.StrangerPackets, "every RTP and RTCP packet of the stranger")
	for _, f := range h.frames[media.KindAudio] {
		require.NotEqual(t, forged[0].Data[12:], f.Payload, "a stranger's packet reached the frames")
	}
	require.Len(t, h.frames[media.KindAudio], 95+100)
	require.Empty(t, h.net.take(stranger), "RTP to the stranger")
	require.Empty(t, h.net.take(rtcpAddr(stranger, 1)), "RTCP to the stranger's port")
	require.Empty(t, h.net.take(strangerRTCP), "RTCP to the stranger")
	require.NotEmpty(t, h.net.take(rtcpAddr(peerAudio, 1)), "RTCP goes to the peer")
}
