package siptest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtpdtmf"
	"github.com/sipstream/sipstream/sip/sdp"
)

func randomTag() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func random64() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])>>2 | 1
}

func (p *Peer) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil && to.Params.Has("tag") {
		c := p.call(req)
		if c == nil {
			p.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
			return
		}
		if !c.isVanished() {
			c.answerOffer(req, tx)
		}
		return
	}
	if req.CallID() == nil || req.From() == nil || req.To() == nil || req.CSeq() == nil {
		p.respond(req, tx, 400, "Bad Request", nil)
		return
	}
	r := copyRequest(req)
	if code := p.cfg.ChallengeInvite; code != 0 {
		hdr, chalHdr, reason := "Authorization", "WWW-Authenticate", "Unauthorized"
		if code == 407 {
			hdr, chalHdr, reason = "Proxy-Authorization", "Proxy-Authenticate", "Proxy Authentication Required"
		}
		p.n.mu.Lock()
		res, _ := p.auth.check(r.Header(hdr), "INVITE")
		var chal string
		if res == authMissing {
			p.challenged++
			chal = p.auth.challenge()
			p.n.broadcast()
		}
		p.n.mu.Unlock()
		switch res {
		case authMissing:
			p.respond(req, tx, code, reason, nil, sip.NewHeader(chalHdr, chal))
			return
		case authForbidden:
			p.respond(req, tx, 403, "Forbidden", nil)
			return
		}
	}
	script := p.cfg.Script
	if p.cfg.ScriptFor != nil {
		script = p.cfg.ScriptFor(&r)
	}
	inv := req.Clone()
	inv.To().Params.Add("tag", randomTag())
	c := &PeerCall{
		p: p, script: script, callID: req.CallID().Value(), invite: r, inv: inv,
		done: make(chan struct{}), mediaStop: make(chan struct{}),
		cseq: 1, sessID: random64(), sessVer: 1,
	}
	p.n.mu.Lock()
	p.calls = append(p.calls, c)
	p.byID[c.callID] = c
	p.n.broadcast()
	p.n.mu.Unlock()
	c.run(tx)
}

// run plays the call's script up to the ACK of the final response. It runs
// on the INVITE handler's goroutine.
func (c *PeerCall) run(tx sip.ServerTransaction) {
	s := c.script
	p := c.p
	// The transaction layer answers CANCEL (200, then 487 for the INVITE);
	// the transaction itself ends only after the ACK's timer.
	canceled := make(chan struct{})
	var cancelOnce sync.Once
	tx.OnCancel(func(*sip.Request) { cancelOnce.Do(func() { close(canceled) }) })
	if s.NoResponse {
		select {
		case <-canceled:
			c.finish(EndCanceled)
		case <-tx.Done():
			c.finish(EndCanceled)
		case <-p.closing:
		}
		return
	}
	if err := s.validate(); err != nil {
		// A script from Config.ScriptFor that cannot be played.
		c.respond(tx, 500, "Server Internal Error", nil, sip.NewHeader("Warning", `399 siptest "`+sanitizeWarning(err.Error())+`"`))
		c.finish(EndRejected)
		return
	}
	var answer []byte
	late := len(c.invite.Body) == 0
	if s.Reject == 0 {
		var err error
		if late {
			// A delayed offer (RFC 3261 §13.2.1): the 200 OK carries our
			// offer, the ACK the caller's answer (see onAck).
			answer, err = c.prepareLateOffer()
		} else {
			answer, err = c.prepareMedia(c.invite.Body)
		}
		if err != nil {
			code, reason := 488, "Not Acceptable Here"
			if errors.Is(err, sdp.ErrInvalid) || errors.Is(err, errNoOffer) {
				code, reason = 400, "Bad Request"
			}
			c.respond(tx, code, reason, nil, sip.NewHeader("Warning", `399 siptest "`+sanitizeWarning(err.Error())+`"`))
			c.finish(EndRejected)
			return
		}
	}
	if s.Reject == 0 || s.Ring > 0 || s.RingForever {
		c.respond(tx, 180, "Ringing", nil)
	}
	if s.EarlyMedia && answer != nil && !late {
		c.respond(tx, 183, "Session Progress", answer)
		c.startMedia()
	}
	var ring <-chan time.Time
	switch {
	case s.RingForever:
	case s.Ring > 0:
		t := time.NewTimer(s.Ring)
		defer t.Stop()
		ring = t.C
	default:
		ch := make(chan time.Time, 1)
		ch <- time.Time{}
		ring = ch
	}
	select {
	case <-ring:
	case <-canceled:
		c.finish(EndCanceled)
		return
	case <-tx.Done():
		if errors.Is(tx.Err(), sip.ErrTransactionCanceled) {
			c.finish(EndCanceled)
		} else {
			c.finish(EndFailed)
		}
		return
	case <-p.closing:
		return
	}
	if s.Reject != 0 {
		reason := s.RejectReason
		if reason == "" {
			reason = reasonPhrase(s.Reject)
		}
		c.respond(tx, s.Reject, reason, nil)
		c.finish(EndRejected)
		return
	}
	c.mu().Lock()
	c.answered = true
	c.mu().Unlock()
	res := c.response(200, "OK", answer)
	// Media starts with the 200 OK, before the ACK can arrive, so that an
	// established call always has its senders running (SendDTMF). After a
	// delayed offer it starts once the ACK brought the answer.
	if !late {
		c.startMedia()
	}
	if err := tx.Respond(res); err != nil {
		c.finish(EndFailed)
		return
	}
	if !c.waitAck(tx, res) {
		return
	}
	if s.HangupAfter > 0 {
		p.spawn(func() { c.after(s.HangupAfter, func() { _ = c.Hangup(context.Background()) }) })
	}
	if s.Vanish {
		p.spawn(func() { c.after(s.VanishAfter, c.Vanish) })
	}
}

func (c *PeerCall) after(d time.Duration, f func()) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		f()
	case <-c.done:
	case <-c.p.closing:
	}
}

// waitAck retransmits the 200 OK over UDP (T1 doubling to T2) until the ACK
// arrives, for at most 64*T1 (RFC 3261 §13.3.1.4). It reports whether the
// call is established.
func (c *PeerCall) waitAck(tx sip.ServerTransaction, res *sip.Response) bool {
	acked := make(chan struct{})
	c.p.spawn(func() {
		_ = c.p.n.wait(context.Background(), c.done, func() bool { return c.acked })
		close(acked)
	})
	reliable := c.p.transport != "udp"
	interval := sip.T1
	retransmit := time.NewTimer(interval)
	defer retransmit.Stop()
	giveUp := time.NewTimer(64 * sip.T1)
	defer giveUp.Stop()
	for {
		select {
		case <-acked:
			return c.End() == EndNone
		case <-retransmit.C:
			if !reliable {
				_ = tx.Respond(res)
			}
			interval = min(2*interval, sip.T2)
			retransmit.Reset(interval)
		case <-giveUp.C:
			c.finish(EndFailed)
			return false
		case <-c.p.closing:
			return false
		}
	}
}

// response builds a response to the INVITE with the call's To tag, our
// Contact and, when body is not nil, the SDP.
func (c *PeerCall) response(code int, reason string, body []byte) *sip.Response {
	res := sip.NewResponseFromRequest(c.inv, code, reason, body)
	if code > 100 && code < 300 {
		res.AppendHeader(c.p.contact())
		allow, supported := true, true
		for _, h := range c.script.AnswerHeaders {
			res.AppendHeader(sip.NewHeader(h.Name, h.Value))
			allow = allow && !strings.EqualFold(h.Name, "Allow")
			supported = supported && !strings.EqualFold(h.Name, "Supported")
		}
		if code == 200 && allow {
			res.AppendHeader(sip.NewHeader("Allow", allowHeader))
		}
		if code == 200 && supported {
			res.AppendHeader(sip.NewHeader("Supported", "replaces"))
		}
	}
	if code == 200 && c.script.SessionExpires > 0 {
		secs := max(int(c.script.SessionExpires/time.Second), 1)
		res.AppendHeader(sip.NewHeader("Session-Expires", strconv.Itoa(secs)+";refresher=uac"))
		res.AppendHeader(sip.NewHeader("Require", "timer"))
	}
	if body != nil {
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	return res
}

func (c *PeerCall) respond(tx sip.ServerTransaction, code int, reason string, body []byte, headers ...sip.Header) {
	res := c.response(code, reason, body)
	for _, h := range headers {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

func (p *Peer) contact() *sip.ContactHeader {
	h := &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.User, Host: p.host, Port: p.port}}
	if p.transport != "udp" {
		h.Address.UriParams = sip.NewParams()
		h.Address.UriParams.Add("transport", p.transport)
	}
	return h
}

func sanitizeWarning(s string) string {
	b := []byte(s)
	for i, x := range b {
		if x < ' ' || x == '"' || x == '\\' || x > '~' {
			b[i] = ' '
		}
	}
	return string(b)
}

var errNoOffer = errors.New("siptest: no SDP offer")

// answerConfig is the sdp configuration of the peer's side.
func (c *PeerCall) answerConfig(audioPort, videoPort int) sdp.OfferConfig {
	cfg := sdp.OfferConfig{Addr: c.p.ip, SessionName: "siptest", SessionID: c.sessID, SessionVersion: c.sessVer}
	if audioPort != 0 {
		cfg.Audio = &sdp.MediaConfig{Port: audioPort, Codecs: c.script.AudioCodecs, Direction: c.script.Direction, RTCPMux: true}
	}
	if videoPort != 0 && !c.script.NoVideo {
		cfg.Video = &sdp.MediaConfig{Port: videoPort, Codecs: []media.Codec{media.CodecH264}, Direction: c.script.Direction, RTCPMux: true, Feedback: true, RTX: !c.script.NoRTX}
	}
	if c.script.SRTP {
		for _, mc := range []*sdp.MediaConfig{cfg.Audio, cfg.Video} {
			if mc != nil {
				mc.Crypto = &media.Crypto{} // any suite offered, a random key
			}
		}
	}
	return cfg
}

// prepareMedia opens RTP/RTCP sockets, answers the offer and starts the
// receivers.
func (c *PeerCall) prepareMedia(offer []byte) ([]byte, error) {
	if len(offer) == 0 {
		return nil, errNoOffer
	}
	audio, video, err := c.newStreams(true)
	if err != nil {
		return nil, err
	}
	answer, specs, err := sdp.Answer(offer, c.answerConfig(audio.port(), video.port()))
	if err != nil {
		audio.close()
		video.close()
		return nil, err
	}
	c.useStreams(answer, specs, audio, video)
	return answer, nil
}

// newStreams opens the sockets of an audio stream and, when withVideo, of
// a video stream (nil otherwise).
func (c *PeerCall) newStreams(withVideo bool) (audio, video *rtpStream, err error) {
	audio, err = newStream(c, media.KindAudio)
	if err != nil || !withVideo {
		return audio, nil, err
	}
	video, err = newStream(c, media.KindVideo)
	if err != nil {
		audio.close()
		return nil, nil, err
	}
	return audio, video, nil
}

// useStreams makes the negotiated specs the call's: each of audio and
// video (either may be nil) that has a spec is kept and its receivers
// started, the others are closed. sdp is the peer's own SDP (its answer, or
// its offer for a call it placed).
func (c *PeerCall) useStreams(own []byte, specs []media.StreamSpec, audio, video *rtpStream) {
	var streams []*rtpStream
	for _, s := range []*rtpStream{audio, video} {
		if s == nil {
			continue
		}
		used := false
		for _, sp := range specs {
			if sp.Kind == s.kind {
				s.spec = sp
				used = true
			}
		}
		if used {
			streams = append(streams, s)
		} else {
			s.close()
		}
	}
	c.mu().Lock()
	c.answer, c.specs, c.streams = own, specs, streams
	c.p.n.broadcast()
	c.mu().Unlock()
	for _, s := range streams {
		s := s
		c.p.spawn(s.readRTP)
		c.p.spawn(s.readRTCP)
	}
}

// startMedia starts the senders the script asks for (once, and never on a
// vanished call).
func (c *PeerCall) startMedia() {
	c.mu().Lock()
	if c.sending || c.vanished {
		c.mu().Unlock()
		return
	}
	c.sending = true
	var run []*rtpStream
	for _, s := range c.streams {
		// The audio sender always runs: it carries SendDTMF's events even
		// when the script sends no tone.
		if s.kind == media.KindAudio || c.script.Video {
			run = append(run, s)
		}
	}
	c.senders.Add(len(run)) // under the lock Vanish takes before waiting
	c.mu().Unlock()
	for _, s := range run {
		s := s
		if !c.p.spawn(func() {
			defer c.senders.Done()
			s.send(c.script)
		}) {
			c.senders.Done()
		}
	}
}

// answerOffer answers a re-INVITE or UPDATE from the caller.
func (c *PeerCall) answerOffer(req *sip.Request, tx sip.ServerTransaction) {
	r := copyRequest(req)
	c.mu().Lock()
	if c.end != EndNone {
		c.mu().Unlock()
		c.p.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	ports := map[media.Kind]int{}
	for _, s := range c.streams {
		ports[s.kind] = s.port()
	}
	body := c.answer
	c.mu().Unlock()
	if len(r.Body) > 0 {
		c.mu().Lock()
		c.sessVer++
		cfg := c.answerConfig(ports[media.KindAudio], ports[media.KindVideo])
		c.mu().Unlock()
		answer, specs, err := sdp.Answer(r.Body, cfg)
		if err != nil {
			c.p.respond(req, tx, 488, "Not Acceptable Here", nil)
			return
		}
		c.updateSpecs(answer, specs)
		body = answer
	}
	c.mu().Lock()
	c.reinvites = append(c.reinvites, r)
	c.p.n.broadcast()
	c.mu().Unlock()
	res := sip.NewResponseFromRequest(req, 200, "OK", body)
	res.AppendHeader(c.p.contact())
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	_ = tx.Respond(res)
}

func (c *PeerCall) updateSpecs(answer []byte, specs []media.StreamSpec) {
	c.mu().Lock()
	defer c.mu().Unlock()
	c.answer, c.specs = answer, specs
	for _, s := range c.streams {
		for _, sp := range specs {
			if sp.Kind == s.kind {
				s.spec = sp
			}
		}
	}
	c.p.n.broadcast()
}

// Hangup sends BYE to the caller and ends the call.
func (c *PeerCall) Hangup(ctx context.Context) error {
	c.mu().Lock()
	ok := c.answered && c.end == EndNone && !c.vanished
	c.mu().Unlock()
	if !ok {
		return fmt.Errorf("%w or not answered", ErrCallEnded)
	}
	res, err := c.do(ctx, c.newRequest(sip.BYE))
	c.finish(EndLocalBye)
	if err != nil {
		return fmt.Errorf("siptest: BYE: %w", err)
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("siptest: BYE answered %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

// SendInfo sends an INFO request in the dialog and returns an error unless
// the caller answers 2xx.
func (c *PeerCall) SendInfo(ctx context.Context, contentType string, body []byte) error {
	c.mu().Lock()
	ok := c.acked && c.end == EndNone && !c.vanished
	c.mu().Unlock()
	if !ok {
		return fmt.Errorf("%w or not established", ErrCallEnded)
	}
	req := c.newRequest(sip.INFO)
	req.SetBody(body)
	req.AppendHeader(sip.NewHeader("Content-Type", contentType))
	res, err := c.do(ctx, req)
	if err != nil {
		return fmt.Errorf("siptest: INFO: %w", err)
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("siptest: INFO answered %d %s", res.StatusCode, res.Reason)
	}
	return nil
}

// SendDTMF sends digits ('0'-'9', '*', '#', 'A'-'D') to the caller as RFC
// 4733 telephone-events on the audio stream (100 ms each, 80 ms apart, the
// end packet three times, the audio stream's SSRC and clock), and returns
// when the last one was sent. The audio stream must have negotiated
// telephone-event.
func (c *PeerCall) SendDTMF(ctx context.Context, digits string) error {
	for _, d := range digits {
		if _, ok := rtpdtmf.EventCode(d); !ok {
			return fmt.Errorf("siptest: %q is not a DTMF digit", d)
		}
	}
	c.mu().Lock()
	var audio *rtpStream
	for _, s := range c.streams {
		if s.kind == media.KindAudio {
			audio = s
		}
	}
	ok := c.sending && c.end == EndNone && !c.vanished
	c.mu().Unlock()
	if audio == nil || !ok {
		return fmt.Errorf("%w, not answered or without audio", ErrCallEnded)
	}
	job := dtmfJob{digits: []rune(digits), done: make(chan error, 1)}
	select {
	case audio.dtmf <- job:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrCallEnded
	}
	select {
	case err := <-job.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return ErrCallEnded
	}
}

// Hold puts the caller on hold with a re-INVITE whose offer is sendonly
// (RFC 3264 §8.4), and applies the answer.
func (c *PeerCall) Hold(ctx context.Context) error { return c.reinvite(ctx, media.SendOnly) }

// Unhold resumes the call with a sendrecv re-INVITE.
func (c *PeerCall) Unhold(ctx context.Context) error { return c.reinvite(ctx, media.SendRecv) }

func (c *PeerCall) reinvite(ctx context.Context, dir media.Direction) error {
	c.mu().Lock()
	if !c.acked || c.end != EndNone || c.vanished {
		c.mu().Unlock()
		return fmt.Errorf("%w or not established", ErrCallEnded)
	}
	c.sessVer++
	cfg := sdp.OfferConfig{Addr: c.p.ip, SessionName: "siptest", SessionID: c.sessID, SessionVersion: c.sessVer}
	for _, s := range c.streams {
		var codecs []media.Codec
		for _, f := range s.spec.Formats {
			// rtx is not a codec: MediaConfig.RTX offers it.
			if f.Codec != media.CodecTelephoneEvent && f.Codec != media.CodecRTX && !slices.Contains(codecs, f.Codec) {
				codecs = append(codecs, f.Codec)
			}
		}
		mc := &sdp.MediaConfig{Port: s.port(), Codecs: codecs, Direction: dir, RTCPMux: s.spec.RTCPMux}
		if s.kind == media.KindAudio {
			cfg.Audio = mc
		} else {
			mc.Feedback = true
			mc.RTX = !c.script.NoRTX
			cfg.Video = mc
		}
	}
	c.mu().Unlock()
	offer, err := sdp.NewOffer(cfg)
	if err != nil {
		return err
	}
	req := c.newRequest(sip.INVITE)
	req.SetBody(offer.Marshal())
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res, err := c.do(ctx, req)
	if err != nil {
		return fmt.Errorf("siptest: re-INVITE: %w", err)
	}
	if !c.p.enter() {
		return ErrClosed
	}
	err = c.p.client.WriteRequest(c.newAck(req), dialogRequestOption)
	c.p.wg.Done()
	if err != nil {
		return fmt.Errorf("siptest: ACK: %w", err)
	}
	if res.StatusCode >= 300 {
		return fmt.Errorf("siptest: re-INVITE answered %d %s", res.StatusCode, res.Reason)
	}
	specs, err := offer.Negotiate(res.Body())
	if err != nil {
		return err
	}
	c.updateSpecs(res.Body(), specs)
	return nil
}

// dialogRequestOption completes a request the peer built itself the way
// the client sends it: a Via of ours, a Content-Length, and over UDP the
// listener's socket as the local address (without it sipgo sends from a
// new socket of its own, which answers and retransmissions then miss).
// Headers already present are kept.
func dialogRequestOption(cl *sipgo.Client, req *sip.Request) error {
	return sipgo.ClientRequestBuild(cl, req)
}

// newRequest builds an in-dialog request from the peer (RFC 3261 §12.2.1.1).
func (c *PeerCall) newRequest(method sip.RequestMethod) *sip.Request {
	c.mu().Lock()
	c.cseq++
	seq := c.cseq
	c.mu().Unlock()
	return c.dialogRequest(method, seq)
}

func (c *PeerCall) newAck(invite *sip.Request) *sip.Request {
	return c.dialogRequest(sip.ACK, invite.CSeq().SeqNo)
}

func (c *PeerCall) dialogRequest(method sip.RequestMethod, seq uint32) *sip.Request {
	if c.dlg != nil {
		return c.dlg.request(method, seq, c.p.contact())
	}
	inv := c.inv
	target := inv.Recipient
	if ct := inv.Contact(); ct != nil {
		target = ct.Address
	}
	req := sip.NewRequest(method, *target.Clone())
	from := inv.To().AsFrom()
	to := inv.From().AsTo()
	callID := *inv.CallID()
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&from)
	req.AppendHeader(&to)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	req.AppendHeader(&maxFwd)
	req.AppendHeader(c.p.contact())
	rrs := inv.GetHeaders("Record-Route")
	for _, rr := range rrs {
		req.AppendHeader(sip.NewHeader("Route", rr.Value()))
	}
	req.SetTransport(inv.Transport())
	if rt := req.Route(); rt != nil {
		req.SetDestination(rt.Address.HostPort())
	} else {
		req.SetDestination(inv.Source())
	}
	return req
}

// do sends an in-dialog request and waits for its final response.
func (c *PeerCall) do(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if !c.p.enter() {
		return nil, ErrClosed
	}
	defer c.p.wg.Done()
	tx, err := c.p.client.TransactionRequest(ctx, req, dialogRequestOption)
	if err != nil {
		return nil, err
	}
	defer tx.Terminate()
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				continue
			}
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, errors.New("siptest: transaction ended without a response")
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.p.closing:
			return nil, ErrClosed
		}
	}
}
