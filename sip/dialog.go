package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
)

// Dialog is an established call (RFC 3261 §12). One goroutine owns its
// state; the methods are safe for concurrent use. It ends when either side
// sends BYE, a session timer or keepalive fails, or the UA closes: Done is
// then closed and Err says why.
type Dialog struct {
	ua  *UA
	log *slog.Logger

	// immutable after newDialog
	callID       string
	transport    string
	proxy        string
	creds        *credentials
	from         sipgox.FromHeader
	localContact sipgox.ContactHeader
	onReinvite   func([]byte) ([]byte, error)
	onDTMF       func(rune, time.Duration)
	onInfo       func(string, []byte)
	keepAlive    time.Duration

	cseq    atomic.Uint32
	ack     atomic.Pointer[sipgox.Request] // ACK for our INVITE's 2xx (resent on 2xx retransmissions)
	ackCSeq atomic.Uint32

	ops      chan func()
	in       chan inbound
	ctx      context.Context // cancelled when the loop ends
	cancel   context.CancelFunc
	done     chan struct{}
	loopDone chan struct{}
	bg       sync.WaitGroup
	err      error // valid after done is closed

	// owned by the loop goroutine
	up           bool
	finished     bool
	ending       bool // our BYE is under way
	to           sipgox.ToHeader
	remoteTag    string
	remoteTarget sipgox.Uri
	routeSet     []sipgox.Uri
	localSDP     []byte
	baseSDP      []byte // our INVITE offer
	sdpBump      int
	answerSDP    []byte
	remoteSDP    []byte
	peerAllow    string
	st           sessionTimer
	kaTimer      *time.Timer
	kaBusy       bool
	held         bool

	answerOnce []byte // copy of the 2xx SDP, readable without the loop
}

type inbound struct {
	req  *sipgox.Request
	tx   sipgox.ServerTransaction
	done chan struct{}
}

// sessionTimer is RFC 4028 state.
type sessionTimer struct {
	interval  time.Duration // 0: no session timer
	refresher bool          // we refresh
	useUpdate bool
	timer     *time.Timer
	busy      bool // a refresh is in flight
}

func newDialog(ua *UA, r *InviteRequest, p *invitePlan) *Dialog {
	d := &Dialog{
		ua:         ua,
		log:        ua.log.With("call_id", p.callID),
		callID:     p.callID,
		transport:  p.transport,
		proxy:      p.proxy,
		creds:      p.creds,
		from:       p.from,
		to:         p.to,
		onReinvite: r.OnReinvite,
		onDTMF:     r.OnDTMF,
		onInfo:     r.OnInfo,
		keepAlive:  r.KeepAliveInterval,
		localSDP:   append([]byte(nil), r.Offer...),
		baseSDP:    append([]byte(nil), r.Offer...),
		ops:        make(chan func()),
		in:         make(chan inbound),
		done:       make(chan struct{}),
		loopDone:   make(chan struct{}),
	}
	d.localContact = sipgox.ContactHeader{Address: ua.contactURI(p.from.Address.User, p.transport)}
	d.cseq.Store(uint32(time.Now().UnixNano()%10000) + 1)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	ua.wg.Add(1)
	go d.run()
	return d
}

func (d *Dialog) nextCSeq() uint32 { return d.cseq.Add(1) }

// observeCSeq raises the counter past n (digest retries bump CSeq themselves).
func (d *Dialog) observeCSeq(n uint32) {
	for {
		c := d.cseq.Load()
		if c >= n || d.cseq.CompareAndSwap(c, n) {
			return
		}
	}
}

// CallID returns the dialog's SIP Call-ID.
func (d *Dialog) CallID() string { return d.callID }

// AnswerSDP returns the SDP answer of the call's 2xx (a copy).
func (d *Dialog) AnswerSDP() []byte { return append([]byte(nil), d.answerOnce...) }

// Done is closed when the dialog has ended.
func (d *Dialog) Done() <-chan struct{} { return d.done }

// Err says why the dialog ended: nil after our own BYE, ErrRemoteBye when
// the peer hung up, ErrSessionExpired, ErrKeepAliveFailed or ErrClosed.
// It returns nil while the dialog is up.
func (d *Dialog) Err() error {
	select {
	case <-d.done:
		return d.err
	default:
		return nil
	}
}

func (d *Dialog) run() {
	defer d.ua.wg.Done()
	defer close(d.loopDone)
	for !d.finished {
		var stC, kaC <-chan time.Time
		if d.st.timer != nil {
			stC = d.st.timer.C
		}
		if d.kaTimer != nil {
			kaC = d.kaTimer.C
		}
		select {
		case f := <-d.ops:
			f()
		case in := <-d.in:
			d.handleIn(in)
			close(in.done)
		case <-stC:
			d.st.timer = nil
			d.sessionTimerFired()
		case <-kaC:
			d.kaTimer = nil
			d.sendKeepAlive()
		}
	}
	if d.st.timer != nil {
		d.st.timer.Stop()
	}
	if d.kaTimer != nil {
		d.kaTimer.Stop()
	}
	d.cancel()
	d.ua.removeDialog(d)
	d.bg.Wait()
}

// finish ends the dialog (loop goroutine only).
func (d *Dialog) finish(err error) {
	if d.finished {
		return
	}
	d.finished = true
	d.err = err
	close(d.done)
	if err != nil {
		d.log.Info("sip: dialog ended", "reason", err)
	} else {
		d.log.Info("sip: dialog ended")
	}
}

// call runs f on the loop goroutine and waits for it. It returns false
// when the loop has already ended (f did not run).
func (d *Dialog) call(f func()) bool {
	done := make(chan struct{})
	select {
	case d.ops <- func() { f(); close(done) }:
	case <-d.loopDone:
		return false
	}
	<-done
	return true
}

// post runs f on the loop from a background goroutine; dropped once the
// dialog has ended.
func (d *Dialog) post(f func()) {
	select {
	case d.ops <- f:
	case <-d.ctx.Done():
	}
}

func (d *Dialog) goBackground(f func(ctx context.Context)) {
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		f(d.ctx)
	}()
}

// terminate ends the dialog locally with err (no BYE).
func (d *Dialog) terminate(err error) {
	d.call(func() { d.finish(err) })
}

// established records the 2xx, sends the ACK and starts timers.
func (d *Dialog) established(inv *sipgox.Request, res *sipgox.Response) error {
	var err error
	ok := d.call(func() {
		d.up = true
		if to := res.To(); to != nil {
			t := *to
			t.Address = *to.Address.Clone()
			t.Params = to.Params.Clone()
			d.to = t
			d.remoteTag, _ = to.Params.Get("tag")
		}
		d.remoteTarget = inv.Recipient
		if c := res.Contact(); c != nil {
			d.remoteTarget = *c.Address.Clone()
		} else {
			err = errors.New("2xx without Contact")
		}
		d.routeSet = d.routeSet[:0]
		rr := res.GetHeaders("Record-Route")
		for i := len(rr) - 1; i >= 0; i-- {
			d.routeSet = append(d.routeSet, parseRouteValues(rr[i])...)
		}
		if isSDP(res) {
			d.answerSDP = append([]byte(nil), res.Body()...)
			d.remoteSDP = d.answerSDP
			d.answerOnce = d.answerSDP
		}
		if a := res.GetHeader("Allow"); a != nil {
			d.peerAllow = strings.ToUpper(a.Value())
		}
		ack := d.newRequest(sipgox.ACK, nil, "")
		ack.CSeq().SeqNo = inv.CSeq().SeqNo
		d.ack.Store(ack)
		d.ackCSeq.Store(inv.CSeq().SeqNo)
		if werr := d.writeAck(ack); werr != nil {
			err = werr
		}
		d.startSessionTimer(res, true)
		d.armKeepAlive()
	})
	if !ok {
		return ErrClosed
	}
	return err
}

func (d *Dialog) writeAck(ack *sipgox.Request) error {
	cl, err := d.ua.client(d.transport)
	if err != nil {
		return err
	}
	a := ack.Clone()
	if d.transport == "udp" {
		a.Laddr = ack.Laddr
	}
	return cl.WriteRequest(a, noBuild)
}

// resendAck answers a retransmitted 2xx of our INVITE.
func (d *Dialog) resendAck(cseq uint32) {
	if ack := d.ack.Load(); ack != nil && d.ackCSeq.Load() == cseq {
		if err := d.writeAck(ack); err != nil {
			d.log.Debug("sip: ACK resend failed", "err", err)
		}
	}
}

// parseRouteValues parses one Record-Route header (which may hold several
// comma-separated values) into URIs.
func parseRouteValues(h sipgox.Header) []sipgox.Uri {
	if rr, ok := h.(*sipgox.RecordRouteHeader); ok {
		return []sipgox.Uri{*rr.Address.Clone()}
	}
	var out []sipgox.Uri
	for _, v := range splitHeaderList(h.Value()) {
		v = strings.TrimSpace(v)
		if i := strings.IndexByte(v, '<'); i >= 0 {
			if j := strings.IndexByte(v[i:], '>'); j > 0 {
				v = v[i+1 : i+j]
			}
		}
		var u sipgox.Uri
		if err := sipgox.ParseUri(v, &u); err == nil {
			out = append(out, u)
		}
	}
	return out
}

// splitHeaderList splits a comma-separated header value, ignoring commas
// inside <> and quotes.
func splitHeaderList(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			if depth > 0 {
				depth--
			}
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// newRequest builds an in-dialog request (loop goroutine only): remote
// target, route set, tags, next CSeq, and the destination (outbound proxy,
// else first route, else remote target).
func (d *Dialog) newRequest(method sipgox.RequestMethod, body []byte, contentType string) *sipgox.Request {
	req := sipgox.NewRequest(method, d.remoteTarget)
	req.AppendHeader(d.ua.newVia(d.transport))
	for _, r := range d.routeSet {
		req.AppendHeader(&sipgox.RouteHeader{Address: *r.Clone()})
	}
	from := d.from
	from.Params = d.from.Params.Clone()
	req.AppendHeader(&from)
	to := d.to
	to.Params = d.to.Params.Clone()
	req.AppendHeader(&to)
	cid := sipgox.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sipgox.CSeqHeader{SeqNo: d.nextCSeq(), MethodName: method})
	if method == sipgox.INVITE || method == sipgox.UPDATE {
		c := d.localContact
		req.AppendHeader(&c)
	}
	if contentType != "" {
		req.AppendHeader(sipgox.NewHeader("Content-Type", contentType))
	}
	dest := d.proxy
	if dest == "" {
		if len(d.routeSet) > 0 {
			dest = destination(d.routeSet[0], uriTransport(d.routeSet[0], d.transport))
		} else {
			dest = destination(d.remoteTarget, d.transport)
		}
	}
	d.ua.prepare(req, d.transport, dest)
	req.SetBody(body)
	return req
}

func uriTransport(u sipgox.Uri, def string) string {
	if u.UriParams != nil {
		if t, ok := u.UriParams.Get("transport"); ok {
			if n, err := normTransport("", t); err == nil {
				return n
			}
		}
	}
	return def
}

// request builds an in-dialog request on the loop and runs its transaction
// on the calling goroutine.
func (d *Dialog) request(ctx context.Context, method sipgox.RequestMethod, body []byte, contentType string) (*sipgox.Response, error) {
	var req *sipgox.Request
	var err error
	ok := d.call(func() {
		if d.finished || d.ending {
			err = ErrDialogClosed
			return
		}
		req = d.newRequest(method, body, contentType)
	})
	if !ok {
		return nil, ErrDialogClosed
	}
	if err != nil {
		return nil, err
	}
	res, err := d.ua.do(ctx, req, d.transport, d.creds)
	if req.CSeq() != nil {
		d.observeCSeq(req.CSeq().SeqNo)
	}
	return res, err
}

// Bye hangs up. It runs on a context derived from ctx that ctx's
// cancellation cannot end (context.WithoutCancel), bounded by
// Config.CleanupTimeout, so a cancelled caller still sends the BYE. The
// dialog ends (Err() == nil) whatever the answer. Calling Bye on an ended
// dialog returns nil.
func (d *Dialog) Bye(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.ua.cfg.CleanupTimeout)
	defer cancel()
	var req *sipgox.Request
	ok := d.call(func() {
		if d.finished || d.ending {
			return
		}
		d.ending = true
		if !d.up {
			d.finish(nil)
			return
		}
		req = d.newRequest(sipgox.BYE, nil, "")
	})
	if !ok || req == nil {
		select {
		case <-d.done:
		case <-ctx.Done():
		}
		return nil
	}
	d.log.Info("sip: sending BYE")
	res, err := d.ua.do(ctx, req, d.transport, d.creds)
	d.call(func() { d.finish(nil) })
	if err != nil {
		return err
	}
	if !res.IsSuccess() && res.StatusCode != 481 {
		return statusError("BYE", res)
	}
	return nil
}

// SendInfo sends an in-dialog INFO and waits for its final answer; a
// non-2xx answer is a *StatusError.
func (d *Dialog) SendInfo(ctx context.Context, contentType string, body []byte) error {
	if err := checkHeader("contentType", Header{Name: "X", Value: contentType}); err != nil || contentType == "" {
		return paramErr("contentType", "invalid")
	}
	res, err := d.request(ctx, sipgox.INFO, body, contentType)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return statusError("INFO", res)
	}
	return nil
}

// SendDTMF sends one DTMF digit (0-9, *, #, A-D) in SIP INFO: with relay
// as application/dtmf-relay ("Signal=5\r\nDuration=160\r\n"), otherwise
// as application/dtmf ("5").
func (d *Dialog) SendDTMF(ctx context.Context, digit rune, relay bool) error {
	body, ct, err := formatDTMF(digit, relay, 160*time.Millisecond)
	if err != nil {
		return err
	}
	return d.SendInfo(ctx, ct, body)
}

// keyframeRequest is the XML of RFC 5168 (picture_fast_update).
const keyframeRequest = `<?xml version="1.0" encoding="utf-8" ?>
<media_control>
  <vc_primitive>
    <to_encoder>
      <picture_fast_update/>
    </to_encoder>
  </vc_primitive>
</media_control>
`

// RequestKeyframe asks the peer's video encoder for a keyframe with SIP INFO
// application/media_control+xml picture_fast_update.
// Specification: RFC 5168.
func (d *Dialog) RequestKeyframe(ctx context.Context) error {
	return d.SendInfo(ctx, "application/media_control+xml", []byte(keyframeRequest))
}

// --- incoming in-dialog requests (loop goroutine) ------------------------

func respond(tx sipgox.ServerTransaction, req *sipgox.Request, code int, reason string, body []byte, hdrs ...sipgox.Header) {
	res := sipgox.NewResponseFromRequest(req, code, reason, body)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

func (d *Dialog) handleIn(in inbound) {
	req, tx := in.req, in.tx
	if req.IsAck() {
		return
	}
	if req.From() == nil || req.To() == nil {
		respond(tx, req, 400, "Missing From or To", nil)
		return
	}
	fromTag, _ := req.From().Params.Get("tag")
	toTag, _ := req.To().Params.Get("tag")
	localTag, _ := d.from.Params.Get("tag")
	if d.finished || !d.up || fromTag != d.remoteTag || toTag != localTag {
		respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	switch req.Method {
	case sipgox.BYE:
		respond(tx, req, 200, "OK", nil)
		if d.ending {
			d.finish(nil)
		} else {
			d.finish(ErrRemoteBye)
		}
	case sipgox.INFO:
		d.handleInfo(req, tx)
	case sipgox.OPTIONS:
		respond(tx, req, 200, "OK", nil, sipgox.NewHeader("Allow", allowedMethods),
			sipgox.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf"))
	case sipgox.INVITE, sipgox.UPDATE:
		d.handleOffer(req, tx)
	default:
		respond(tx, req, 501, "Not Implemented", nil, sipgox.NewHeader("Allow", allowedMethods))
	}
}

func (d *Dialog) handleInfo(req *sipgox.Request, tx sipgox.ServerTransaction) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(strings.TrimSpace(h.Value()))
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = strings.TrimSpace(ct[:i])
		}
	}
	body := req.Body()
	switch ct {
	case "application/dtmf-relay", "application/dtmf":
		digit, dur, err := parseDTMF(ct, body)
		if err != nil {
			respond(tx, req, 400, "Bad DTMF", nil)
			return
		}
		respond(tx, req, 200, "OK", nil)
		if d.onDTMF != nil {
			d.onDTMF(digit, dur)
		}
	default:
		respond(tx, req, 200, "OK", nil)
		if d.onInfo != nil && (ct != "" || len(body) > 0) {
			d.onInfo(ct, append([]byte(nil), body...))
		}
	}
}

// handleOffer answers a re-INVITE or UPDATE (target refresh, new offer,
// session-timer refresh).
func (d *Dialog) handleOffer(req *sipgox.Request, tx sipgox.ServerTransaction) {
	if se := req.GetHeader("Session-Expires"); se != nil {
		// RFC 4028 §8.1: refuse an interval below our Min-SE before
		// anything else of the request is applied.
		if secs, _ := parseSessionExpires(se.Value()); secs > 0 && time.Duration(secs)*time.Second < d.ua.minSE {
			minSE := strconv.Itoa(int(d.ua.minSE / time.Second))
			d.log.Info("sip: session interval too small", "method", req.Method, "asked", secs)
			respond(tx, req, 422, "Session Interval Too Small", nil, sipgox.NewHeader("Min-SE", minSE))
			return
		}
	}
	if d.st.busy && !d.st.useUpdate && req.Method == sipgox.INVITE && len(req.Body()) > 0 {
		// Glare with our refreshing re-INVITE (RFC 3261 §14.2).
		respond(tx, req, 491, "Request Pending", nil)
		return
	}
	if c := req.Contact(); c != nil {
		d.remoteTarget = *c.Address.Clone()
	}
	var answer []byte
	if body := req.Body(); len(body) > 0 {
		offer := append([]byte(nil), body...)
		if d.onReinvite != nil {
			a, err := d.onReinvite(offer)
			if err != nil || len(a) == 0 {
				respond(tx, req, 488, "Not Acceptable Here", nil)
				return
			}
			answer = a
		} else {
			d.sdpBump++
			answer = mirrorAnswer(d.baseSDP, offer, d.sdpBump)
		}
		d.remoteSDP = offer
		d.localSDP = answer
		d.held = isHold(offer)
		d.log.Info("sip: offer answered", "method", req.Method, "hold", d.held)
	} else if req.Method == sipgox.INVITE {
		// Offerless re-INVITE: we offer our current SDP in the 200.
		answer = d.localSDP
	}
	hdrs := []sipgox.Header{}
	c := d.localContact
	hdrs = append(hdrs, &c, sipgox.NewHeader("Allow", allowedMethods), sipgox.NewHeader("Supported", "timer"))
	if se := req.GetHeader("Session-Expires"); se != nil {
		secs, refresher := parseSessionExpires(se.Value())
		if secs > 0 {
			if refresher == "" {
				refresher = "uac" // the peer sends this request: it refreshes
			}
			hdrs = append(hdrs, sipgox.NewHeader("Session-Expires", strconv.Itoa(secs)+";refresher="+refresher),
				sipgox.NewHeader("Require", "timer"))
			d.setSessionTimer(time.Duration(secs)*time.Second, refresher == "uas", false)
		}
	} else if d.st.interval > 0 && !d.st.refresher {
		// A refresh without Session-Expires still proves the peer is alive.
		d.setSessionTimer(d.st.interval, false, false)
	}
	if answer != nil {
		hdrs = append(hdrs, sipgox.NewHeader("Content-Type", "application/sdp"))
	}
	respond(tx, req, 200, "OK", answer, hdrs...)
}

func isHold(offer []byte) bool {
	for _, dir := range sdpDirections(offer) {
		if dir == "sendonly" || dir == "inactive" {
			return true
		}
	}
	return false
}

// --- session timers (RFC 4028) and keepalive -----------------------------

// parseSessionExpires parses "1800;refresher=uac".
func parseSessionExpires(v string) (secs int, refresher string) {
	parts := strings.Split(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || n <= 0 || n > 86400*7 {
		return 0, ""
	}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(val))
		}
	}
	return n, refresher
}

// startSessionTimer reads Session-Expires from our INVITE's 2xx.
func (d *Dialog) startSessionTimer(res *sipgox.Response, weAreUAC bool) {
	h := res.GetHeader("Session-Expires")
	if h == nil {
		return
	}
	secs, refresher := parseSessionExpires(h.Value())
	if secs == 0 {
		return
	}
	weRefresh := refresher == "uac" || refresher == ""
	d.setSessionTimer(time.Duration(secs)*time.Second, weRefresh, strings.Contains(d.peerAllow, "UPDATE"))
}

func (d *Dialog) setSessionTimer(interval time.Duration, weRefresh, useUpdate bool) {
	// A peer's 2xx may name less than Min-SE (RFC 4028 forbids it): use
	// Min-SE, so we never refresh more often than every Min-SE/2 nor end
	// the session sooner than Min-SE asks.
	interval = max(interval, d.ua.minSE)
	if d.st.timer != nil {
		d.st.timer.Stop()
	}
	d.st.interval = interval
	d.st.refresher = weRefresh
	if useUpdate {
		d.st.useUpdate = true
	}
	var wait time.Duration
	if weRefresh {
		wait = interval / 2
	} else {
		// RFC 4028 §10: BYE at interval minus min(32 s, interval/3).
		wait = interval - min(32*time.Second, interval/3)
	}
	d.st.timer = time.NewTimer(wait)
}

func (d *Dialog) sessionTimerFired() {
	if d.finished || d.ending {
		return
	}
	if !d.st.refresher {
		d.log.Warn("sip: peer did not refresh the session")
		d.expire(ErrSessionExpired)
		return
	}
	if d.st.busy {
		return
	}
	d.st.busy = true
	method := sipgox.INVITE
	var body []byte
	ct := ""
	if d.st.useUpdate {
		method = sipgox.UPDATE
	} else {
		body, ct = d.localSDP, "application/sdp"
	}
	req := d.newRequest(method, body, ct)
	secs := int(d.st.interval / time.Second)
	req.AppendHeader(sipgox.NewHeader("Session-Expires", strconv.Itoa(secs)+";refresher=uac"))
	req.AppendHeader(sipgox.NewHeader("Supported", "timer"))
	d.goBackground(func(ctx context.Context) {
		res, err := d.refresh(ctx, req)
		d.post(func() {
			d.st.busy = false
			if d.finished || d.ending {
				return
			}
			switch {
			case err == nil && res.IsSuccess():
				next := d.st.interval
				if h := res.GetHeader("Session-Expires"); h != nil {
					if s, r := parseSessionExpires(h.Value()); s > 0 {
						next = time.Duration(s) * time.Second
						if r == "uas" {
							d.setSessionTimer(next, false, d.st.useUpdate)
							return
						}
					}
				}
				d.setSessionTimer(next, true, d.st.useUpdate)
			case err == nil && (res.StatusCode == 501 || res.StatusCode == 405) && d.st.useUpdate:
				d.st.useUpdate = false // peer cannot UPDATE: re-INVITE next time
				d.st.timer = time.NewTimer(0)
			case err == nil && res.StatusCode == 491:
				d.st.timer = time.NewTimer(2 * time.Second) // glare: retry
			default:
				d.log.Warn("sip: session refresh failed", "err", err, "status", statusOf(res))
				d.expire(ErrSessionExpired)
			}
		})
	})
}

func statusOf(res *sipgox.Response) int {
	if res == nil {
		return 0
	}
	return res.StatusCode
}

// refresh runs a refresh request; for re-INVITE it ACKs the 2xx.
func (d *Dialog) refresh(ctx context.Context, req *sipgox.Request) (*sipgox.Response, error) {
	if req.Method != sipgox.INVITE {
		return d.ua.do(ctx, req, d.transport, d.creds)
	}
	res, err := d.ua.do(ctx, req, d.transport, d.creds)
	if err != nil || !res.IsSuccess() {
		return res, err
	}
	ack := sipgox.NewRequest(sipgox.ACK, req.Recipient)
	ack.AppendHeader(d.ua.newVia(d.transport))
	sipgox.CopyHeaders("Route", req, ack)
	for _, h := range []sipgox.Header{req.From(), res.To(), req.CallID()} {
		ack.AppendHeader(sipgox.HeaderClone(h))
	}
	ack.AppendHeader(&sipgox.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sipgox.ACK})
	d.ua.prepare(ack, d.transport, req.Destination())
	ack.SetBody(nil)
	return res, d.writeAck(ack)
}

// expire sends BYE in the background and ends the dialog with err.
func (d *Dialog) expire(err error) {
	d.ending = true
	bye := d.newRequest(sipgox.BYE, nil, "")
	d.finish(err)
	d.ua.goRequest(func(ctx context.Context) {
		_, _ = d.ua.do(ctx, bye, d.transport, d.creds)
	})
}

func (d *Dialog) armKeepAlive() {
	if d.keepAlive > 0 && !d.finished {
		d.kaTimer = time.NewTimer(d.keepAlive)
	}
}

func (d *Dialog) sendKeepAlive() {
	if d.finished || d.ending || d.kaBusy {
		return
	}
	d.kaBusy = true
	req := d.newRequest(sipgox.OPTIONS, nil, "")
	d.goBackground(func(ctx context.Context) {
		res, err := d.ua.do(ctx, req, d.transport, d.creds)
		d.post(func() {
			d.kaBusy = false
			if d.finished || d.ending {
				return
			}
			if err != nil || res.StatusCode == 481 || res.StatusCode == 408 {
				d.log.Warn("sip: keepalive failed", "err", err, "status", statusOf(res))
				if err == nil {
					err = statusError("OPTIONS", res)
				}
				d.expire(fmt.Errorf("%w: %w", ErrKeepAliveFailed, err))
				return
			}
			d.armKeepAlive()
		})
	})
}
