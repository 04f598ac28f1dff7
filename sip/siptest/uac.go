package siptest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtpdtmf"
	"github.com/sipstream/sipstream/sip/sdp"
)

// CallOptions configures a call placed by Peer.Call. The zero value calls
// as Config.User with an audio and video offer and sends no media.
type CallOptions struct {
	// User is the From user (and the digest user name unless AuthUser is
	// set). Empty means Config.User.
	User string
	// DisplayName is the From display name. Empty means none.
	DisplayName string
	// AuthUser is the digest user name. Empty means User.
	AuthUser string
	// Password answers one 401 or 407 challenge to the INVITE. Empty
	// means a challenge ends the call attempt (a *StatusError 401/407).
	Password string
	// Headers are added to the INVITE (X-headers, P-Asserted-Identity ...).
	Headers []Header
	// Proxy, when not empty, is the host:port (an IP address) the INVITE
	// and CANCEL are sent to instead of the target's host (an outbound
	// proxy). In-dialog requests follow the dialog's route set.
	Proxy string
	// NoVideo offers audio only. The zero value offers audio (PCMA, PCMU
	// and telephone-event, or Script.AudioCodecs) and video (H.264,
	// packetization-mode 1, with RTCP feedback and rtx unless
	// Script.NoRTX).
	NoVideo bool
	// DelayedOffer sends the INVITE without SDP (RFC 3261 §13.2.1): the
	// 200 OK must carry the other side's offer, which the peer answers in
	// the ACK. The zero value offers in the INVITE.
	DelayedOffer bool
	// CancelAfter, when not zero, sends CANCEL this long after the first
	// provisional response (180, 183): Call then returns a *StatusError
	// with the final status (487 Request Terminated from a compliant
	// callee). Zero means Call waits for the final response (or ctx).
	CancelAfter time.Duration
	// Script is what the call does once established, as for an answered
	// call: Audio (tone at ToneHz, or AudioPCM), Video (the test clip,
	// VideoClip or LiveVideo), SendSR, AudioCodecs, Direction, SRTP (offer
	// RTP/SAVP with SDES keys), NoRTX, IgnoreKeyframeRequests,
	// NoRetransmit, HangupAfter, Vanish. The fields about answering
	// (Ring, Reject, EarlyMedia, AnswerHeaders, Refer...) are ignored for
	// this call; re-INVITEs and REFERs it receives are handled as for an
	// answered call.
	Script Script
}

// StatusError is the final non-2xx response to an INVITE sent by Call.
type StatusError struct {
	// Code is the status code (486, 487, 401 ...).
	Code int
	// Reason is the reason phrase.
	Reason string
}

func (e *StatusError) Error() string {
	return "siptest: INVITE answered " + strconv.Itoa(e.Code) + " " + e.Reason
}

// Call places a call from the peer to target (a SIP URI such as
// "sip:alice@127.0.0.1:5060", over the peer's transport) and returns it
// once it was answered and acknowledged: the ACK is sent and media flows as
// opts.Script says. The returned PeerCall works like an answered one:
// Hangup, SendDTMF (RFC 4733), SendDTMFInfo (SIP INFO), SendInfo, Hold,
// ReceivedAudio, WaitBye (the other side hanging up), WaitEnd.
//
// A non-2xx final response is returned as a *StatusError (after one
// digest challenge answered when opts.Password is set). Cancelling ctx
// before the final response sends CANCEL once a provisional response has
// arrived, and Call returns ctx's error; a 2xx that crosses the CANCEL is
// acknowledged and hung up (BYE). A 2xx whose SDP cannot be used is
// acknowledged, hung up, and reported as an error.
func (p *Peer) Call(ctx context.Context, target string, opts CallOptions) (*PeerCall, error) {
	var uri sip.Uri
	if err := sip.ParseUri(target, &uri); err != nil {
		return nil, fmt.Errorf("siptest: target %q: %w", target, err)
	}
	if uri.Scheme != "sip" || uri.Host == "" {
		return nil, fmt.Errorf("siptest: target %q: want a sip: URI with a host", target)
	}
	if opts.Proxy != "" {
		if _, _, err := net.SplitHostPort(opts.Proxy); err != nil {
			return nil, fmt.Errorf("siptest: Proxy: %w", err)
		}
	}
	if opts.CancelAfter < 0 {
		return nil, errors.New("siptest: negative CancelAfter")
	}
	for _, h := range opts.Headers {
		if h.Name == "" || strings.ContainsAny(h.Name+h.Value, "\r\n") {
			return nil, fmt.Errorf("siptest: header %q: empty name or line break", h.Name)
		}
	}
	script := opts.Script
	if opts.NoVideo {
		script.NoVideo = true
	}
	if err := script.validate(); err != nil {
		return nil, err
	}
	user := opts.User
	if user == "" {
		user = p.cfg.User
	}
	c := &PeerCall{
		p: p, script: script, callID: randomTag() + randomTag() + "@siptest", outgoing: true,
		done: make(chan struct{}), mediaStop: make(chan struct{}),
		sessID: random64(), sessVer: 1,
	}
	p.n.mu.Lock()
	if p.closed {
		p.n.mu.Unlock()
		return nil, ErrClosed
	}
	p.out = append(p.out, c)
	p.byID[c.callID] = c
	p.n.mu.Unlock()
	if err := c.dial(ctx, uri, user, opts); err != nil {
		return nil, err
	}
	return c, nil
}

// offerConfig is the sdp configuration of the peer's offers: as its
// answers, but PCMA and PCMU only unless Script.AudioCodecs says otherwise
// (the codecs whose tone it can send).
func (c *PeerCall) offerConfig(audioPort, videoPort int) sdp.OfferConfig {
	cfg := c.answerConfig(audioPort, videoPort)
	if cfg.Audio != nil && len(cfg.Audio.Codecs) == 0 {
		cfg.Audio.Codecs = []media.Codec{media.CodecPCMA, media.CodecPCMU}
	}
	return cfg
}

// lateOffer is an offer waiting for its answer, with the streams it
// offered (video may be nil).
type lateOffer struct {
	offer        *sdp.Offer
	audio, video *rtpStream
}

func (l *lateOffer) close() {
	l.audio.close()
	l.video.close()
}

// newOffer opens the streams and builds the peer's offer.
func (c *PeerCall) newOffer() (*lateOffer, error) {
	audio, video, err := c.newStreams(!c.script.NoVideo)
	if err != nil {
		return nil, err
	}
	offer, err := sdp.NewOffer(c.offerConfig(audio.port(), video.port()))
	if err != nil {
		audio.close()
		video.close()
		return nil, err
	}
	return &lateOffer{offer: offer, audio: audio, video: video}, nil
}

// prepareLateOffer makes the offer of the 200 OK to an INVITE without SDP;
// onAck applies the ACK's answer.
func (c *PeerCall) prepareLateOffer() ([]byte, error) {
	l, err := c.newOffer()
	if err != nil {
		return nil, err
	}
	c.mu().Lock()
	c.late = l
	c.answer = l.offer.Marshal()
	c.mu().Unlock()
	return l.offer.Marshal(), nil
}

// acceptLateAnswer applies the answer an ACK carried to the offer of our
// 200 OK and starts the media; a missing or unusable answer ends the call
// with BYE (RFC 3261 §13.3.1.4 leaves the UAS no other way).
func (c *PeerCall) acceptLateAnswer(l *lateOffer, answer []byte) {
	specs, err := l.offer.Negotiate(answer)
	if err != nil {
		l.close()
		c.mu().Lock()
		c.lateErr = fmt.Errorf("siptest: answer in the ACK: %w", err)
		c.acked = true
		c.p.n.broadcast()
		c.mu().Unlock()
		c.p.spawn(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
			defer cancel()
			_ = c.Hangup(ctx)
		})
		return
	}
	c.mu().Lock()
	c.remote = append([]byte(nil), answer...)
	c.mu().Unlock()
	c.useStreams(l.offer.Marshal(), specs, l.audio, l.video)
	c.startMedia()
}

// dial sends the INVITE and plays the UAC side up to the ACK.
func (c *PeerCall) dial(ctx context.Context, uri sip.Uri, user string, opts CallOptions) (err error) {
	p := c.p
	defer func() {
		if err != nil {
			end := EndFailed
			var se *StatusError
			switch {
			case errors.As(err, &se) && se.Code == 487:
				end = EndCanceled
			case errors.As(err, &se):
				end = EndRejected
			case ctx.Err() != nil:
				end = EndCanceled
			}
			c.finish(end)
		}
	}()
	var offer *lateOffer
	var body []byte
	if !opts.DelayedOffer {
		if offer, err = c.newOffer(); err != nil {
			return err
		}
		defer func() {
			if err != nil {
				offer.close()
			}
		}()
		body = offer.offer.Marshal()
	}
	if p.transport != "udp" {
		if uri.UriParams == nil {
			uri.UriParams = sip.NewParams()
		}
		uri.UriParams.Add("transport", p.transport)
	}
	req := sip.NewRequest(sip.INVITE, uri)
	from := &sip.FromHeader{DisplayName: opts.DisplayName,
		Address: sip.Uri{Scheme: "sip", User: user, Host: p.host, Port: p.port}, Params: sip.NewParams()}
	from.Params.Add("tag", randomTag())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: uri.User, Host: uri.Host, Port: uri.Port}, Params: sip.NewParams()})
	callID := sip.CallIDHeader(c.callID)
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.INVITE})
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	contact := p.contact()
	contact.Address.User = user
	req.AppendHeader(contact)
	req.AppendHeader(sip.NewHeader("Allow", allowHeader))
	req.AppendHeader(sip.NewHeader("Supported", "replaces"))
	for _, h := range opts.Headers {
		req.AppendHeader(sip.NewHeader(h.Name, h.Value))
	}
	if body != nil {
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	req.SetBody(body)
	req.SetTransport(p.transport)
	if opts.Proxy != "" {
		req.SetDestination(opts.Proxy)
	}
	c.invite = copyRequest(req)
	c.inv = req

	if !p.enter() {
		return ErrClosed
	}
	defer p.wg.Done()
	tx, err := p.client.TransactionRequest(ctx, req, dialogRequestOption)
	if err != nil {
		return fmt.Errorf("siptest: INVITE: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Terminate()
		}
	}()
	authUser := opts.AuthUser
	if authUser == "" {
		authUser = user
	}
	var (
		authTried   bool
		provisional bool
		earlySDP    []byte
		cancelWant  bool // CANCEL once a provisional response arrived
		cancelSent  bool
		cancelC     <-chan time.Time
		giveUpC     <-chan time.Time
		ctxDone     = ctx.Done()
	)
	sendCancel := func() {
		cancelSent = true
		c.p.spawn(func() { c.cancel(req) })
		t := time.NewTimer(64 * sip.T1)
		giveUpC = t.C
	}
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				if res.StatusCode > 100 {
					provisional = true
					if len(res.Body()) > 0 && earlySDP == nil {
						earlySDP = res.Body()
						c.earlyMedia(offer, earlySDP)
					}
					if opts.CancelAfter > 0 && cancelC == nil && !cancelSent {
						t := time.NewTimer(opts.CancelAfter)
						defer t.Stop()
						cancelC = t.C
					}
				}
				if cancelWant && !cancelSent && provisional {
					sendCancel()
				}
				continue
			}
			if res.IsSuccess() {
				remote := res.Body()
				if len(remote) == 0 {
					remote = earlySDP
				}
				err := c.established(req, res, tx, offer, remote, opts.DelayedOffer)
				if err == nil && (cancelWant || cancelSent) {
					// The 200 crossed our CANCEL: the call is up, end it.
					ctx2, cancel := context.WithTimeout(context.WithoutCancel(ctx), 32*time.Second)
					_ = c.Hangup(ctx2)
					cancel()
					if ctx.Err() != nil {
						return ctx.Err()
					}
					return errors.New("siptest: answered while cancelling; hung up")
				}
				return err
			}
			if (res.StatusCode == 401 || res.StatusCode == 407) && opts.Password != "" && !authTried && !cancelWant && !cancelSent {
				authTried = true
				tx.Terminate()
				tx, err = p.client.TransactionDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: authUser, Password: opts.Password})
				if err != nil {
					return fmt.Errorf("siptest: INVITE with credentials: %w", err)
				}
				c.invite = copyRequest(req)
				continue
			}
			if ctx.Err() != nil && res.StatusCode == 487 {
				return ctx.Err()
			}
			return &StatusError{Code: res.StatusCode, Reason: res.Reason}
		case <-cancelC:
			cancelC = nil
			if !cancelSent {
				sendCancel()
			}
		case <-ctxDone:
			ctxDone = nil
			cancelWant = true
			if provisional && !cancelSent {
				sendCancel()
			} else if !provisional {
				t := time.NewTimer(64 * sip.T1)
				defer t.Stop()
				giveUpC = t.C
			}
		case <-giveUpC:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return errors.New("siptest: no final response after CANCEL")
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return fmt.Errorf("siptest: INVITE: %w", err)
			}
			return errors.New("siptest: INVITE transaction ended without a final response")
		case <-p.closing:
			return ErrClosed
		}
	}
}

// earlyMedia applies the SDP answer of a provisional response (183 with
// early media) to the peer's offer: the streams start receiving (and the
// audio sender sends silence, or Script's audio once answered, as media
// starts with the 200). A delayed offer or an unusable answer is ignored:
// the 200 decides.
func (c *PeerCall) earlyMedia(offer *lateOffer, answer []byte) {
	if offer == nil {
		return
	}
	specs, err := offer.offer.Negotiate(answer)
	if err != nil {
		return
	}
	c.mu().Lock()
	c.early = true
	c.remote = append([]byte(nil), answer...)
	c.mu().Unlock()
	c.useStreams(offer.offer.Marshal(), specs, offer.audio, offer.video)
}

// cancel sends CANCEL for the INVITE req (RFC 3261 §9.1) and waits for
// its response; the INVITE's final response (487) ends dial's loop.
func (c *PeerCall) cancel(inv *sip.Request) {
	r := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	if via := inv.Via(); via != nil {
		r.AppendHeader(sip.HeaderClone(via))
	}
	r.AppendHeader(sip.HeaderClone(inv.From()))
	r.AppendHeader(sip.HeaderClone(inv.To()))
	r.AppendHeader(sip.HeaderClone(inv.CallID()))
	r.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	maxFwd := sip.MaxForwardsHeader(70)
	r.AppendHeader(&maxFwd)
	for _, h := range inv.GetHeaders("Route") {
		r.AppendHeader(sip.HeaderClone(h))
	}
	r.SetTransport(inv.Transport())
	r.SetDestination(inv.Destination())
	ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
	defer cancel()
	tx, err := c.p.client.TransactionRequest(ctx, r, dialogRequestOption)
	if err != nil {
		return
	}
	defer tx.Terminate()
	select {
	case <-tx.Responses():
	case <-tx.Done():
	case <-ctx.Done():
	case <-c.p.closing:
	}
}

// uacDialog is the dialog state of a call the peer placed (RFC 3261
// §12.1.2): our From, the 200's To, the remote target and route set.
type uacDialog struct {
	from      *sip.FromHeader
	to        *sip.ToHeader
	callID    sip.CallIDHeader
	target    sip.Uri
	routes    []string // Route values, first hop first
	transport string
	dest      string // host:port of the remote target
}

// request builds an in-dialog request (RFC 3261 §12.2.1.1).
func (d *uacDialog) request(method sip.RequestMethod, seq uint32, contact *sip.ContactHeader) *sip.Request {
	req := sip.NewRequest(method, *d.target.Clone())
	req.AppendHeader(sip.HeaderClone(d.from))
	req.AppendHeader(sip.HeaderClone(d.to))
	callID := d.callID
	req.AppendHeader(&callID)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	maxFwd := sip.MaxForwardsHeader(70)
	req.AppendHeader(&maxFwd)
	req.AppendHeader(contact)
	for _, r := range d.routes {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	req.SetTransport(d.transport)
	if rt := req.Route(); rt != nil {
		req.SetDestination(rt.Address.HostPort())
	} else {
		req.SetDestination(d.dest)
	}
	return req
}

// established completes a call answered 2xx: the dialog, the media
// negotiation and the ACK (with the answer for a delayed offer).
func (c *PeerCall) established(inv *sip.Request, res *sip.Response, tx sip.ClientTransaction, offer *lateOffer, remote []byte, delayed bool) error {
	p := c.p
	to := res.To()
	if to == nil {
		return errors.New("siptest: 2xx without To")
	}
	d := &uacDialog{from: inv.From(), to: to, callID: *inv.CallID(), target: inv.Recipient, transport: inv.Transport(), dest: inv.Destination()}
	if ct := res.Contact(); ct != nil {
		d.target = *ct.Address.Clone()
		port := ct.Address.Port
		if port == 0 {
			port = 5060
			if p.transport == "tls" {
				port = 5061
			}
		}
		d.dest = net.JoinHostPort(ct.Address.Host, strconv.Itoa(port))
	}
	rrs := res.GetHeaders("Record-Route")
	for i := len(rrs) - 1; i >= 0; i-- {
		d.routes = append(d.routes, rrs[i].Value())
	}
	seq := inv.CSeq().SeqNo
	c.mu().Lock()
	c.earlySamples = len(c.audio)
	early := c.early
	c.dlg = d
	c.cseq = seq
	c.remote = append([]byte(nil), remote...)
	c.inviteTx = tx
	c.mu().Unlock()

	var ackBody []byte
	var mediaErr error
	if delayed {
		ackBody, mediaErr = c.prepareMedia(remote)
		if mediaErr != nil {
			ackBody = nil
		}
	} else {
		specs, err := offer.offer.Negotiate(remote)
		switch {
		case err != nil:
			mediaErr = err
		case early:
			// The streams run since the early answer: the final one
			// may change the remote addresses or formats.
			c.updateSpecs(offer.offer.Marshal(), specs)
		default:
			c.useStreams(offer.offer.Marshal(), specs, offer.audio, offer.video)
		}
	}
	ack := d.request(sip.ACK, seq, p.contact())
	if ackBody != nil {
		ack.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	ack.SetBody(ackBody)
	if err := dialogRequestOption(p.client, ack); err != nil {
		return err
	}
	// The 2xx retransmitted (our ACK was lost) is answered with the same ACK.
	tx.OnRetransmission(func(r *sip.Response) {
		if r.IsSuccess() {
			_ = p.client.WriteRequest(ack, func(*sipgo.Client, *sip.Request) error { return nil })
		}
	})
	if err := p.client.WriteRequest(ack, func(*sipgo.Client, *sip.Request) error { return nil }); err != nil {
		return fmt.Errorf("siptest: ACK: %w", err)
	}
	c.mu().Lock()
	c.answered, c.acked = true, true
	p.n.broadcast()
	c.mu().Unlock()
	if mediaErr != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 32*time.Second)
		defer cancel()
		_ = c.Hangup(ctx)
		return fmt.Errorf("siptest: unusable SDP in the 2xx (hung up): %w", mediaErr)
	}
	c.startMedia()
	if s := c.script; s.HangupAfter > 0 {
		p.spawn(func() { c.after(s.HangupAfter, func() { _ = c.Hangup(context.Background()) }) })
	}
	if s := c.script; s.Vanish {
		p.spawn(func() { c.after(s.VanishAfter, c.Vanish) })
	}
	return nil
}

// SendDTMFInfo sends digits ('0'-'9', '*', '#', 'A'-'D') as SIP INFO
// requests in the dialog, one per digit, each "application/dtmf-relay"
// with "Signal=<digit>" and "Duration=<ms>" (the de-facto format of
// Cisco and most phones), and returns once each was answered 2xx. For RFC
// 4733 events on the audio stream use SendDTMF.
func (c *PeerCall) SendDTMFInfo(ctx context.Context, digits string, duration time.Duration) error {
	for _, d := range digits {
		if _, ok := rtpdtmf.EventCode(d); !ok {
			return fmt.Errorf("siptest: %q is not a DTMF digit", d)
		}
	}
	if duration <= 0 {
		duration = dtmfDuration
	}
	for _, d := range digits {
		body := "Signal=" + string(d) + "\r\nDuration=" + strconv.Itoa(int(duration/time.Millisecond)) + "\r\n"
		if err := c.SendInfo(ctx, "application/dtmf-relay", []byte(body)); err != nil {
			return err
		}
	}
	return nil
}
