package siptest

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtcpx"
	"github.com/sipstream/sipstream/media/rtpaudio"
	"github.com/sipstream/sipstream/media/rtpdtmf"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/sip/sdp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestAnswerAndRemoteBye(t *testing.T) {
	p := newPeer(t, Config{Script: Script{Audio: true}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	offer := u.offer(false)
	from := &sip.FromHeader{DisplayName: "Alice Caller", Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1"}, Params: sip.NewParams()}
	from.Params.Add("tag", "abc123")
	d, err := u.call(ctx, p.URI(), offer.Marshal(), sipgo.AnswerOptions{}, sip.NewHeader("X-Custom", "hello"), from)
	require.NoError(t, err)
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	assert.Equal(t, "hello", c.Header("X-Custom"))
	assert.Equal(t, "Alice Caller", c.FromDisplayName())
	assert.Equal(t, string(offer.Marshal()), string(c.OfferSDP()))
	specs, err := offer.Negotiate(d.InviteResponse.Body())
	require.NoError(t, err)
	assert.Equal(t, media.CodecPCMA, specs[0].Formats[0].Codec)

	require.NoError(t, d.Bye(ctx))
	require.NoError(t, c.WaitBye(ctx))
	r, err := c.WaitEnd(ctx)
	require.NoError(t, err)
	assert.Equal(t, EndRemoteBye, r)
	_ = time.Second
}

// readRTP reads RTP packets from conn until n arrived or the deadline.
func readRTP(t *testing.T, conn *net.UDPConn, n int) []*rtp.Packet {
	t.Helper()
	var out []*rtp.Packet
	buf := make([]byte, 2048)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	for len(out) < n {
		k, _, err := conn.ReadFromUDP(buf)
		require.NoError(t, err, "after %d packets", len(out))
		if rtcpx.IsRTCP(buf[:k]) {
			continue
		}
		var p rtp.Packet
		require.NoError(t, p.Unmarshal(append([]byte(nil), buf[:k]...)))
		out = append(out, &p)
	}
	return out
}

// readRTCP reads RTCP packets from conn until one satisfies ok.
func readRTCP(t *testing.T, conn *net.UDPConn, ok func(rtcp.Packet) bool) rtcp.Packet {
	t.Helper()
	buf := make([]byte, 2048)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(15*time.Second)))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	for {
		k, _, err := conn.ReadFromUDP(buf)
		require.NoError(t, err)
		pkts, err := rtcp.Unmarshal(buf[:k])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			if ok(p) {
				return p
			}
		}
	}
}

func TestMediaBothWays(t *testing.T) {
	p := newPeer(t, Config{Script: Script{Audio: true, ToneHz: 700, SendSR: true, SRInterval: 100 * time.Millisecond}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	offer := u.offer(false)
	d, err := u.call(ctx, p.URI(), offer.Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	specs, err := offer.Negotiate(d.InviteResponse.Body())
	require.NoError(t, err)
	spec := specs[0]

	// The tone arrives, real-time paced, as PCMA.
	pkts := readRTP(t, u.audio.rtp, 50)
	var pcm []int16
	for i, pk := range pkts {
		assert.Equal(t, spec.Formats[0].PayloadType, pk.PayloadType)
		if i > 0 {
			assert.Equal(t, pkts[i-1].SequenceNumber+1, pk.SequenceNumber)
			assert.Equal(t, pkts[i-1].Timestamp+160, pk.Timestamp)
		}
		for _, b := range pk.Payload {
			pcm = append(pcm, alawToLinear(b))
		}
	}
	assert.Greater(t, testmedia.Goertzel(pcm, 8000, 700), 0.8)
	sr := readRTCP(t, u.audio.rtcp, func(p rtcp.Packet) bool { _, ok := p.(*rtcp.SenderReport); return ok }).(*rtcp.SenderReport)
	assert.Equal(t, pkts[0].SSRC, sr.SSRC)
	assert.NotZero(t, sr.PacketCount)

	// Caller → peer: tone, RFC 4733 DTMF, INFO DTMF, RTCP.
	enc, err := rtpaudio.NewEncoder(rtpaudio.EncoderConfig{Format: rtpaudio.Format{Codec: media.CodecPCMA}, PayloadType: 8, SSRC: 42})
	require.NoError(t, err)
	for i := range 25 {
		pcm := testmedia.Tone(400, 8000, i*160, 160, 0.5)
		payload := make([]byte, len(pcm))
		for j, x := range pcm {
			payload[j] = linearToALaw(x)
		}
		pk, err := enc.Encode(payload)
		require.NoError(t, err)
		b, err := pk.Marshal()
		require.NoError(t, err)
		_, err = u.audio.rtp.WriteToUDPAddrPort(b, spec.Remote)
		require.NoError(t, err)
	}
	dtmfEnc, err := rtpdtmf.NewEncoder(rtpdtmf.EncoderConfig{PayloadType: 101, SSRC: 42})
	require.NoError(t, err)
	sched, err := dtmfEnc.Encode(rtpdtmf.Event{Code: 5, Duration: 100 * time.Millisecond}, enc.Timestamp())
	require.NoError(t, err)
	for _, tp := range sched {
		enc.Stamp(&tp.Packet)
		b, err := tp.Packet.Marshal()
		require.NoError(t, err)
		_, err = u.audio.rtp.WriteToUDPAddrPort(b, spec.Remote)
		require.NoError(t, err)
	}
	digits, err := c.WaitDTMF(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "5", digits)
	info := func(ct, body string) {
		req := sip.NewRequest(sip.INFO, d.InviteResponse.Contact().Address)
		req.SetBody([]byte(body))
		req.AppendHeader(sip.NewHeader("Content-Type", ct))
		res, err := d.Do(ctx, req)
		require.NoError(t, err)
		require.Equal(t, 200, res.StatusCode)
	}
	info("application/dtmf-relay", "Signal=#\r\nDuration=160\r\n")
	info("application/dtmf", "7")
	info("application/media_control+xml", `<?xml version="1.0" encoding="utf-8" ?><media_control><vc_primitive><to_encoder><picture_fast_update/></to_encoder></vc_primitive></media_control>`)
	pli, err := (&rtcp.PictureLossIndication{SenderSSRC: 42, MediaSSRC: pkts[0].SSRC}).Marshal()
	require.NoError(t, err)
	_, err = u.audio.rtcp.WriteToUDPAddrPort(pli, spec.RemoteRTCP)
	require.NoError(t, err)

	digits, err = c.WaitDTMF(ctx, 3)
	require.NoError(t, err)
	assert.Equal(t, "5#7", digits)
	require.NoError(t, c.WaitKeyframeRequests(ctx, 2))
	assert.Equal(t, 1, c.RTCP().PLI)
	require.NoError(t, c.WaitRTP(ctx, media.KindAudio, 25))
	infos := c.Infos()
	require.Len(t, infos, 3)
	assert.Equal(t, "application/dtmf-relay", infos[0].ContentType())
	got := c.ReceivedAudio()
	require.GreaterOrEqual(t, len(got), 25*160)
	assert.Greater(t, testmedia.Goertzel(got[:25*160], 8000, 400), 0.8)

	require.NoError(t, d.Bye(ctx))
	require.NoError(t, c.WaitBye(ctx))
}

func TestReject(t *testing.T) {
	for _, code := range []int{404, 480, 486, 603} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			p := newPeer(t, Config{Script: Script{Reject: code, Ring: 50 * time.Millisecond}})
			u := newUAC(t, "udp")
			ctx := testCtx(t)
			_, err := u.call(ctx, p.URI(), u.offer(false).Marshal(), sipgo.AnswerOptions{})
			require.Error(t, err)
			assert.Equal(t, code, statusOf(err), "%v", err)
			c, err := p.WaitCall(ctx)
			require.NoError(t, err)
			r, err := c.WaitEnd(ctx)
			require.NoError(t, err)
			assert.Equal(t, EndRejected, r)
			assert.Nil(t, c.AnswerSDP())
		})
	}
}

func TestNoCommonCodec(t *testing.T) {
	p := newPeer(t, Config{Script: Script{AudioCodecs: []media.Codec{media.CodecPCMU}}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	o, err := sdp.NewOffer(sdp.OfferConfig{Addr: netip.MustParseAddr("127.0.0.1"),
		Audio: &sdp.MediaConfig{Port: u.audio.port(), Codecs: []media.Codec{media.CodecPCMA}}})
	require.NoError(t, err)
	_, err = u.call(ctx, p.URI(), o.Marshal(), sipgo.AnswerOptions{})
	assert.Equal(t, 488, statusOf(err), "%v", err)
}

func TestRingForeverThenCancel(t *testing.T) {
	p := newPeer(t, Config{Script: Script{RingForever: true}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	callCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := u.call(callCtx, p.URI(), u.offer(false).Marshal(), sipgo.AnswerOptions{})
		errc <- err
	}()
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond) // let 180 go out; CANCEL needs a provisional response
	cancel()
	start := time.Now()
	require.Error(t, <-errc)
	t.Logf("caller returned after %v", time.Since(start))
	r, err := c.WaitEnd(ctx)
	t.Logf("ended after %v", time.Since(start))
	require.NoError(t, err)
	assert.Equal(t, EndCanceled, r)
}

func TestHangupAfter(t *testing.T) {
	p := newPeer(t, Config{Script: Script{HangupAfter: 200 * time.Millisecond}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	d, err := u.call(ctx, p.URI(), u.offer(false).Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	select {
	case id := <-u.byes:
		assert.Equal(t, d.InviteRequest.CallID().Value(), id)
	case <-ctx.Done():
		t.Fatal("no BYE from the peer")
	}
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	r, err := c.WaitEnd(ctx)
	require.NoError(t, err)
	assert.Equal(t, EndLocalBye, r)
	assert.ErrorIs(t, c.WaitBye(ctx), ErrCallEnded)
}

func TestVanish(t *testing.T) {
	p := newPeer(t, Config{Script: Script{Audio: true, Vanish: true, VanishAfter: 300 * time.Millisecond}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	d, err := u.call(ctx, p.URI(), u.offer(false).Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	readRTP(t, u.audio.rtp, 3) // media flowed before
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, p.n.wait(ctx, nil, func() bool { return c.vanished }))
	c.senders.Wait() // as Vanish does
	// Drain what was in flight, then expect silence.
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, u.audio.rtp.SetReadDeadline(time.Now().Add(50*time.Millisecond)))
	for {
		if _, _, err := u.audio.rtp.ReadFromUDP(make([]byte, 2048)); err != nil {
			break
		}
	}
	require.NoError(t, u.audio.rtp.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, _, err = u.audio.rtp.ReadFromUDP(make([]byte, 2048))
	assert.Error(t, err, "RTP after vanishing")
	byeCtx, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	defer cancel()
	assert.Error(t, d.Bye(byeCtx), "a vanished peer answered BYE")
	require.NoError(t, c.WaitBye(ctx))
	assert.Equal(t, EndNone, c.End())
}

func TestRegistrar(t *testing.T) {
	p := newPeer(t, Config{Users: map[string]string{"alice": "s3cret"}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	register := func(password string) int {
		var recipient sip.Uri
		require.NoError(t, sip.ParseUri("sip:"+p.Addr(), &recipient))
		req := sip.NewRequest(sip.REGISTER, recipient)
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1"}})
		req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1", Port: u.port}})
		req.AppendHeader(sip.NewHeader("Expires", "120"))
		res, err := u.client.Do(ctx, req)
		require.NoError(t, err)
		require.Equal(t, 401, res.StatusCode)
		res, err = u.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "alice", Password: password})
		require.NoError(t, err)
		return res.StatusCode
	}
	assert.Equal(t, 403, register("wrong"))
	assert.Equal(t, 200, register("s3cret"))
	regs, err := p.WaitRegistrations(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, "alice", regs[0].User)
	assert.Equal(t, 120, regs[0].Expires)
	assert.Contains(t, regs[0].Contact, "sip:alice@127.0.0.1")
	assert.Equal(t, 4, p.RegisterCount())
	assert.Equal(t, 2, p.Challenges())
}

func TestInviteChallenge(t *testing.T) {
	for _, code := range []int{401, 407} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			p := newPeer(t, Config{Users: map[string]string{"bob": "pw"}, ChallengeInvite: code})
			u := newUAC(t, "udp")
			ctx := testCtx(t)
			d, err := u.call(ctx, p.URI(), u.offer(false).Marshal(), sipgo.AnswerOptions{Username: "bob", Password: "pw"})
			require.NoError(t, err)
			c, err := p.WaitCall(ctx)
			require.NoError(t, err)
			assert.Equal(t, 1, p.Challenges())
			assert.Len(t, p.Calls(), 1)
			require.NoError(t, d.Bye(ctx))
			require.NoError(t, c.WaitBye(ctx))
		})
	}
}

func TestEarlyMedia(t *testing.T) {
	p := newPeer(t, Config{Script: Script{Ring: 700 * time.Millisecond, EarlyMedia: true, Audio: true}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	var early []int
	done := make(chan error, 1)
	go func() {
		_, err := u.call(ctx, p.URI(), u.offer(false).Marshal(), sipgo.AnswerOptions{OnResponse: func(res *sip.Response) error {
			if res.StatusCode == 183 && len(res.Body()) > 0 {
				early = append(early, res.StatusCode)
			}
			return nil
		}})
		done <- err
	}()
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	readRTP(t, u.audio.rtp, 5) // before the answer
	assert.Equal(t, EndNone, c.End())
	require.NoError(t, <-done)
	assert.Equal(t, []int{183}, early)
}

func TestVideoClipAndKeyframeRequest(t *testing.T) {
	p := newPeer(t, Config{Script: Script{Video: true}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	offer := u.offer(true)
	d, err := u.call(ctx, p.URI(), offer.Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	specs, err := offer.Negotiate(d.InviteResponse.Body())
	require.NoError(t, err)
	require.Len(t, specs, 2)
	video := specs[1]
	assert.Equal(t, media.CodecH264, video.Formats[0].Codec)
	assert.True(t, video.Feedback.PLI)

	dec, err := rtph264.NewDecoder(rtph264.DecoderConfig{})
	require.NoError(t, err)
	frames, keyframes := 0, 0
	for frames < 30 {
		require.NoError(t, ctx.Err(), "%d frames decoded", frames)
		for _, pk := range readRTP(t, u.video.rtp, 1) {
			f, _, err := dec.Decode(pk)
			if err != nil {
				continue
			}
			frames++
			if f.Keyframe {
				keyframes++
			}
		}
	}
	assert.GreaterOrEqual(t, keyframes, 1)
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	fir, err := (&rtcp.FullIntraRequest{SenderSSRC: 1, FIR: []rtcp.FIREntry{{SSRC: 2}}}).Marshal()
	require.NoError(t, err)
	_, err = u.video.rtcp.WriteToUDPAddrPort(fir, video.RemoteRTCP)
	require.NoError(t, err)
	require.NoError(t, c.WaitKeyframeRequests(ctx, 1))
	assert.Equal(t, 1, c.RTCP().FIR)
	require.NoError(t, d.Bye(ctx))
}

func TestHoldUnholdAndReinvite(t *testing.T) {
	p := newPeer(t, Config{})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	d, err := u.call(ctx, p.URI(), u.offer(false).Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))

	require.NoError(t, c.Hold(ctx))
	assert.Contains(t, recv(t, ctx, u.reinvites), "a=sendonly")
	assert.Equal(t, media.SendOnly, c.Streams()[0].Direction)
	require.NoError(t, c.Unhold(ctx))
	assert.Contains(t, recv(t, ctx, u.reinvites), "a=sendrecv")
	assert.Equal(t, media.SendRecv, c.Streams()[0].Direction)

	// The caller puts the peer on hold.
	o, err := sdp.NewOffer(sdp.OfferConfig{Addr: netip.MustParseAddr("127.0.0.1"),
		Audio: &sdp.MediaConfig{Port: u.audio.port(), Direction: media.SendOnly}})
	require.NoError(t, err)
	req := sip.NewRequest(sip.INVITE, d.InviteResponse.Contact().Address)
	req.SetBody(o.Marshal())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res, err := d.Do(ctx, req)
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	assert.Contains(t, string(res.Body()), "a=recvonly")
	re := c.Reinvites()
	require.Len(t, re, 1)
	assert.Equal(t, media.RecvOnly, c.Streams()[0].Direction)

	require.NoError(t, c.Hangup(ctx))
	select {
	case <-u.byes:
	case <-ctx.Done():
		t.Fatal("no BYE")
	}
}

func TestTCP(t *testing.T) {
	for _, tr := range []string{"tcp", "tls"} {
		t.Run(tr, func(t *testing.T) { testStream(t, tr) })
	}
}

func testStream(t *testing.T, transport string) {
	p := newPeer(t, Config{Transport: transport, TLSConfig: testServerTLS(t), Script: Script{Audio: true}})
	assert.Contains(t, p.URI(), ";transport="+transport)
	u := newUAC(t, transport)
	ctx := testCtx(t)
	_, err := u.call(ctx, p.URI(), u.offer(false).Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	readRTP(t, u.audio.rtp, 3)
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	require.NoError(t, c.Hangup(ctx))
	select {
	case <-u.byes:
	case <-ctx.Done():
		t.Fatal("no BYE over " + transport)
	}
}

func TestCloseIdempotentAndWaitAfterClose(t *testing.T) {
	p, err := NewPeer(Config{Script: Script{Audio: true, Video: true}})
	require.NoError(t, err)
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	_, err = u.call(ctx, p.URI(), u.offer(true).Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	_, err = p.WaitCall(ctx)
	require.NoError(t, err) // the call that came before Close
	_, err = p.WaitCall(ctx)
	assert.ErrorIs(t, err, ErrClosed)
	assert.Equal(t, EndClosed, p.Calls()[0].End())
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Transport: "sctp"},
		{Transport: "tls"},
		{Addr: "localhost:0"},
		{ChallengeInvite: 402, Users: map[string]string{}},
		{ChallengeInvite: 401},
	} {
		_, err := NewPeer(cfg)
		assert.Error(t, err, "%+v", cfg)
	}
}

func TestRegisterWithAnotherPeerAndRequestLog(t *testing.T) {
	registrar := newPeer(t, Config{Users: map[string]string{"carol": "pw"}})
	callee := newPeer(t, Config{User: "carol"})
	ctx := testCtx(t)
	require.NoError(t, callee.Register(ctx, RegisterRequest{Registrar: registrar.Addr(), Password: "pw", Expires: time.Minute}))
	regs := registrar.Registrations()
	require.Len(t, regs, 1)
	assert.Equal(t, "carol", regs[0].User)
	assert.Equal(t, 60, regs[0].Expires)
	assert.Contains(t, regs[0].Contact, callee.Addr())
	assert.Len(t, registrar.Requests("REGISTER"), 2)
	assert.Error(t, callee.Register(ctx, RegisterRequest{Registrar: registrar.Addr(), Password: "bad"}))
}

func TestSessionExpiresAndAnswerHeaders(t *testing.T) {
	p := newPeer(t, Config{Script: Script{SessionExpires: 90 * time.Second, AnswerHeaders: []Header{{"X-Peer", "yes"}}}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	d, err := u.call(ctx, p.URI(), u.offer(false).Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	res := d.InviteResponse
	assert.Equal(t, "90;refresher=uac", res.GetHeader("Session-Expires").Value())
	assert.Equal(t, "timer", res.GetHeader("Require").Value())
	assert.Equal(t, "yes", res.GetHeader("X-Peer").Value())
	// An OPTIONS keepalive in the dialog is answered and logged.
	req := sip.NewRequest(sip.OPTIONS, res.Contact().Address)
	r, err := d.Do(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, 200, r.StatusCode)
	opts, err := p.WaitRequests(ctx, "OPTIONS", 1)
	require.NoError(t, err)
	assert.Equal(t, d.InviteRequest.CallID().Value(), opts[0].Header("Call-ID"))
	require.NoError(t, d.Bye(ctx))
}

func TestSendDTMFAndInfo(t *testing.T) {
	p := newPeer(t, Config{Script: Script{Audio: true}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	_, err := u.call(ctx, p.URI(), u.offer(false).Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	c, err := p.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))

	assert.Error(t, c.SendDTMF(ctx, "1x"))
	sent := make(chan error, 1)
	go func() { sent <- c.SendDTMF(ctx, "12#") }()
	dec, err := rtpdtmf.NewDecoder(rtpdtmf.DecoderConfig{})
	require.NoError(t, err)
	var digits []rune
	var ssrcs = map[uint32]bool{}
	for len(digits) < 3 {
		require.NoError(t, ctx.Err(), "digits %q", string(digits))
		select {
		case err := <-sent:
			require.NoError(t, err)
			sent <- nil
		default:
		}
		for _, pk := range readRTP(t, u.audio.rtp, 1) {
			ssrcs[pk.SSRC] = true
			if pk.PayloadType != 101 {
				continue
			}
			if ev, err := dec.Decode(pk); err == nil {
				digits = append(digits, ev.Digit())
			}
		}
	}
	assert.Equal(t, "12#", string(digits))
	assert.Len(t, ssrcs, 1, "events share the audio stream's SSRC")
	require.NoError(t, <-sent)

	require.NoError(t, c.SendInfo(ctx, "application/dtmf-relay", []byte("Signal=5\r\nDuration=100\r\n")))
	select {
	case body := <-u.infos:
		assert.Contains(t, body, "Signal=5")
	case <-ctx.Done():
		t.Fatal("no INFO")
	}
}

func TestCustomMedia(t *testing.T) {
	var clip [][][]byte
	for _, au := range testmedia.ClipAccessUnits()[:25] {
		clip = append(clip, au.NALUs)
	}
	p := newPeer(t, Config{Script: Script{
		Audio: true, AudioPCM: testmedia.Tone(400, 8000, 0, 8000, 0.5),
		Video: true, VideoClip: clip, VideoFPS: 50,
	}})
	u := newUAC(t, "udp")
	ctx := testCtx(t)
	_, err := u.call(ctx, p.URI(), u.offer(true).Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	var pcm []int16
	for _, pk := range readRTP(t, u.audio.rtp, 25) {
		for _, b := range pk.Payload {
			pcm = append(pcm, alawToLinear(b))
		}
	}
	assert.Greater(t, testmedia.Goertzel(pcm, 8000, 400), 0.8)
	dec, err := rtph264.NewDecoder(rtph264.DecoderConfig{})
	require.NoError(t, err)
	var stamps []uint32
	for len(stamps) < 5 {
		require.NoError(t, ctx.Err())
		for _, pk := range readRTP(t, u.video.rtp, 1) {
			if _, ts, err := dec.Decode(pk); err == nil {
				stamps = append(stamps, ts)
			}
		}
	}
	for i := 1; i < len(stamps); i++ {
		assert.Equal(t, uint32(1800), stamps[i]-stamps[i-1])
	}
}

func recv[T any](t *testing.T, ctx context.Context, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatal("nothing received")
		var zero T
		return zero
	}
}
