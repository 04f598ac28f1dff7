package sip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"
)

// ErrAnswered: a final answer (Answer, Reject, Redirect, or the UA's own
// 487/480/4xx) has already been sent for this INVITE.
var ErrAnswered = errors.New("sip: INVITE already answered")

// Address is the From or To of a received request. Its fields are what
// the caller sent, unchecked beyond SIP parsing: validate them (ValidateUser,
// ValidateURI …) before using them as names, paths or stream keys.
type Address struct {
	DisplayName string // unquoted, may be empty
	URI         string // "sip:alice@example.com" (parameters of the URI kept, header params such as tag dropped)
	User        string // user part, may be empty
	Host        string // host[:port]
}

// AnswerOptions are the in-dialog callbacks and extra headers of a call we
// answer; they work as InviteRequest's fields of the same names.
type AnswerOptions struct {
	// OnReinvite answers an offer of a re-INVITE or UPDATE from the caller;
	// an error answers 488. nil mirrors our last SDP. Dialog goroutine; must
	// not block for long or call the Dialog's methods.
	OnReinvite func(offer []byte) (answer []byte, err error)
	// OnDTMF receives DTMF of SIP INFO. Dialog goroutine; must not block.
	OnDTMF func(digit rune, duration time.Duration)
	// OnInfo receives any other INFO. Dialog goroutine; must not block.
	OnInfo func(contentType string, body []byte)
	// KeepAliveInterval sends in-dialog OPTIONS at this interval. Zero means none.
	KeepAliveInterval time.Duration
	// Headers are added to the 200 OK (checked as InviteRequest.Headers).
	Headers []Header
}

// defaultT1 is RFC 3261's T1, the first 2xx retransmission interval of a
// call we answer (T2 is 8*T1).
const defaultT1 = 500 * time.Millisecond

// unansweredTimeout is how long an INVITE may wait for the handler's
// final answer before the UA answers 480 itself (Timer C's spirit).
const unansweredTimeout = 3 * time.Minute

// IncomingInvite is an out-of-dialog INVITE offered to the handler set by
// UA.OnInvite. Its methods are safe for concurrent use; exactly one final
// answer (Answer, Reject, Redirect or the UA's own 487, 480 or 503) is
// ever sent.
type IncomingInvite struct {
	ua        *UA
	req       *sipgox.Request
	tx        sipgox.ServerTransaction
	callID    string
	from, to  Address
	source    netip.AddrPort
	transport string
	offer     []byte
	toTag     string

	done     chan struct{} // the INVITE is over
	doneOnce sync.Once
	sent     chan struct{} // the final answer is out (ours, or the 487 after CANCEL)
	sentOnce sync.Once

	mu        sync.Mutex
	final     bool // a final answer was claimed
	cancelled bool
}

func newIncomingInvite(ua *UA, req *sipgox.Request, tx sipgox.ServerTransaction) *IncomingInvite {
	in := &IncomingInvite{
		ua:        ua,
		req:       req,
		tx:        tx,
		callID:    req.CallID().Value(),
		from:      newAddress(req.From().DisplayName, req.From().Address),
		to:        newAddress(req.To().DisplayName, req.To().Address),
		transport: strings.ToLower(req.Transport()),
		toTag:     sipgox.GenerateTagN(16),
		done:      make(chan struct{}),
		sent:      make(chan struct{}),
	}
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		in.source = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	if b := req.Body(); len(b) > 0 {
		in.offer = append([]byte(nil), b...)
	}
	return in
}

// newAddress turns a From or To header into an Address.
func newAddress(display string, u sipgox.Uri) Address {
	a := Address{DisplayName: display, User: u.User, Host: u.Host}
	if u.Port > 0 {
		a.Host += ":" + strconv.Itoa(u.Port)
	}
	a.URI = u.String()
	return a
}

// CallID returns the INVITE's Call-ID.
func (in *IncomingInvite) CallID() string { return in.callID }

// From returns the caller (the From header).
func (in *IncomingInvite) From() Address { return in.from }

// To returns the To header (usually the number or user called).
func (in *IncomingInvite) To() Address { return in.to }

// RequestURI returns the Request-URI as received.
func (in *IncomingInvite) RequestURI() string { return in.req.Recipient.String() }

// RequestUser returns the user part of the Request-URI (may be empty).
func (in *IncomingInvite) RequestUser() string { return in.req.Recipient.User }

// Headers returns the headers as received, in order, except Via, Route,
// Record-Route, Content-Length and the credentials headers (Authorization,
// Proxy-Authorization), which are never exposed.
func (in *IncomingInvite) Headers() []Header { return exposedHeaders(in.req) }

// hiddenHeaders are never given to the handler (lower case, long and
// compact forms).
var hiddenHeaders = map[string]bool{
	"via": true, "v": true, "route": true, "record-route": true,
	"content-length": true, "l": true,
	"authorization": true, "proxy-authorization": true,
}

func exposedHeaders(req *sipgox.Request) []Header {
	var out []Header
	for _, h := range req.Headers() {
		if hiddenHeaders[strings.ToLower(h.Name())] {
			continue
		}
		out = append(out, Header{Name: h.Name(), Value: h.Value()})
	}
	return out
}

// Source returns where the INVITE came from (the transport source address).
func (in *IncomingInvite) Source() netip.AddrPort { return in.source }

// Transport returns "udp", "tcp" or "tls".
func (in *IncomingInvite) Transport() string { return in.transport }

// Offer returns the SDP offer (a copy); nil for a delayed offer (an INVITE
// without body).
func (in *IncomingInvite) Offer() []byte {
	if in.offer == nil {
		return nil
	}
	return append([]byte(nil), in.offer...)
}

// Done is closed when the INVITE is over: answered and ACKed, rejected,
// redirected, cancelled by the caller (the UA answered 487 itself), or the
// UA closed.
func (in *IncomingInvite) Done() <-chan struct{} { return in.done }

// Cancelled reports whether the caller cancelled (CANCEL) before our final answer.
func (in *IncomingInvite) Cancelled() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cancelled
}

func (in *IncomingInvite) finishDone() { in.doneOnce.Do(func() { close(in.done) }) }
func (in *IncomingInvite) markSent()   { in.sentOnce.Do(func() { close(in.sent) }) }

// onCancel runs when sipgo has answered a CANCEL (200) and the INVITE
// (487); from sipgo's goroutine, with its transaction locked: no tx calls.
func (in *IncomingInvite) onCancel(*sipgox.Request) {
	in.mu.Lock()
	in.cancelled = true
	in.final = true
	in.mu.Unlock()
	in.ua.forgetInvite(in)
	in.ua.log.Info("sip: incoming call cancelled", "call_id", in.callID)
	in.markSent()
	in.finishDone()
}

// errCancelled is what the answering methods return once the caller's
// CANCEL won.
func errCancelled() error {
	return &StatusError{Method: "INVITE", Code: 487, Reason: "Request Terminated"}
}

// claim reserves the final answer for the caller of claim.
func (in *IncomingInvite) claim() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch {
	case in.cancelled:
		return errCancelled()
	case in.final:
		return ErrAnswered
	}
	in.final = true
	return nil
}

// response builds a response to the INVITE with our To tag.
func (in *IncomingInvite) response(code int, reason string, body []byte) *sipgox.Response {
	res := sipgox.NewResponseFromRequest(in.req, code, reason, body)
	if code != 100 {
		if to := res.To(); to != nil {
			to.Params.Add("tag", in.toTag)
		}
	}
	return res
}

// sendFinal sends a claimed non-2xx final answer and ends the INVITE.
// The Call-ID is free again before the answer goes out: the caller may
// retry at once (with credentials after a 401).
func (in *IncomingInvite) sendFinal(res *sipgox.Response) error {
	in.ua.forgetInvite(in)
	err := in.tx.Respond(res)
	in.markSent()
	in.finishDone()
	if in.Cancelled() {
		return errCancelled()
	}
	if err != nil {
		return fmt.Errorf("sip: INVITE %d: %w", res.StatusCode, err)
	}
	return nil
}

func checkReason(reason string) error {
	if strings.ContainsAny(reason, "\r\n") || len(reason) > 128 {
		return paramErr("reason", "must be one line of at most 128 bytes")
	}
	return nil
}

// Progress sends a provisional response (180 Ringing, 183 Session
// Progress; 101-199), with an SDP answer (early media) when sdp is not nil.
// ErrAnswered after the final answer.
func (in *IncomingInvite) Progress(code int, reason string, sdp []byte) error {
	if code < 101 || code > 199 {
		return paramErr("code", "provisional codes are 101-199")
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	in.mu.Lock()
	final, cancelled := in.final, in.cancelled
	in.mu.Unlock()
	if cancelled {
		return errCancelled()
	}
	if final {
		return ErrAnswered
	}
	res := in.response(code, reason, sdp)
	c := sipgox.ContactHeader{Address: in.ua.contactURI(in.localUser(), in.transport)}
	res.AppendHeader(&c)
	if sdp != nil {
		res.AppendHeader(sipgox.NewHeader("Content-Type", "application/sdp"))
	}
	if err := in.tx.Respond(res); err != nil {
		return fmt.Errorf("sip: INVITE %d: %w", code, err)
	}
	return nil
}

// localUser is the user of our Contact: the Request-URI user, else To's.
func (in *IncomingInvite) localUser() string {
	if u := in.req.Recipient.User; u != "" && checkUser("", u) == nil {
		return u
	}
	if u := in.to.User; u != "" && checkUser("", u) == nil {
		return u
	}
	return ""
}

// Reject sends a final 300-699 answer (ErrAnswered if a final answer was
// already sent; a 487 *StatusError if the caller cancelled first). hdrs
// are added to the response (checked as InviteRequest.Headers).
func (in *IncomingInvite) Reject(code int, reason string, hdrs ...Header) error {
	if code < 300 || code > 699 {
		return paramErr("code", "final non-2xx codes are 300-699")
	}
	if err := checkReason(reason); err != nil {
		return err
	}
	for _, h := range hdrs {
		if err := checkCustomHeader("headers", h); err != nil {
			return err
		}
	}
	if err := in.claim(); err != nil {
		return err
	}
	res := in.response(code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(sipgox.NewHeader(h.Name, h.Value))
	}
	in.ua.log.Info("sip: incoming call rejected", "call_id", in.callID, "status", code)
	return in.sendFinal(res)
}

// Redirect answers 302 Moved Temporarily with a Contact per target (SIP
// URIs, validated; at least one).
func (in *IncomingInvite) Redirect(targets ...string) error {
	if len(targets) == 0 {
		return paramErr("targets", "at least one SIP URI")
	}
	contacts := make([]sipgox.Header, 0, len(targets))
	for _, t := range targets {
		if !hasSIPScheme(t) {
			return paramErr("targets", "not a SIP URI")
		}
		if err := ValidateURI(t); err != nil {
			return err
		}
		var u sipgox.Uri
		if err := sipgox.ParseUri(t, &u); err != nil {
			return paramErr("targets", "not a SIP URI")
		}
		contacts = append(contacts, &sipgox.ContactHeader{Address: u})
	}
	if err := in.claim(); err != nil {
		return err
	}
	res := in.response(302, "Moved Temporarily", nil)
	for _, c := range contacts {
		res.AppendHeader(c)
	}
	in.ua.log.Info("sip: incoming call redirected", "call_id", in.callID, "targets", len(targets))
	return in.sendFinal(res)
}

// Answer sends 200 OK with sdp (our answer to the offer; for a delayed
// offer, our offer: the ACK then carries the peer's answer), retransmits
// it (T1 doubling up to T2) until the ACK arrives and returns the
// established Dialog. No ACK within 64*T1 (32 s): the UA sends BYE and
// returns a 408 *StatusError. ctx bounds the wait (its end sends BYE and
// returns ctx's error). A BYE of the caller before its ACK returns
// ErrRemoteBye; a CANCEL that won the race a 487 *StatusError;
// ErrAnswered when a final answer was already sent. opts are the
// in-dialog callbacks, as InviteRequest's.
func (in *IncomingInvite) Answer(ctx context.Context, sdpBody []byte, opts AnswerOptions) (*Dialog, error) {
	if len(sdpBody) == 0 {
		return nil, paramErr("sdp", "an SDP answer (or offer, for a delayed offer) is required")
	}
	for _, h := range opts.Headers {
		if err := checkCustomHeader("Headers", h); err != nil {
			return nil, err
		}
	}
	if err := in.claim(); err != nil {
		return nil, err
	}
	d := newIncomingDialog(in, sdpBody, opts)
	if err := in.ua.addDialog(d); err != nil {
		d.terminate(err)
		<-d.loopDone
		code, reason := 500, "Server Internal Error"
		if errors.Is(err, ErrClosed) {
			code, reason = 503, "Service Unavailable"
		}
		_ = in.sendFinal(in.response(code, reason, nil))
		return nil, err
	}
	res := in.response(200, "OK", sdpBody)
	c := d.localContact
	appendHeaders(res, &c, sipgox.NewHeader("Allow", allowedMethods), sipgox.NewHeader("Supported", "timer"),
		sipgox.NewHeader("Content-Type", "application/sdp"))
	if d.st.interval > 0 {
		refresher := "uac"
		if d.st.refresher {
			refresher = "uas"
		}
		appendHeaders(res, sipgox.NewHeader("Session-Expires", strconv.Itoa(int(d.st.interval/time.Second))+";refresher="+refresher),
			sipgox.NewHeader("Require", "timer"))
	}
	for _, h := range opts.Headers {
		res.AppendHeader(sipgox.NewHeader(h.Name, h.Value))
	}
	err := in.tx.Respond(res)
	in.markSent()
	if in.Cancelled() {
		// The CANCEL was answered 487 before our 200 could go.
		d.terminate(ErrCanceled)
		<-d.loopDone
		in.finishDone()
		return nil, errCancelled()
	}
	if err != nil {
		d.terminate(err)
		<-d.loopDone
		in.finishDone()
		return nil, fmt.Errorf("sip: INVITE 200: %w", err)
	}
	in.ua.log.Info("sip: incoming call answered", "call_id", in.callID)
	defer in.finishDone()
	if err := in.awaitAck(ctx, d, res); err != nil {
		return nil, err
	}
	return d, nil
}

// awaitAck retransmits the 2xx over UDP (RFC 3261 §13.3.1.4, RFC 6026:
// the UAS core's job; T1 doubling up to T2) until the ACK arrives, for at
// most 64*T1.
func (in *IncomingInvite) awaitAck(ctx context.Context, d *Dialog, res *sipgox.Response) error {
	t1 := in.ua.t1
	interval := t1
	var retransmit <-chan time.Time
	var rt *time.Timer
	if in.transport == "udp" { // reliable transports deliver the one 200
		rt = time.NewTimer(interval)
		defer rt.Stop()
		retransmit = rt.C
	}
	deadline := time.NewTimer(64 * t1)
	defer deadline.Stop()
	acks := in.tx.Acks()
	for {
		select {
		case <-d.ackC:
			return nil
		case <-acks:
			// An ACK reusing the INVITE's branch (RFC 2543 style, where the
			// 2xx ACK was part of the INVITE transaction): sipgo's
			// transaction passes it up here instead of to dispatch.
			d.call(func() { d.acknowledged(nil) })
		case <-retransmit:
			if err := in.tx.Respond(res); err != nil {
				d.log.Debug("sip: 2xx retransmission failed", "err", err)
			}
			interval = min(2*interval, 8*t1) // T2 = 4 s = 8*T1
			rt.Reset(interval)
		case <-d.done:
			if err := d.Err(); err != nil {
				return err
			}
			return ErrDialogClosed
		case <-deadline.C:
			d.log.Warn("sip: no ACK for our 2xx, hanging up")
			_ = d.Bye(context.Background())
			return &StatusError{Method: "INVITE", Code: 408, Reason: "Request Timeout", Err: errors.New("no ACK within 64*T1")}
		case <-ctx.Done():
			_ = d.Bye(context.Background())
			return ctx.Err()
		}
	}
}

// newIncomingDialog builds and starts the UAS dialog of an INVITE we
// answer (RFC 3261 §12.1.1): local = To with our tag, remote = From,
// remote target = the INVITE's Contact, route set = Record-Route in order.
func newIncomingDialog(in *IncomingInvite, ours []byte, opts AnswerOptions) *Dialog {
	ua, req := in.ua, in.req
	d := &Dialog{
		ua:           ua,
		log:          ua.log.With("call_id", in.callID),
		callID:       in.callID,
		incoming:     true,
		transport:    in.transport,
		onReinvite:   opts.OnReinvite,
		onDTMF:       opts.OnDTMF,
		onInfo:       opts.OnInfo,
		keepAlive:    opts.KeepAliveInterval,
		glareDelay:   glareDelay,
		localSDP:     append([]byte(nil), ours...),
		baseSDP:      append([]byte(nil), ours...),
		ackC:         make(chan struct{}),
		inviteCSeq:   req.CSeq().SeqNo,
		delayedOffer: in.offer == nil,
		up:           true,
	}
	to := req.To()
	d.from = sipgox.FromHeader{DisplayName: to.DisplayName, Address: *to.Address.Clone(), Params: to.Params.Clone()}
	if d.from.Params == nil {
		d.from.Params = sipgox.NewParams()
	}
	d.from.Params.Add("tag", in.toTag)
	from := req.From()
	d.to = sipgox.ToHeader{DisplayName: from.DisplayName, Address: *from.Address.Clone(), Params: from.Params.Clone()}
	if d.to.Params == nil {
		d.to.Params = sipgox.NewParams()
	}
	d.remoteTag, _ = from.Params.Get("tag")
	d.remoteTarget = *from.Address.Clone()
	if c := req.Contact(); c != nil {
		d.remoteTarget = *c.Address.Clone()
	}
	for _, rr := range req.GetHeaders("Record-Route") {
		d.routeSet = append(d.routeSet, parseRouteValues(rr)...)
	}
	if !d.delayedOffer {
		d.remoteSDP = in.offer
		d.answerOnce = in.offer
	}
	d.readPeerCaps(req)
	d.localContact = sipgox.ContactHeader{Address: ua.contactURI(in.localUser(), in.transport)}
	if se := req.GetHeader("Session-Expires"); se != nil {
		if secs, refresher := parseSessionExpires(se.Value()); secs > 0 {
			if refresher == "" {
				refresher = "uac" // the caller refreshes
			}
			d.setSessionTimer(time.Duration(secs)*time.Second, refresher == "uas", strings.Contains(d.peerAllow, "UPDATE"))
		}
	}
	d.armKeepAlive()
	d.start()
	return d
}

// handleAck matches the ACK of our 2xx (loop goroutine).
func (d *Dialog) handleAck(req *sipgox.Request) {
	if !d.incoming || d.finished {
		return
	}
	if cseq := req.CSeq(); cseq == nil || cseq.SeqNo != d.inviteCSeq {
		return
	}
	if req.From() == nil {
		return
	}
	if t, _ := req.From().Params.Get("tag"); t != d.remoteTag {
		return
	}
	d.acknowledged(req)
}

// acknowledged records the ACK of our 2xx (loop goroutine); req may be nil.
func (d *Dialog) acknowledged(req *sipgox.Request) {
	select {
	case <-d.ackC:
		return
	default:
	}
	if d.delayedOffer && req != nil && isSDP(req) {
		d.remoteSDP = append([]byte(nil), req.Body()...)
		d.answerSDP = d.remoteSDP
		d.answerOnce = d.remoteSDP
	}
	close(d.ackC)
	d.log.Info("sip: ACK received")
}

// OnInvite sets the handler of new calls (out-of-dialog INVITEs). nil (the
// default) answers 480 as before. The handler runs on a goroutine of its own
// per INVITE (never for retransmissions: the UA absorbs them) and may return
// before the INVITE is answered; it must eventually call exactly one of
// Answer, Reject or Redirect, unless Done closes first (CANCEL, UA closed).
// The UA sends 100 Trying itself at once. An INVITE nobody answers within
// 3 minutes gets 480 (RFC 3261 Timer C's spirit).
//
// Before the handler runs, the UA answers itself: 400 to an INVITE without
// From, To, Call-ID or CSeq, with a body but no Content-Type or with a body
// that is not SDP; 415 to a body of another type or encoding; 416 to a
// Request-URI that is not sip: or sips:; 420 to a Require it does not
// support (all but "timer"); 422 to a Session-Expires below
// MinSessionExpires; 483 to Max-Forwards 0; and 482 Loop Detected to an
// INVITE whose Call-ID is already in use on this UA (a call we placed that
// came back to us, or a second INVITE of a call we are answering or have
// answered: RFC 3261 §8.2.2.2's merged requests).
func (ua *UA) OnInvite(h func(*IncomingInvite)) {
	ua.mu.Lock()
	ua.onInvite = h
	ua.mu.Unlock()
}

// handleInvite serves an out-of-dialog INVITE on sipgo's goroutine, which
// stays until the final answer is out (returning earlier would end the
// server transaction, and retransmissions would reach us as new INVITEs).
func (ua *UA) handleInvite(req *sipgox.Request, tx sipgox.ServerTransaction) {
	if code, reason, hdrs := checkInvite(req, ua.minSE); code != 0 {
		respond(tx, req, code, reason, nil, hdrs...)
		return
	}
	callID := req.CallID().Value()
	ua.mu.Lock()
	h := ua.onInvite
	switch {
	case ua.closed:
		ua.mu.Unlock()
		respond(tx, req, 503, "Service Unavailable", nil)
		return
	case h == nil:
		ua.mu.Unlock()
		// No handler: this UA places calls; it does not take them.
		respond(tx, req, 480, "Temporarily Unavailable", nil)
		return
	case ua.dialogs[callID] != nil || ua.invites[callID] != nil:
		ua.mu.Unlock()
		respond(tx, req, 482, "Loop Detected", nil)
		return
	}
	in := newIncomingInvite(ua, req, tx)
	ua.invites[callID] = in
	ua.invWG.Add(1)
	ua.mu.Unlock()
	defer ua.invWG.Done()
	defer ua.forgetInvite(in)
	_ = tx.Respond(in.response(100, "Trying", nil))
	if !tx.OnCancel(in.onCancel) {
		// Cancelled or gone before we could listen.
		in.onCancel(nil)
		return
	}
	ua.log.Info("sip: incoming call", "call_id", callID, "from", in.from.URI, "source", in.source.String(), "transport", in.transport)
	go h(in)
	timer := time.NewTimer(ua.inviteTimeout)
	defer timer.Stop()
	select {
	case <-in.sent:
	case <-timer.C:
		if in.claim() == nil {
			ua.log.Info("sip: incoming call unanswered", "call_id", callID)
			_ = in.sendFinal(in.response(480, "Temporarily Unavailable", nil))
		}
	case <-tx.Done():
		// The transaction failed (transport error): nothing more to send.
		in.mu.Lock()
		in.final = true
		in.mu.Unlock()
		in.markSent()
		in.finishDone()
	}
	<-in.sent
}

func (ua *UA) forgetInvite(in *IncomingInvite) {
	ua.mu.Lock()
	if ua.invites[in.callID] == in {
		delete(ua.invites, in.callID)
	}
	ua.mu.Unlock()
}

// rejectPending answers 503 to every INVITE still waiting for its final
// answer and waits until their final answers are out (Close).
func (ua *UA) rejectPending() {
	ua.mu.Lock()
	pending := make([]*IncomingInvite, 0, len(ua.invites))
	for _, in := range ua.invites {
		pending = append(pending, in)
	}
	ua.mu.Unlock()
	for _, in := range pending {
		if in.claim() == nil {
			_ = in.sendFinal(in.response(503, "Service Unavailable", nil))
		}
	}
	ua.invWG.Wait()
}

// checkInvite refuses an out-of-dialog INVITE that cannot be offered to
// the handler; code 0 means it can.
func checkInvite(req *sipgox.Request, minSE time.Duration) (code int, reason string, hdrs []sipgox.Header) {
	switch {
	case req.From() == nil:
		return 400, "Missing From", nil
	case req.To() == nil:
		return 400, "Missing To", nil
	case req.CallID() == nil || req.CallID().Value() == "":
		return 400, "Missing Call-ID", nil
	case req.CSeq() == nil || req.CSeq().MethodName != sipgox.INVITE:
		return 400, "Bad CSeq", nil
	}
	if checkCallID("", req.CallID().Value()) != nil {
		return 400, "Bad Call-ID", nil
	}
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 {
		return 483, "Too Many Hops", nil
	}
	if s := strings.ToLower(req.Recipient.Scheme); s != "sip" && s != "sips" {
		return 416, "Unsupported URI Scheme", nil
	}
	var unsupported []string
	for _, h := range req.GetHeaders("Require") {
		for _, tag := range strings.Split(h.Value(), ",") {
			if tag = strings.TrimSpace(tag); tag != "" && !strings.EqualFold(tag, "timer") {
				unsupported = append(unsupported, tag)
			}
		}
	}
	if len(unsupported) > 0 {
		return 420, "Bad Extension", []sipgox.Header{sipgox.NewHeader("Unsupported", strings.Join(unsupported, ", "))}
	}
	if se := req.GetHeader("Session-Expires"); se != nil {
		secs, _ := parseSessionExpires(se.Value())
		if secs > 0 && time.Duration(secs)*time.Second < minSE {
			return 422, "Session Interval Too Small", []sipgox.Header{sipgox.NewHeader("Min-SE", strconv.Itoa(int(minSE/time.Second)))}
		}
	}
	if body := req.Body(); len(body) > 0 {
		if ce := req.GetHeader("Content-Encoding"); ce != nil && !strings.EqualFold(strings.TrimSpace(ce.Value()), "identity") {
			return 415, "Unsupported Media Type", []sipgox.Header{sipgox.NewHeader("Accept-Encoding", "identity"),
				sipgox.NewHeader("Accept", "application/sdp")}
		}
		ct := req.ContentType()
		if ct == nil {
			return 400, "Missing Content-Type", nil
		}
		if mediaType(ct.Value()) != "application/sdp" {
			return 415, "Unsupported Media Type", []sipgox.Header{sipgox.NewHeader("Accept", "application/sdp")}
		}
		var sd sdp.SessionDescription
		if err := sd.Unmarshal(body); err != nil {
			return 400, "Bad SDP", nil
		}
	}
	return 0, "", nil
}

// mediaType is the lower-case type/subtype of a Content-Type value.
func mediaType(v string) string {
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	return strings.ToLower(strings.TrimSpace(v))
}

func appendHeaders(res *sipgox.Response, hdrs ...sipgox.Header) {
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
}
