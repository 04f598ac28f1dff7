package siptest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/sipstream/sipstream/media"
)

// ErrClosed is returned by the Wait methods when the Peer is closed.
var ErrClosed = errors.New("siptest: peer closed")

// Config configures a Peer. The zero value is a peer on UDP 127.0.0.1 that
// answers every call at once, sends no media and accepts every REGISTER.
type Config struct {
	// Addr is the SIP listening address. Empty means "127.0.0.1:0" (a free
	// port). The host must be an IP address; RTP sockets bind to it too.
	Addr string
	// Transport is "udp", "tcp" or "tls". Empty means "udp".
	Transport string
	// TLSConfig is the server configuration (certificate) for "tls".
	// Required with "tls", ignored otherwise.
	TLSConfig *tls.Config
	// User is the user part of URI(). Empty means "peer".
	User string
	// Script is what the peer does with every incoming call, unless
	// ScriptFor is set.
	Script Script
	// ScriptFor, when not nil, chooses the script of each call from its
	// INVITE (called on the SIP stack's goroutine; must not block).
	ScriptFor func(invite *Request) Script
	// Users are the digest credentials (user name to password) REGISTER
	// and, with ChallengeInvite, INVITE must present. Nil means REGISTER is
	// accepted without authentication.
	Users map[string]string
	// Realm is the digest realm. Empty means "siptest".
	Realm string
	// ChallengeInvite, when 401 or 407, makes the peer challenge every
	// new INVITE (WWW-Authenticate or Proxy-Authenticate) and accept only
	// valid credentials of Users; wrong ones get 403. Zero means no
	// challenge.
	ChallengeInvite int
	// Logger receives the SIP stack's logs. Nil means none.
	Logger *slog.Logger
}

// Script is the behaviour of the peer for one call. The zero value answers
// at once (180 Ringing then 200 OK) and sends no media.
type Script struct {
	// Ring is the time between 180 Ringing (or 183) and the final
	// response. Zero means respond at once.
	Ring time.Duration
	// EarlyMedia sends 183 Session Progress with the SDP answer after 180
	// and starts media then.
	EarlyMedia bool
	// Reject, when not zero, is the final status code (486, 404, 480,
	// 603, ...) sent instead of answering. RejectReason is its reason
	// phrase; empty means the standard one.
	Reject       int
	RejectReason string
	// RingForever never answers: the call rings until the caller sends
	// CANCEL (answered 487 Request Terminated by the SIP stack).
	RingForever bool
	// NoResponse never sends a final response (the SIP stack still sends
	// 100 Trying): a caller sees its INVITE time out.
	NoResponse bool
	// HangupAfter, when not zero, sends BYE this long after the caller's
	// ACK.
	HangupAfter time.Duration
	// Vanish makes the peer go silent VanishAfter after the ACK (zero:
	// at once): no BYE, no RTP, no response to anything in the dialog.
	Vanish      bool
	VanishAfter time.Duration
	// AudioCodecs are the codecs the answer accepts, in preference order.
	// Nil means PCMA, PCMU, Opus, Speex.
	AudioCodecs []media.Codec
	// NoVideo rejects video m= lines; otherwise video is answered with
	// H.264 (the only video the peer can send).
	NoVideo bool
	// Direction is the peer's direction in the answer. The zero value is
	// SendRecv.
	Direction media.Direction
	// Audio streams a sine tone (PCMA or PCMU; silence for Opus; nothing
	// for Speex) at real-time pace, 20 ms per packet.
	Audio bool
	// ToneHz is the tone's frequency. Zero means 1000 Hz.
	ToneHz float64
	// AudioPCM, when not empty, is sent instead of the tone: 16-bit mono
	// samples at the codec's rate (8 kHz for G.711), looped.
	AudioPCM []int16
	// Video streams the H.264 test clip (320x240, 25 fps, an IDR every
	// second) in a loop at real-time pace when H.264 is negotiated. A PLI,
	// FIR or INFO picture_fast_update makes it jump to the next IDR. With
	// LiveVideo, it streams live encoder output instead.
	Video bool
	// LiveVideo, when not nil (and Video is set), replaces the clip with
	// video made live the way a phone's encoder makes it: any frame can be
	// an IDR, a keyframe request makes the very next frame one, and frames
	// have a real encoder's sizes. VideoClip is then ignored. Nil means the
	// clip.
	LiveVideo *LiveVideo
	// IgnoreKeyframeRequests makes the video ignore PLI, FIR and INFO
	// picture_fast_update (a phone that never answers them); they are
	// still counted (KeyframeRequests). The zero value answers them.
	IgnoreKeyframeRequests bool
	// NoRetransmit makes the peer ignore RTCP generic NACKs (still counted
	// in RTCPStats.NACK), like a phone that only answers PLI/FIR. The zero
	// value resends the requested video packets at once from a history of
	// the last 1024 packets sent within 2 s: as RFC 4588 RTX when rtx was
	// negotiated, else as the original packets, unchanged.
	NoRetransmit bool
	// NoRTX answers video without RFC 4588 rtx formats even when the caller
	// offers them (retransmissions, if any, are then plain). The zero value
	// accepts rtx for H.264 and retransmits over it.
	NoRTX bool
	// SRTP accepts an RTP/SAVP offer with SDES keying (RFC 4568: the first
	// a=crypto line of a suite it supports, answered with a key of its
	// own), then encrypts the RTP and RTCP it sends (RFC 3711) and decrypts
	// what it receives (packets that fail authentication are dropped and
	// not counted). Plain RTP/AVP offers are answered as usual. The zero
	// value answers RTP/SAVP offers 488 Not Acceptable Here.
	SRTP bool
	// VideoClip, when not empty, is streamed instead of the test clip: one
	// access unit per element, as its NAL units without start codes (SPS
	// and PPS in front of each IDR), at VideoFPS. It should start with an
	// IDR. The slices are read, never modified.
	VideoClip [][][]byte
	// VideoFPS is VideoClip's frame rate. Zero means 25.
	VideoFPS int
	// AnswerHeaders are added to the 18x and 200 responses to the INVITE.
	// The 200 also says "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO,
	// UPDATE, REFER, NOTIFY" and "Supported: replaces" unless AnswerHeaders
	// has an Allow or a Supported header of its own.
	AnswerHeaders []Header
	// SessionExpires, when not zero, asks for RFC 4028 session timers: the
	// 200 OK carries "Session-Expires: <seconds>;refresher=uac" and
	// "Require: timer", so the caller must refresh the session (re-INVITE
	// or UPDATE, see PeerCall.Reinvites) before it expires.
	SessionExpires time.Duration
	// ReferReject, when not zero, answers REFERs (call transfer, RFC
	// 3515) with this status code (300 to 699: 403, 405, 603 ...) instead
	// of 202 Accepted. The zero value accepts them: 202, then a NOTIFY
	// with "SIP/2.0 100 Trying" and one with the final status
	// (ReferResult), in message/sipfrag, the second ending the implicit
	// subscription. The peer does not call the Refer-To target itself.
	ReferReject int
	// ReferResult is the final status the NOTIFYs report for an accepted
	// REFER (200 to 699: 486 for a busy target ...). Zero means 200 OK.
	ReferResult int
	// ReferDelay is the time between the two NOTIFYs. Zero means none
	// (the final one goes once the first was answered).
	ReferDelay time.Duration
	// HangupAfterRefer sends BYE after the final NOTIFY of a successful
	// transfer (ReferResult 2xx), as a transferee whose new call is up
	// does.
	HangupAfterRefer bool
	// SendSR sends an RTCP Sender Report for each stream it streams every
	// SRInterval (zero: 1 s), the first one after the first packet.
	SendSR     bool
	SRInterval time.Duration
}

// Registration is an accepted REGISTER.
type Registration struct {
	// User is the To URI's user (or the digest user name).
	User string
	// Contact is the Contact header's value ("" for a query).
	Contact string
	// Expires is the registration's lifetime in seconds (0: unREGISTER).
	Expires int
	// Request is the REGISTER as received.
	Request Request
}

// Peer is a scripted SIP user agent on loopback for tests, in the spirit of
// net/http/httptest: it answers (or rejects, or rings, or ignores) calls,
// streams RTP, records what it receives, and can act as a registrar with
// digest authentication. Create it with NewPeer and Close it when done.
// All methods are safe for concurrent use.
type Peer struct {
	cfg       Config
	host      string
	ip        netip.Addr
	port      int
	transport string
	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	client    *sipgo.Client
	udp       net.PacketConn
	tcp       net.Listener
	serveDone chan struct{}

	closing   chan struct{}
	stopping  atomic.Bool // drop every incoming message
	closeOnce sync.Once
	wg        sync.WaitGroup // handlers and call goroutines

	n          notifier // n.mu guards everything below and all PeerCall state
	closed     bool
	calls      []*PeerCall
	out        []*PeerCall // calls placed with Call
	byID       map[string]*PeerCall
	nextWait   int
	regs       []Registration
	log        []Request
	registers  int
	challenged int
	auth       *authenticator
}

// NewPeer starts a peer listening on cfg.Addr.
func NewPeer(cfg Config) (*Peer, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Transport == "" {
		cfg.Transport = "udp"
	}
	cfg.Transport = strings.ToLower(cfg.Transport)
	if cfg.Transport != "udp" && cfg.Transport != "tcp" && cfg.Transport != "tls" {
		return nil, fmt.Errorf("siptest: transport %q (want udp, tcp or tls)", cfg.Transport)
	}
	if cfg.Transport == "tls" && cfg.TLSConfig == nil {
		return nil, errors.New("siptest: transport tls needs TLSConfig")
	}
	if cfg.User == "" {
		cfg.User = "peer"
	}
	if cfg.Realm == "" {
		cfg.Realm = "siptest"
	}
	if cfg.ChallengeInvite != 0 && cfg.ChallengeInvite != 401 && cfg.ChallengeInvite != 407 {
		return nil, fmt.Errorf("siptest: ChallengeInvite %d (want 0, 401 or 407)", cfg.ChallengeInvite)
	}
	if cfg.ChallengeInvite != 0 && cfg.Users == nil {
		return nil, errors.New("siptest: ChallengeInvite needs Users")
	}
	if err := cfg.Script.validate(); err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("siptest: Addr: %w", err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("siptest: Addr host must be an IP address: %w", err)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	p := &Peer{
		cfg: cfg, ip: ip.Unmap(), host: ip.Unmap().String(), transport: cfg.Transport,
		closing: make(chan struct{}), serveDone: make(chan struct{}),
		byID: map[string]*PeerCall{},
	}
	if cfg.Users != nil {
		p.auth = newAuthenticator(cfg.Realm, cfg.Users)
	}
	network := "udp4"
	if p.ip.Is6() {
		network = "udp6"
	}
	if cfg.Transport == "udp" {
		conn, err := net.ListenPacket(network, cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("siptest: listen: %w", err)
		}
		p.udp = conn
		p.port = conn.LocalAddr().(*net.UDPAddr).Port
	} else {
		l, err := net.Listen("tcp"+network[3:], cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("siptest: listen: %w", err)
		}
		if cfg.Transport == "tls" {
			l = tls.NewListener(l, cfg.TLSConfig.Clone())
		}
		p.tcp = l
		p.port = l.Addr().(*net.TCPAddr).Port
	}
	hostPort := net.JoinHostPort(p.host, strconv.Itoa(p.port))
	p.ua, err = sipgo.NewUA(sipgo.WithUserAgent("sipstream-siptest"), sipgo.WithUserAgentHostname(p.host),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(p.readFilter)),
		// A response no transaction waits for is dropped quietly instead
		// of logged by sipgo's default logger: a retransmission, or a 100
		// Trying handled after the final response (sipgo v1.7.3 handles
		// each response on a goroutine of its own, so one that arrived
		// first can be handled after the next one ended the transaction).
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerUnhandledResponseHandler(func(*sip.Response) {})))
	if err == nil {
		p.srv, err = sipgo.NewServer(p.ua, sipgo.WithServerLogger(logger))
	}
	if err == nil {
		opts := []sipgo.ClientOption{sipgo.WithClientHostname(p.host), sipgo.WithClientLogger(logger)}
		if p.udp != nil {
			opts = append(opts, sipgo.WithClientConnectionAddr(hostPort))
		}
		p.client, err = sipgo.NewClient(p.ua, opts...)
	}
	if err != nil {
		p.closeListeners()
		if p.ua != nil {
			_ = p.ua.Close()
		}
		return nil, fmt.Errorf("siptest: %w", err)
	}
	p.srv.OnInvite(p.track(p.onInvite))
	p.srv.OnAck(p.track(p.onAck))
	p.srv.OnBye(p.track(p.onBye))
	p.srv.OnCancel(p.track(p.onCancel))
	p.srv.OnInfo(p.track(p.onInfo))
	p.srv.OnOptions(p.track(p.onOptions))
	p.srv.OnRegister(p.track(p.onRegister))
	p.srv.OnUpdate(p.track(p.onUpdate))
	p.srv.OnRefer(p.track(p.onRefer))
	p.srv.OnNoRoute(p.track(func(req *sip.Request, tx sip.ServerTransaction) {
		p.respond(req, tx, 405, "Method Not Allowed", nil)
	}))

	go func() {
		defer close(p.serveDone)
		if p.udp != nil {
			_ = p.srv.ServeUDP(p.udp)
		} else {
			if p.transport == "tls" {
				_ = p.srv.ServeTLS(p.tcp)
			} else {
				_ = p.srv.ServeTCP(p.tcp)
			}
		}
	}()
	if p.udp != nil {
		waitServing(p.ua.TransportLayer(), hostPort)
	}
	return p, nil
}

// waitServing waits until the transport layer serves the UDP listener, so
// that requests sent from it (WithClientConnectionAddr) find it in the pool.
func waitServing(tl *sip.TransportLayer, hostPort string) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := tl.GetConnection("udp", hostPort); err == nil && c != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// track wraps a handler so that Close waits for it.
func (p *Peer) track(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if !p.enter() {
			return
		}
		defer p.wg.Done()
		p.n.mu.Lock()
		if len(p.log) < maxLog {
			p.log = append(p.log, copyRequest(req))
		}
		p.n.broadcast()
		p.n.mu.Unlock()
		h(req, tx)
	}
}

func (p *Peer) closeListeners() {
	if p.udp != nil {
		_ = p.udp.Close()
	}
	if p.tcp != nil {
		_ = p.tcp.Close()
	}
}

// URI returns the peer's SIP URI, "sip:peer@127.0.0.1:PORT" (with
// ";transport=tcp" on TCP and ";transport=tls" on TLS).
func (p *Peer) URI() string {
	u := "sip:" + p.cfg.User + "@" + p.Addr()
	if p.transport != "udp" {
		u += ";transport=" + p.transport
	}
	return u
}

// Addr returns the peer's SIP address as host:port.
func (p *Peer) Addr() string { return net.JoinHostPort(p.host, strconv.Itoa(p.port)) }

// Transport returns "udp", "tcp" or "tls".
func (p *Peer) Transport() string { return p.transport }

// WaitCall returns the next call (in arrival order) that WaitCall has not
// returned yet, waiting for it to arrive. Every INVITE that passed
// authentication is a call, rejected ones included.
func (p *Peer) WaitCall(ctx context.Context) (*PeerCall, error) {
	var c *PeerCall
	err := p.n.wait(ctx, p.closing, func() bool {
		if p.nextWait < len(p.calls) {
			c = p.calls[p.nextWait]
			p.nextWait++
			return true
		}
		return false
	})
	return c, err
}

// Calls returns every call received so far, in arrival order.
func (p *Peer) Calls() []*PeerCall {
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	return append([]*PeerCall(nil), p.calls...)
}

// maxLog bounds the requests a Peer keeps for Requests.
const maxLog = 10000

// Requests returns the requests the peer received with that method ("" for
// all), in arrival order: retransmissions absorbed by the SIP stack are not
// included. It keeps the first 10000 requests.
func (p *Peer) Requests(method string) []Request {
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	var out []Request
	for _, r := range p.log {
		if method == "" || r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// WaitRequests waits until at least n requests with that method ("" for
// all) were received and returns them.
func (p *Peer) WaitRequests(ctx context.Context, method string, n int) ([]Request, error) {
	var out []Request
	err := p.n.wait(ctx, p.closing, func() bool {
		out = out[:0]
		for _, r := range p.log {
			if method == "" || r.Method == method {
				out = append(out, r)
			}
		}
		return len(out) >= n
	})
	return out, err
}

// Registrations returns the accepted REGISTERs, in order.
func (p *Peer) Registrations() []Registration {
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	return append([]Registration(nil), p.regs...)
}

// RegisterCount returns the number of REGISTER requests received,
// challenged and rejected ones included.
func (p *Peer) RegisterCount() int {
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	return p.registers
}

// Challenges returns the number of 401/407 challenges sent (REGISTER and
// INVITE).
func (p *Peer) Challenges() int {
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	return p.challenged
}

// WaitRegistrations waits until at least n REGISTERs were accepted and
// returns them all.
func (p *Peer) WaitRegistrations(ctx context.Context, n int) ([]Registration, error) {
	var out []Registration
	err := p.n.wait(ctx, p.closing, func() bool {
		if len(p.regs) >= n {
			out = append([]Registration(nil), p.regs...)
			return true
		}
		return false
	})
	return out, err
}

// Close stops the peer: it ends every call without signalling (no BYE),
// closes every socket and waits for its goroutines. It is idempotent.
func (p *Peer) Close() error {
	p.closeOnce.Do(func() {
		p.n.mu.Lock()
		p.closed = true
		close(p.closing)
		calls := append(append([]*PeerCall(nil), p.calls...), p.out...)
		p.n.broadcast()
		p.n.mu.Unlock()
		for _, c := range calls {
			c.finish(EndClosed)
		}
		// Stop taking messages in, and give the ones sipgo already read a
		// moment to be handled: a request handled after sipgo's transport
		// closed makes it open a new socket that nothing closes (sipgo
		// v1.7.2, seen as a goroutine leak).
		p.stopping.Store(true)
		time.Sleep(closeGrace)
		p.wg.Wait()
		// Listeners first: a request read meanwhile is answered on the
		// closed socket instead of making sipgo open a new one.
		p.closeListeners()
		<-p.serveDone
		_ = p.ua.Close()
		// A message sipgo read before the listeners closed may still be
		// handled in a goroutine of its own and write after the pool was
		// cleared: sipgo then opens a socket nothing closes. Clear again.
		time.Sleep(closeGrace)
		_ = p.ua.TransportLayer().Pool("udp").Clear()
	})
	return nil
}

// respond sends a stateless-looking response within tx (errors are ignored:
// the caller retransmits or gives up, which is what tests observe).
func (p *Peer) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, body []byte, headers ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	for _, h := range headers {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

func (p *Peer) call(req *sip.Request) *PeerCall {
	id := req.CallID()
	if id == nil {
		return nil
	}
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	return p.byID[id.Value()]
}

func (p *Peer) onAck(req *sip.Request, tx sip.ServerTransaction) {
	c := p.call(req)
	if c == nil {
		return
	}
	c.mu().Lock()
	late := c.late
	c.late = nil
	c.mu().Unlock()
	if late != nil {
		c.acceptLateAnswer(late, req.Body())
	}
	c.mu().Lock()
	c.acked = true
	p.n.broadcast()
	c.mu().Unlock()
}

func (p *Peer) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := p.call(req)
	if c == nil {
		p.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	c.mu().Lock()
	c.bye = copyRequest(req)
	c.byeReceived = true
	vanished := c.vanished
	p.n.broadcast()
	c.mu().Unlock()
	if vanished {
		return // a vanished peer answers nothing
	}
	p.respond(req, tx, 200, "OK", nil)
	c.finish(EndRemoteBye)
}

func (p *Peer) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	// CANCELs matching a pending INVITE are answered by the transaction
	// layer (200, then 487 for the INVITE); this one matched nothing.
	p.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
}

func (p *Peer) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	if c := p.call(req); c != nil && c.isVanished() {
		return
	}
	p.respond(req, tx, 200, "OK", nil,
		sip.NewHeader("Allow", allowHeader+", REGISTER"),
		sip.NewHeader("Accept", "application/sdp"))
}

func (p *Peer) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	c := p.call(req)
	if c == nil {
		p.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if c.isVanished() {
		return
	}
	c.answerOffer(req, tx)
}

func (p *Peer) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := p.call(req)
	if c == nil {
		p.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if c.isVanished() {
		c.recordInfo(copyRequest(req))
		return
	}
	c.recordInfo(copyRequest(req))
	p.respond(req, tx, 200, "OK", nil)
}

func (p *Peer) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	r := copyRequest(req)
	p.n.mu.Lock()
	p.registers++
	user := ""
	if to := req.To(); to != nil {
		user = to.Address.User
	}
	if p.auth != nil {
		res, name := p.auth.check(r.Header("Authorization"), "REGISTER")
		switch res {
		case authMissing:
			p.challenged++
			chal := p.auth.challenge()
			p.n.broadcast()
			p.n.mu.Unlock()
			p.respond(req, tx, 401, "Unauthorized", nil, sip.NewHeader("WWW-Authenticate", chal))
			return
		case authForbidden:
			p.n.broadcast()
			p.n.mu.Unlock()
			p.respond(req, tx, 403, "Forbidden", nil)
			return
		}
		user = name
	}
	expires := 3600
	if v := r.Header("Expires"); v != "" {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			expires = n
		}
	}
	contact := ""
	var headers []sip.Header
	if c := req.Contact(); c != nil {
		contact = c.Value()
		if v, ok := c.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil && n >= 0 {
				expires = n
			}
		}
		if expires > 0 {
			ch := c.Clone()
			ch.Params = sip.NewParams()
			ch.Params.Add("expires", strconv.Itoa(expires))
			headers = append(headers, ch)
		}
	}
	headers = append(headers, sip.NewHeader("Expires", strconv.Itoa(expires)))
	p.regs = append(p.regs, Registration{User: user, Contact: contact, Expires: expires, Request: r})
	p.n.broadcast()
	p.n.mu.Unlock()
	p.respond(req, tx, 200, "OK", nil, headers...)
}

// closeGrace is how long Close lets messages already read be handled.
const closeGrace = 50 * time.Millisecond

// readFilter drops every message once the peer is closing.
func (p *Peer) readFilter(_ sip.TransportReadProps, data []byte) ([]byte, error) {
	if p.stopping.Load() {
		return nil, nil
	}
	return data, nil
}

// enter registers a goroutine Close must wait for; false once closing.
func (p *Peer) enter() bool {
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

// spawn runs f on a goroutine Close waits for, unless the peer is closing,
// and reports whether it did.
func (p *Peer) spawn(f func()) bool {
	if !p.enter() {
		return false
	}
	go func() {
		defer p.wg.Done()
		f()
	}()
	return true
}
