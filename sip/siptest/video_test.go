package siptest

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/sip/sdp"
)

// videoHarness drives one video sender tick by tick, without SIP, and
// receives what it sends on a socket of its own: deterministic tests of
// what each frame is and what a NACK brings back.
type videoHarness struct {
	t     testing.TB
	c     *PeerCall
	s     *rtpStream
	tick  func(media.StreamSpec)
	spec  media.StreamSpec
	recv  *net.UDPConn
	clock time.Time
}

const (
	harnessSSRC  = 0x1234abcd
	harnessH264  = 96
	harnessRTXPT = 97
)

func newVideoHarness(t testing.TB, script Script, rtx bool) *videoHarness {
	t.Helper()
	lo := net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0"))
	recv, err := net.ListenUDP("udp", lo)
	require.NoError(t, err)
	out, err := net.ListenUDP("udp", lo)
	require.NoError(t, err)
	require.NoError(t, recv.SetReadBuffer(4<<20))
	t.Cleanup(func() { _ = recv.Close(); _ = out.Close() })

	c := &PeerCall{p: &Peer{closing: make(chan struct{})}, script: script, done: make(chan struct{}), mediaStop: make(chan struct{})}
	s := &rtpStream{c: c, kind: media.KindVideo, rtp: out}
	spec := media.StreamSpec{Kind: media.KindVideo, RTCPMux: true,
		Formats: []media.PayloadFormat{{PayloadType: harnessH264, Codec: media.CodecH264, ClockRate: 90000}},
		Remote:  recv.LocalAddr().(*net.UDPAddr).AddrPort()}
	if rtx {
		spec.Formats = append(spec.Formats, media.PayloadFormat{PayloadType: harnessRTXPT, Codec: media.CodecRTX, ClockRate: 90000, Fmtp: "apt=96"})
	}
	s.spec = spec
	c.streams = []*rtpStream{s}
	sd := &sender{s: s, ssrc: harnessSSRC, clock: 90000, ts0: 1000, start: time.Now()}
	h := &videoHarness{t: t, c: c, s: s, spec: spec, recv: recv, clock: time.Unix(1700000000, 0)}
	if script.LiveVideo != nil {
		h.tick, _ = s.liveVideoSender(sd, spec.Formats[0], script)
	} else {
		h.tick, _ = s.videoSender(sd, spec.Formats[0], script)
	}
	require.NotNil(t, h.tick)
	s.video.Load().now = func() time.Time { return h.clock }
	return h
}

// read returns the next packet sent, failing after 5 s.
func (h *videoHarness) read() *rtp.Packet {
	h.t.Helper()
	buf := make([]byte, 2048)
	require.NoError(h.t, h.recv.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, _, err := h.recv.ReadFromUDP(buf)
	require.NoError(h.t, err)
	var p rtp.Packet
	require.NoError(h.t, p.Unmarshal(buf[:n]))
	return &p
}

// nothingMore checks that no packet is waiting.
func (h *videoHarness) nothingMore() {
	h.t.Helper()
	require.NoError(h.t, h.recv.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	n, _, err := h.recv.ReadFromUDP(make([]byte, 2048))
	require.True(h.t, errors.Is(err, os.ErrDeadlineExceeded), "unexpected packet of %d bytes (%v)", n, err)
}

// frame sends one frame and returns its packets and whether it decodes as
// an IDR.
func (h *videoHarness) frame(dec *rtph264.Decoder) ([]*rtp.Packet, bool) {
	h.t.Helper()
	h.tick(h.spec)
	var pkts []*rtp.Packet
	for {
		p := h.read()
		pkts = append(pkts, p)
		if p.Marker {
			break
		}
	}
	for _, p := range pkts[:len(pkts)-1] {
		_, _, err := dec.Decode(p)
		require.True(h.t, errors.Is(err, rtph264.ErrMorePacketsNeeded), "%v", err)
	}
	f, _, err := dec.Decode(pkts[len(pkts)-1])
	require.NoError(h.t, err)
	return pkts, f.Keyframe
}

func rtcpBytes(t testing.TB, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	require.NoError(t, err)
	return b
}

// TestLiveVideoKeyframeOnRequest: the live encoder's first frame is an IDR
// of 10 packets, the next ones P frames of 3; a PLI, a FIR and an INFO
// picture_fast_update (in compound RTCP, as receivers send them) each make
// the very next frame an IDR, and only that one. With
// IgnoreKeyframeRequests they change nothing but the request counters.
func TestLiveVideoKeyframeOnRequest(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		h := newVideoHarness(t, Script{LiveVideo: &LiveVideo{GOP: time.Minute}, IgnoreKeyframeRequests: ignore}, false)
		dec, err := rtph264.NewDecoder(rtph264.DecoderConfig{})
		require.NoError(t, err)
		pkts, key := h.frame(dec)
		require.True(t, key, "first frame")
		assert.Len(t, pkts, 10, "IDR packets")
		for i := range 5 {
			pkts, key = h.frame(dec)
			require.False(t, key, "frame %d", i+1)
			assert.Len(t, pkts, 3, "P frame packets")
		}
		rr := &rtcp.ReceiverReport{SSRC: 1}
		requests := []func(){
			func() {
				h.s.handleRTCP(rtcpBytes(t, rr, &rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: harnessSSRC}))
			},
			func() {
				h.s.handleRTCP(rtcpBytes(t, rr, &rtcp.FullIntraRequest{SenderSSRC: 1, FIR: []rtcp.FIREntry{{SSRC: harnessSSRC, SequenceNumber: 1}}}))
			},
			func() {
				h.c.recordInfo(Request{Method: "INFO", Headers: []Header{{Name: "Content-Type", Value: "application/media_control+xml"}},
					Body: []byte(`<?xml version="1.0"?><media_control><vc_primitive><to_encoder><picture_fast_update/></to_encoder></vc_primitive></media_control>`)})
			},
		}
		for i, req := range requests {
			req()
			req() // two requests before the frame: one IDR
			_, key = h.frame(dec)
			assert.Equal(t, !ignore, key, "request %d (ignore %v)", i, ignore)
			_, key = h.frame(dec)
			assert.False(t, key, "frame after the requested one")
		}
		h.nothingMore()
		st := h.c.VideoSent()
		assert.Equal(t, 12, st.Frames)
		want := 3
		if ignore {
			want = 0
		}
		assert.Equal(t, want, st.RequestedKeyframes)
		assert.Equal(t, want+1, st.Keyframes)
		assert.Equal(t, 6, h.c.KeyframeRequests())
		assert.Equal(t, media.CodecH264, h.spec.Formats[0].Codec)
	}
}

// TestClipKeyframeRequestIgnored: the clip jumps to its next IDR on a
// request, and does not with IgnoreKeyframeRequests.
func TestClipKeyframeRequestIgnored(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		h := newVideoHarness(t, Script{IgnoreKeyframeRequests: ignore}, false)
		dec, err := rtph264.NewDecoder(rtph264.DecoderConfig{})
		require.NoError(t, err)
		_, key := h.frame(dec)
		require.True(t, key)
		for range 3 {
			_, key = h.frame(dec)
			require.False(t, key)
		}
		h.s.requestKeyframe()
		_, key = h.frame(dec)
		assert.Equal(t, !ignore, key, "ignore %v", ignore)
		assert.Equal(t, map[bool]int{false: 1, true: 0}[ignore], h.c.VideoSent().RequestedKeyframes)
	}
}

// sendFrames sends n frames and returns every packet sent, by sequence
// number, as sent.
func (h *videoHarness) sendFrames(n int) (map[uint16][]byte, []uint16) {
	h.t.Helper()
	sent := map[uint16][]byte{}
	var order []uint16
	for range n {
		h.tick(h.spec)
	}
	want := h.c.VideoSent().Packets
	for len(order) < want {
		p := h.read()
		b, err := p.Marshal()
		require.NoError(h.t, err)
		sent[p.SequenceNumber] = b
		order = append(order, p.SequenceNumber)
	}
	h.nothingMore()
	return sent, order
}

// TestRetransmitOnNACK: a compound RR+NACK (one NACK with several pairs,
// then a second NACK packet) for N sequence numbers brings back exactly
// those N packets, at once, in order: unchanged without rtx, as RFC 4588 RTX
// with rtx (decoded back to the original bytes). Unknown sequence numbers
// and other SSRCs bring nothing back; NoRetransmit turns it off.
func TestRetransmitOnNACK(t *testing.T) {
	for _, withRTX := range []bool{false, true} {
		h := newVideoHarness(t, Script{LiveVideo: &LiveVideo{}}, withRTX)
		sent, order := h.sendFrames(30)
		require.Len(t, order, 10+29*3)
		// Spread over more than one NACK pair (17 packets each).
		pick := []uint16{order[1], order[2], order[5], order[40], order[41], order[60], order[95]}
		nack1 := &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: harnessSSRC, Nacks: rtcp.NackPairsFromSequenceNumbers(pick[:6])}
		nack2 := &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: harnessSSRC, Nacks: rtcp.NackPairsFromSequenceNumbers(pick[6:])}
		require.Greater(t, len(nack1.Nacks), 1)
		h.s.handleRTCP(rtcpBytes(t, &rtcp.ReceiverReport{SSRC: 1}, nack1, nack2))

		var rtxSSRC uint32
		var lastRTXSeq uint16
		for i, seq := range pick {
			p := h.read()
			if !withRTX {
				b, err := p.Marshal()
				require.NoError(t, err)
				assert.Equal(t, sent[seq], b, "packet %d resent unchanged", seq)
				continue
			}
			assert.Equal(t, uint8(harnessRTXPT), p.PayloadType)
			assert.NotEqual(t, uint32(harnessSSRC), p.SSRC)
			if i == 0 {
				rtxSSRC = p.SSRC
			} else {
				assert.Equal(t, rtxSSRC, p.SSRC)
				assert.Equal(t, lastRTXSeq+1, p.SequenceNumber, "RTX sequence numbers are consecutive")
			}
			lastRTXSeq = p.SequenceNumber
			require.GreaterOrEqual(t, len(p.Payload), 2)
			osn := binary.BigEndian.Uint16(p.Payload)
			assert.Equal(t, seq, osn)
			// Undo RFC 4588 §4: the original packet, byte for byte.
			orig := rtp.Packet{Header: p.Header, Payload: p.Payload[2:]}
			orig.SSRC, orig.PayloadType, orig.SequenceNumber = harnessSSRC, harnessH264, osn
			b, err := orig.Marshal()
			require.NoError(t, err)
			assert.Equal(t, sent[seq], b, "RTX of %d decodes to the original", seq)
		}
		h.nothingMore()
		st := h.c.VideoSent()
		assert.Equal(t, len(pick), st.Retransmitted)
		assert.Equal(t, map[bool]int{false: 0, true: len(pick)}[withRTX], st.RetransmittedRTX)
		assert.Equal(t, 2, h.c.RTCP().NACK)

		// Never sent: counted, nothing resent. Another SSRC: ignored.
		h.s.handleRTCP(rtcpBytes(t, &rtcp.TransportLayerNack{MediaSSRC: harnessSSRC, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{order[len(order)-1] + 100})}))
		h.s.handleRTCP(rtcpBytes(t, &rtcp.TransportLayerNack{MediaSSRC: harnessSSRC + 1, Nacks: rtcp.NackPairsFromSequenceNumbers(order[:3])}))
		h.nothingMore()
		st = h.c.VideoSent()
		assert.Equal(t, len(pick), st.Retransmitted)
		assert.Equal(t, 1, st.NotRetransmitted)
	}

	h := newVideoHarness(t, Script{LiveVideo: &LiveVideo{}, NoRetransmit: true}, true)
	_, order := h.sendFrames(3)
	h.s.handleRTCP(rtcpBytes(t, &rtcp.TransportLayerNack{MediaSSRC: harnessSSRC, Nacks: rtcp.NackPairsFromSequenceNumbers(order[:4])}))
	h.nothingMore()
	assert.Equal(t, VideoSendStats{Frames: 3, Keyframes: 1, Packets: 16}, h.c.VideoSent())
	assert.Equal(t, 1, h.c.RTCP().NACK)
}

// TestRetransmitHistoryBound: a NACK gets back only what the history still
// keeps: the last 1024 packets, none older than 2 s.
func TestRetransmitHistoryBound(t *testing.T) {
	h := newVideoHarness(t, Script{LiveVideo: &LiveVideo{KeyframeSize: -1, FrameSize: -1, GOP: 5 * time.Minute}}, false)
	// Unpadded P frames are one packet each, the IDR 3.
	_, order := h.sendFrames(1100)
	require.Len(t, order, 1102)
	last := len(order) - 1
	nack := func(seqs ...uint16) {
		h.s.handleRTCP(rtcpBytes(t, &rtcp.TransportLayerNack{MediaSSRC: harnessSSRC, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}))
	}
	nack(order[last-1024], order[last-1023], order[last])
	assert.Equal(t, order[last-1023], h.read().SequenceNumber)
	assert.Equal(t, order[last], h.read().SequenceNumber)
	h.nothingMore()
	assert.Equal(t, 1, h.c.VideoSent().NotRetransmitted)

	h.clock = h.clock.Add(historyAge)
	nack(order[last])
	assert.Equal(t, order[last], h.read().SequenceNumber, "2 s old")
	h.clock = h.clock.Add(time.Millisecond)
	nack(order[last])
	h.nothingMore()
	assert.Equal(t, 2, h.c.VideoSent().NotRetransmitted)
}

func TestHistoryWraps(t *testing.T) {
	hist := newHistory(historyPackets, historyAge)
	now := time.Unix(0, 0)
	const n = 3000
	start := uint16(65000)
	for i := range n {
		seq := start + uint16(i)
		hist.add(seq, []byte{byte(seq >> 8), byte(seq)}, now)
	}
	for i := range n {
		seq := start + uint16(i)
		b, ok := hist.get(seq, now)
		if i < n-historyPackets {
			assert.False(t, ok, "packet %d of %d still kept", i, n)
			continue
		}
		require.True(t, ok, "packet %d of %d lost", i, n)
		assert.Equal(t, []byte{byte(seq >> 8), byte(seq)}, b)
	}
	_, ok := hist.get(start+n, now)
	assert.False(t, ok, "never sent")
}

func TestLiveVideoConfig(t *testing.T) {
	_, err := NewPeer(Config{Script: Script{Video: true, LiveVideo: &LiveVideo{FrameRate: 100}}})
	assert.Error(t, err)
	_, err = NewPeer(Config{Script: Script{Video: true, LiveVideo: &LiveVideo{GOP: 11 * time.Minute}}})
	assert.Error(t, err)
	cfg := (&LiveVideo{}).generatorConfig()
	assert.Equal(t, 25, cfg.FrameRate)
	assert.Equal(t, 10*time.Second, cfg.KeyframeInterval)
	assert.Equal(t, 9600, cfg.KeyframeSize)
	assert.Equal(t, 2350, cfg.FrameSize)
}

// TestLiveVideoOverSIP: a caller offering rtx and rtcp-mux gets rtx in the
// answer (none with NoRTX), the live video decodes, a PLI on the RTP port
// brings an IDR, and a NACK brings the packets back over RTX (plain with
// NoRTX).
func TestLiveVideoOverSIP(t *testing.T) {
	for _, noRTX := range []bool{false, true} {
		p := newPeer(t, Config{Script: Script{Video: true, LiveVideo: &LiveVideo{GOP: 5 * time.Minute}, NoRTX: noRTX}})
		u := newUAC(t, "udp")
		ctx := testCtx(t)
		offer, err := sdp.NewOffer(sdp.OfferConfig{Addr: netip.MustParseAddr("127.0.0.1"),
			Audio: &sdp.MediaConfig{Port: u.audio.port()},
			Video: &sdp.MediaConfig{Port: u.video.port(), Feedback: true, RTX: true, RTCPMux: true}})
		require.NoError(t, err)
		d, err := u.call(ctx, p.URI(), offer.Marshal(), sipgo.AnswerOptions{})
		require.NoError(t, err)
		c, err := p.WaitCall(ctx)
		require.NoError(t, err)
		specs, err := offer.Negotiate(d.InviteResponse.Body())
		require.NoError(t, err)
		require.Len(t, specs, 2)
		video := specs[1]
		require.True(t, video.RTCPMux)
		h264PT := video.Formats[0].PayloadType
		require.Equal(t, media.CodecH264, video.Formats[0].Codec)
		var rtxPT uint8
		hasRTX := false
		for _, f := range video.Formats {
			if apt, ok := f.AssociatedPayloadType(); ok && apt == h264PT {
				rtxPT, hasRTX = f.PayloadType, true
			}
		}
		require.Equal(t, !noRTX, hasRTX, "rtx in the answer")

		dec, err := rtph264.NewDecoder(rtph264.DecoderConfig{})
		require.NoError(t, err)
		sent := map[uint16][]byte{}
		var mediaSSRC uint32
		var lastSeq uint16
		keyframes, frames := 0, 0
		receive := func(p *rtp.Packet) {
			b, err := p.Marshal()
			require.NoError(t, err)
			sent[p.SequenceNumber] = b
			mediaSSRC, lastSeq = p.SSRC, p.SequenceNumber
			if f, _, err := dec.Decode(p); err == nil {
				frames++
				if f.Keyframe {
					keyframes++
				}
			}
		}
		for frames < 10 {
			for _, pk := range readRTP(t, u.video.rtp, 1) {
				receive(pk)
			}
		}
		require.Equal(t, 1, keyframes)

		write := func(pkts ...rtcp.Packet) {
			_, err := u.video.rtp.WriteToUDPAddrPort(rtcpBytes(t, pkts...), video.RemoteRTCP)
			require.NoError(t, err)
		}
		rr := &rtcp.ReceiverReport{SSRC: 7}
		write(rr, &rtcp.PictureLossIndication{SenderSSRC: 7, MediaSSRC: mediaSSRC})
		require.NoError(t, c.WaitVideoSent(ctx, func(s VideoSendStats) bool { return s.RequestedKeyframes == 1 }))
		for keyframes < 2 {
			require.NoError(t, ctx.Err())
			for _, pk := range readRTP(t, u.video.rtp, 1) {
				receive(pk)
			}
		}

		// The latest packets: well within the 2 s history even on a
		// loaded machine.
		pick := []uint16{lastSeq - 4, lastSeq - 2, lastSeq}
		write(rr, &rtcp.TransportLayerNack{SenderSSRC: 7, MediaSSRC: mediaSSRC, Nacks: rtcp.NackPairsFromSequenceNumbers(pick)})
		got := map[uint16]bool{}
		for len(got) < len(pick) {
			require.NoError(t, ctx.Err())
			pk := readRTP(t, u.video.rtp, 1)[0]
			switch {
			case hasRTX && pk.PayloadType == rtxPT:
				require.NotEqual(t, mediaSSRC, pk.SSRC)
				osn := binary.BigEndian.Uint16(pk.Payload)
				orig := rtp.Packet{Header: pk.Header, Payload: pk.Payload[2:]}
				orig.SSRC, orig.PayloadType, orig.SequenceNumber = mediaSSRC, h264PT, osn
				b, err := orig.Marshal()
				require.NoError(t, err)
				require.Equal(t, sent[osn], b, "RTX of %d", osn)
				got[osn] = true
			case !hasRTX && sent[pk.SequenceNumber] != nil:
				b, err := pk.Marshal()
				require.NoError(t, err)
				require.Equal(t, sent[pk.SequenceNumber], b)
				got[pk.SequenceNumber] = true
			default:
				require.Equal(t, h264PT, pk.PayloadType)
				receive(pk)
			}
		}
		require.NoError(t, c.WaitVideoSent(ctx, func(s VideoSendStats) bool { return s.Retransmitted == len(pick) }))
		st := c.VideoSent()
		assert.Equal(t, map[bool]int{false: len(pick), true: 0}[noRTX], st.RetransmittedRTX)
		assert.Equal(t, 1, st.RequestedKeyframes)
		assert.Equal(t, 1, c.RTCP().NACK)
		require.NoError(t, d.Bye(ctx))
		require.NoError(t, c.WaitBye(ctx))
	}
}

// FuzzHandleRTCP: whatever arrives on the RTCP path (compound packets, PLI,
// FIR, NACKs naming any sequence numbers, garbage) never panics, and a NACK
// never makes the peer resend more packets than it was asked for, nor more
// than its history holds.
func FuzzHandleRTCP(f *testing.F) {
	rr := &rtcp.ReceiverReport{SSRC: 1}
	seeds := [][]rtcp.Packet{
		{rr, &rtcp.TransportLayerNack{MediaSSRC: harnessSSRC, Nacks: []rtcp.NackPair{{PacketID: 0, LostPackets: 0xffff}}}},
		{&rtcp.PictureLossIndication{MediaSSRC: harnessSSRC}, &rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: harnessSSRC}}}},
		{&rtcp.TransportLayerNack{MediaSSRC: harnessSSRC, Nacks: []rtcp.NackPair{{PacketID: 7}, {PacketID: 7, LostPackets: 1}, {PacketID: 65535, LostPackets: 0x8001}}}},
		{&rtcp.Goodbye{Sources: []uint32{harnessSSRC}}},
	}
	for _, s := range seeds {
		f.Add(rtcpBytes(f, s...), uint16(0))
	}
	f.Add([]byte{0x81, 205, 0, 2, 0, 0, 0, 1}, uint16(3))
	h := newVideoHarness(f, Script{LiveVideo: &LiveVideo{KeyframeSize: -1, FrameSize: -1}}, true)
	for range 20 {
		h.tick(h.spec)
	}
	f.Fuzz(func(t *testing.T, b []byte, base uint16) {
		// Sequence numbers in the fuzzed NACKs are taken relative to the
		// first packet sent, so that they hit the history.
		if len(b) >= 16 && b[1] == 205 && b[0]&0x1f == 1 {
			seq0 := h.s.video.Load().enc.NextSequenceNumber() - 24
			for i := 12; i+1 < len(b); i += 4 {
				id := binary.BigEndian.Uint16(b[i:]) + seq0 + base
				binary.BigEndian.PutUint16(b[i:], id)
			}
		}
		pkts, _ := rtcp.Unmarshal(b)
		asked := map[uint16]bool{}
		for _, p := range pkts {
			if n, ok := p.(*rtcp.TransportLayerNack); ok && n.MediaSSRC == harnessSSRC {
				for _, pair := range n.Nacks {
					for _, s := range pair.PacketList() {
						asked[s] = true
					}
				}
			}
		}
		before := h.c.VideoSent()
		h.s.handleRTCP(b)
		after := h.c.VideoSent()
		resent := after.Retransmitted - before.Retransmitted
		if resent > len(asked) || resent > historyPackets {
			t.Fatalf("%d packets resent for %d asked", resent, len(asked))
		}
		if resent+after.NotRetransmitted-before.NotRetransmitted > len(asked) {
			t.Fatalf("%d resent + %d missing for %d asked", resent, after.NotRetransmitted-before.NotRetransmitted, len(asked))
		}
	})
}

// TestReportsEchoCallersSR: the peer's Sender Reports carry a reception
// block about the caller's last SR (LSR and the delay since), as a phone's
// do, so that the caller can measure the round trip.
func TestReportsEchoCallersSR(t *testing.T) {
	h := newVideoHarness(t, Script{LiveVideo: &LiveVideo{}}, false)
	require.Empty(t, h.s.reception(time.Now()), "no SR from the caller yet")
	ntp := uint64(0x1234_5678_9abc_def0)
	h.s.handleRTCP(rtcpBytes(t, &rtcp.SenderReport{SSRC: 0x77, NTPTime: ntp}))
	got := h.s.reception(time.Now().Add(250 * time.Millisecond))
	require.Len(t, got, 1)
	assert.Equal(t, uint32(0x77), got[0].SSRC)
	assert.Equal(t, uint32(ntp>>16), got[0].LastSenderReport)
	assert.InDelta(t, 65536/4, float64(got[0].Delay), 65536/50, "DLSR of 250 ms")
}
