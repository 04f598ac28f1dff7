package sip

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	sipgox "github.com/emiago/sipgo/sip"
)

// Header is an extra header added to an outgoing request.
type Header struct {
	Name  string // a token; headers the UA builds itself (Via, From, To, Call-ID, CSeq, Contact, Content-*, Route, …) are refused
	Value string // no CR or LF
}

// Progress is a provisional answer to an INVITE (100, 180, 183 …).
type Progress struct {
	StatusCode int
	Reason     string
	// SDP is the early-media answer carried by the response (usually 183),
	// nil when there is none.
	SDP []byte
}

// InviteRequest describes an outgoing call. Only Callee and From are
// required; every string is checked against the SIP grammar and an invalid
// one fails Invite with a *ParamError (ErrInvalidParams).
type InviteRequest struct {
	// Callee is a full "sip:"/"sips:" URI, "user@host[:port]", or just a
	// user ("bob", "+4930123"), which is then addressed at Domain and Port.
	Callee string
	// From is the caller's login: the user part of From (sipLogin).
	From string
	// DisplayName is shown to the callee (visibleName). Zero means none.
	DisplayName string
	// AuthUser is the digest user name (sipAuthenticationName). Zero means From.
	AuthUser string
	// Password answers 401/407 challenges, only those of requests sent to
	// Domain (Callee's host when Domain is zero) or OutboundProxy; others
	// fail with a *ChallengeError (ErrUntrustedChallenge). Zero means
	// challenges fail the call with a 401/407 *StatusError
	// (ErrUnauthorized). Never logged.
	Password string
	// AuthRealm, when set, is the only digest realm Password is given to.
	// Zero means any realm of the trusted hosts.
	AuthRealm string
	// Domain is the SIP domain for From and for a bare Callee, "host" or
	// "host:port". Required unless Callee is a full URI (its host is then used).
	Domain string
	// OutboundProxy is "host[:port]" or a SIP URI where the INVITE and every
	// later request of the dialog (ACK, BYE, INFO, re-INVITE, UPDATE,
	// OPTIONS) are sent, whatever the Request-URI and route set say. Zero
	// means requests go to the route set's first hop or the remote target.
	OutboundProxy string
	// Port is the Request-URI port for a bare Callee. Zero means the port in
	// Domain, or none (5060/5061).
	Port int
	// Transport is "udp", "tcp" or "tls". Zero means the Callee URI's
	// transport parameter, "tls" for sips:, else "udp".
	Transport string
	// CallID is the SIP Call-ID. Zero means a random one.
	CallID string
	// Headers are added to the INVITE as they are; see ValidateHeader for
	// what they may hold. At most MaxHeaders.
	Headers []Header
	// Offer is the SDP offer (see package sip/sdp).
	Offer []byte
	// SessionExpires asks for a session timer (RFC 4028) of this many
	// seconds; less than MinSessionExpires (90 s) is raised to it. Zero
	// means we only say "Supported: timer" and follow the peer's choice
	// (raised to 90 s too if the peer names less).
	SessionExpires int
	// KeepAliveInterval sends in-dialog OPTIONS at this interval; no answer
	// or 481 ends the dialog with ErrKeepAliveFailed. Zero means no keepalive.
	KeepAliveInterval time.Duration

	// OnProgress is called for each provisional response, on the goroutine
	// that called Invite, before it returns. Must not block.
	OnProgress func(Progress)
	// OnReinvite is called for an offer received in a re-INVITE or UPDATE
	// (hold, unhold, codec or port change) and returns our answer SDP; an
	// error answers 488. nil means we answer with our last SDP, direction
	// mirrored (sendonly↔recvonly, inactive), version bumped. Called from
	// the dialog's goroutine; must not block for long and must not call the
	// Dialog's methods (they wait for that goroutine: start a goroutine).
	OnReinvite func(offer []byte) (answer []byte, err error)
	// OnDTMF is called for DTMF received in SIP INFO
	// (application/dtmf-relay or application/dtmf). Dialog goroutine; must
	// not block or call the Dialog's methods.
	OnDTMF func(digit rune, duration time.Duration)
	// OnInfo is called for any other INFO. Dialog goroutine; must not block
	// or call the Dialog's methods.
	OnInfo func(contentType string, body []byte)
}

// invitePlan is a validated InviteRequest turned into SIP values.
type invitePlan struct {
	ruri      sipgox.Uri
	from      sipgox.FromHeader
	to        sipgox.ToHeader
	transport string
	dest      string // where the INVITE goes
	proxy     string // outbound proxy "host:port", "" when none
	callID    string
	creds     *credentials
}

func normTransport(field, s string) (string, error) {
	switch t := strings.ToLower(s); t {
	case "udp", "tcp", "tls":
		return t, nil
	}
	return "", paramErr(field, "want udp, tcp or tls")
}

func (r *InviteRequest) plan() (*invitePlan, error) {
	p := &invitePlan{}
	if err := checkUser("From", r.From); err != nil {
		return nil, err
	}
	auth := r.AuthUser
	if auth == "" {
		auth = r.From
	}
	if err := checkUser("AuthUser", auth); err != nil {
		return nil, err
	}
	if err := checkDisplayName("DisplayName", r.DisplayName); err != nil {
		return nil, err
	}
	if r.Port < 0 || r.Port > 65535 {
		return nil, paramErr("Port", "out of range")
	}
	var domainHost string
	var domainPort int
	if r.Domain != "" {
		var err error
		if domainHost, domainPort, err = splitHostPort("Domain", r.Domain); err != nil {
			return nil, err
		}
	}
	if strings.ContainsAny(r.Password, "\r\n") {
		return nil, paramErr("Password", "control character not allowed")
	}

	// Request-URI / To.
	callee := strings.TrimSpace(r.Callee)
	lc := strings.ToLower(callee)
	if err := checkCallee("Callee", "Domain", callee, r.Domain); err != nil {
		return nil, err
	}
	switch {
	case hasSIPScheme(callee):
		if err := sipgox.ParseUri(callee, &p.ruri); err != nil {
			return nil, paramErr("Callee", "not a SIP URI: "+err.Error())
		}
		p.ruri.Scheme = strings.ToLower(p.ruri.Scheme)
	default:
		user, host := callee, domainHost
		port := r.Port
		if port == 0 {
			port = domainPort
		}
		if at := strings.LastIndexByte(callee, '@'); at >= 0 {
			user = callee[:at]
			h, hp, err := splitHostPort("Callee", callee[at+1:])
			if err != nil {
				return nil, err
			}
			host, port = h, hp
		}
		p.ruri = sipgox.Uri{Scheme: "sip", User: user, Host: host, Port: port}
	}
	if domainHost == "" {
		domainHost = p.ruri.Host
	}

	// Transport.
	switch {
	case r.Transport != "":
		t, err := normTransport("Transport", r.Transport)
		if err != nil {
			return nil, err
		}
		p.transport = t
	case p.ruri.UriParams != nil && p.ruri.UriParams.Has("transport"):
		v, _ := p.ruri.UriParams.Get("transport")
		t, err := normTransport("Callee transport", v)
		if err != nil {
			return nil, err
		}
		p.transport = t
	case p.ruri.Scheme == "sips":
		p.transport = "tls"
	default:
		p.transport = "udp"
	}

	// Destination: outbound proxy or the Request-URI.
	p.dest = destination(p.ruri, p.transport)
	if r.OutboundProxy != "" {
		dest, err := proxyDest(r.OutboundProxy, p.transport)
		if err != nil {
			return nil, err
		}
		p.dest, p.proxy = dest, dest
	}

	p.callID = r.CallID
	if p.callID == "" {
		p.callID = sipgox.GenerateTagN(24)
	} else if err := checkCallID("CallID", p.callID); err != nil {
		return nil, err
	}
	if len(r.Headers) > MaxHeaders {
		return nil, paramErr("Headers", "more than "+strconv.Itoa(MaxHeaders)+" headers")
	}
	for i, h := range r.Headers {
		if err := checkCustomHeader("Headers["+strconv.Itoa(i)+"]", h); err != nil {
			return nil, err
		}
	}
	if r.SessionExpires < 0 {
		return nil, paramErr("SessionExpires", "negative")
	}

	p.from = sipgox.FromHeader{
		DisplayName: escapeDisplayName(r.DisplayName),
		Address:     sipgox.Uri{Scheme: "sip", User: r.From, Host: domainHost},
		Params:      sipgox.NewParams(),
	}
	p.from.Params.Add("tag", sipgox.GenerateTagN(16))
	p.to = sipgox.ToHeader{
		Address: sipgox.Uri{Scheme: p.ruri.Scheme, User: p.ruri.User, Host: p.ruri.Host, Port: p.ruri.Port},
		Params:  sipgox.NewParams(),
	}
	if r.Password != "" {
		p.creds = &credentials{user: auth, password: r.Password, scope: authScope{realm: r.AuthRealm}}
		// Where the password belongs: the domain (its own port, or the
		// one of a bare Callee) and the outbound proxy.
		dom := sipgox.Uri{Host: domainHost, Port: domainPort}
		if r.Domain == "" {
			dom.Port = p.ruri.Port
		} else if r.Port != 0 && !strings.Contains(callee, "@") && !strings.HasPrefix(lc, "sip") {
			dom.Port = r.Port
		}
		p.creds.scope.hosts = append(p.creds.scope.hosts, destination(dom, p.transport))
		if p.proxy != "" {
			p.creds.scope.hosts = append(p.creds.scope.hosts, p.proxy)
		}
	}
	return p, nil
}

// proxyDest turns an OutboundProxy value into "host:port".
func proxyDest(s, transport string) (string, error) {
	if hasSIPScheme(s) {
		if _, err := parseSIPURI("OutboundProxy", s); err != nil {
			return "", err
		}
		var u sipgox.Uri
		if err := sipgox.ParseUri(s, &u); err != nil {
			return "", paramErr("OutboundProxy", "not a SIP URI: "+err.Error())
		}
		return destination(u, transport), nil
	}
	host, port, err := splitHostPort("OutboundProxy", s)
	if err != nil {
		return "", err
	}
	return destination(sipgox.Uri{Host: host, Port: port}, transport), nil
}

func escapeDisplayName(s string) string {
	q := quoteDisplayName(s)
	return q[1 : len(q)-1]
}

// Invite places a call and returns once it is answered (2xx received and
// ACKed). Provisional answers go to req.OnProgress. A non-2xx final answer
// returns a *StatusError (errors.Is: ErrBusy, ErrNotFound, …). When ctx ends
// before the final answer, Invite sends CANCEL (after the first provisional
// response, as RFC 3261 §9.1 requires), waits for the 487 and returns an
// error wrapping ctx.Err() (and ErrTimeout for a deadline). No response at
// within Config.TransactionTimeout (none, or only 100 Trying) returns a
// 408 *StatusError (after a CANCEL when 100 Trying arrived).
func (ua *UA) Invite(ctx context.Context, r InviteRequest) (*Dialog, error) {
	if ua.isClosed() {
		return nil, ErrClosed
	}
	p, err := r.plan()
	if err != nil {
		return nil, err
	}
	cl, err := ua.client(p.transport)
	if err != nil {
		return nil, err
	}
	d := newDialog(ua, &r, p)
	if err := ua.addDialog(d); err != nil {
		d.terminate(err)
		<-d.loopDone
		return nil, err
	}
	dlg, err := ua.invite(ctx, cl, d, &r, p)
	if err != nil {
		d.terminate(err)
		<-d.loopDone
		return nil, err
	}
	return dlg, nil
}

func (ua *UA) buildInvite(d *Dialog, r *InviteRequest, p *invitePlan) *sipgox.Request {
	req := sipgox.NewRequest(sipgox.INVITE, p.ruri)
	req.AppendHeader(ua.newVia(p.transport))
	from := p.from
	req.AppendHeader(&from)
	to := p.to
	req.AppendHeader(&to)
	cid := sipgox.CallIDHeader(p.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sipgox.CSeqHeader{SeqNo: d.nextCSeq(), MethodName: sipgox.INVITE})
	contact := d.localContact
	req.AppendHeader(&contact)
	req.AppendHeader(sipgox.NewHeader("Allow", allowedMethods))
	req.AppendHeader(sipgox.NewHeader("Supported", "timer"))
	if r.SessionExpires > 0 {
		se := max(r.SessionExpires, int(ua.minSE/time.Second))
		req.AppendHeader(sipgox.NewHeader("Session-Expires", strconv.Itoa(se)))
	}
	for _, h := range r.Headers {
		req.AppendHeader(sipgox.NewHeader(h.Name, h.Value))
	}
	if len(r.Offer) > 0 {
		req.AppendHeader(sipgox.NewHeader("Content-Type", "application/sdp"))
	}
	ua.prepare(req, p.transport, p.dest)
	req.SetBody(r.Offer)
	return req
}

const allowedMethods = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, NOTIFY"

func (ua *UA) invite(ctx context.Context, cl *sipgo.Client, d *Dialog, r *InviteRequest, p *invitePlan) (*Dialog, error) {
	req := ua.buildInvite(d, r, p)
	log := ua.log.With("call_id", p.callID)
	log.Info("sip: INVITE", "ruri", p.ruri.String(), "dest", p.dest, "transport", p.transport)

	tx, err := cl.TransactionRequest(ctx, req, noBuild)
	if err != nil {
		return nil, fmt.Errorf("sip: send INVITE: %w", err)
	}
	noResponse := time.NewTimer(ua.cfg.TransactionTimeout)
	defer noResponse.Stop()
	var (
		gotResponse bool
		ctxErr      error // set once the caller gave up
		cancelSent  bool
		cleanup     <-chan time.Time
		challenged  = map[int]bool{}
	)
	sendCancel := func() {
		if cancelSent {
			return
		}
		cancelSent = true
		ua.sendCancel(req, p.transport, log)
	}
	giveUp := func(se error) error {
		err := ctxErr
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w (%w)", err, ErrTimeout)
		}
		if se != nil {
			return fmt.Errorf("sip: INVITE cancelled: %w: %w", err, se)
		}
		return fmt.Errorf("sip: INVITE cancelled: %w", err)
	}
	ctxDone := ctx.Done()
	for {
		select {
		case res := <-tx.Responses():
			gotResponse = true
			if res.StatusCode > 100 {
				// 100 Trying is hop-by-hop: a peer that never gets further
				// still times out.
				noResponse.Stop()
			}
			switch {
			case res.IsProvisional():
				if ctxErr != nil {
					sendCancel()
					continue
				}
				if r.OnProgress != nil {
					pr := Progress{StatusCode: res.StatusCode, Reason: res.Reason}
					if len(res.Body()) > 0 && isSDP(res) {
						pr.SDP = append([]byte(nil), res.Body()...)
					}
					r.OnProgress(pr)
				}
			case res.IsSuccess():
				tx.Terminate()
				if err := d.established(req, res); err != nil {
					if errors.Is(err, ErrClosed) {
						return nil, ErrClosed // the UA closed while the call was being answered
					}
					log.Warn("sip: bad 2xx", "err", err)
				}
				if ctxErr != nil {
					// Answered while we were cancelling: hang up at once.
					_ = d.Bye(context.Background())
					return nil, giveUp(nil)
				}
				log.Info("sip: call answered", "status", res.StatusCode)
				return d, nil
			default:
				tx.Terminate()
				if (res.StatusCode == 401 || res.StatusCode == 407) && p.creds.ok() && !challenged[res.StatusCode] && ctxErr == nil {
					if err := p.creds.scope.check(ctx, "INVITE", p.dest, res); err != nil {
						log.Info("sip: challenge not answered", "status", res.StatusCode, "err", err)
						return nil, err
					}
					challenged[res.StatusCode] = true
					req = req.Clone()
					tx, err = cl.TransactionDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.creds.user, Password: p.creds.password})
					if err != nil {
						return nil, fmt.Errorf("sip: INVITE digest auth: %w", err)
					}
					d.observeCSeq(req.CSeq().SeqNo)
					gotResponse = false
					noResponse.Reset(ua.cfg.TransactionTimeout)
					continue
				}
				if res.StatusCode == 422 && r.SessionExpires > 0 && !challenged[422] && ctxErr == nil {
					// RFC 4028 §6: retry with the peer's Min-SE.
					if minSE := parseMinSE(res); minSE > 0 {
						challenged[422] = true
						req = req.Clone()
						se := strconv.Itoa(max(minSE, r.SessionExpires))
						req.ReplaceHeader(sipgox.NewHeader("Session-Expires", se))
						req.RemoveHeader("Min-SE")
						req.AppendHeader(sipgox.NewHeader("Min-SE", strconv.Itoa(minSE)))
						req.RemoveHeader("Via")
						req.PrependHeader(ua.newVia(p.transport))
						req.CSeq().SeqNo = d.nextCSeq()
						tx, err = cl.TransactionRequest(ctx, req, noBuild)
						if err != nil {
							return nil, fmt.Errorf("sip: send INVITE: %w", err)
						}
						gotResponse = false
						noResponse.Reset(ua.cfg.TransactionTimeout)
						continue
					}
				}
				se := statusError("INVITE", res)
				log.Info("sip: call rejected", "status", res.StatusCode, "reason", res.Reason)
				if ctxErr != nil {
					return nil, giveUp(se)
				}
				return nil, se
			}
		case <-tx.Done():
			err := tx.Err()
			if ctxErr != nil {
				return nil, giveUp(nil)
			}
			return nil, timeoutError("INVITE", err)
		case <-noResponse.C:
			if gotResponse {
				sendCancel() // a 100 Trying arrived: CANCEL is allowed
			}
			tx.Terminate()
			if ctxErr != nil {
				return nil, giveUp(nil)
			}
			return nil, &StatusError{Method: "INVITE", Code: 408, Reason: "Request Timeout",
				Err: fmt.Errorf("no response within %v", ua.cfg.TransactionTimeout)}
		case <-ctxDone:
			ctxDone = nil
			ctxErr = ctx.Err()
			log.Info("sip: INVITE cancelled by caller", "err", ctxErr)
			if gotResponse {
				sendCancel()
			}
			cleanup = time.After(ua.cfg.CleanupTimeout)
		case <-cleanup:
			tx.Terminate()
			return nil, giveUp(nil)
		}
	}
}

// sendCancel sends CANCEL for req in the background (RFC 3261 §9.1: same
// Request-URI, Call-ID, From, To, CSeq number and top Via as the INVITE).
func (ua *UA) sendCancel(inv *sipgox.Request, transport string, log interface {
	Info(string, ...any)
}) {
	c := sipgox.NewRequest(sipgox.CANCEL, inv.Recipient)
	if v := inv.Via(); v != nil {
		c.AppendHeader(v.Clone())
	}
	sipgox.CopyHeaders("Route", inv, c)
	for _, h := range []sipgox.Header{inv.From(), inv.To(), inv.CallID()} {
		if h != nil {
			c.AppendHeader(sipgox.HeaderClone(h))
		}
	}
	c.AppendHeader(&sipgox.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sipgox.CANCEL})
	ua.prepare(c, transport, inv.Destination())
	c.SetBody(nil)
	ua.goRequest(func(ctx context.Context) {
		res, err := ua.do(ctx, c, transport, nil)
		if err != nil {
			log.Info("sip: CANCEL failed", "err", err)
			return
		}
		log.Info("sip: CANCEL answered", "status", res.StatusCode)
	})
}

func isSDP(m interface {
	ContentType() *sipgox.ContentTypeHeader
}) bool {
	ct := m.ContentType()
	if ct == nil {
		return true // some gateways omit it; a body on INVITE answers is SDP
	}
	v := strings.ToLower(strings.TrimSpace(ct.Value()))
	return strings.HasPrefix(v, "application/sdp")
}

// parseMinSE reads the Min-SE header of a 422 answer (RFC 4028 §5).
func parseMinSE(res *sipgox.Response) int {
	h := res.GetHeader("Min-SE")
	if h == nil {
		return 0
	}
	v, _, _ := strings.Cut(h.Value(), ";")
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 || n > 86400 {
		return 0
	}
	return n
}
