package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	sipgox "github.com/emiago/sipgo/sip"
)

// Config configures a UA. The zero value listens on all IPv4 interfaces,
// port 5060, UDP and TCP.
type Config struct {
	// ListenAddr is the "ip:port" to listen on with UDP and TCP (the same
	// port for both). Zero means "0.0.0.0:5060"; ":port" means 0.0.0.0;
	// port 0 picks a free port.
	// Only IPv4 or a concrete IPv6 address: sipgo binds "udp" on 0.0.0.0
	// as [::] and then binds twice.
	ListenAddr string
	// PublicAddr is the address written in Contact and Via (the NAT's public
	// address). Zero means the listen IP, or, when listening on 0.0.0.0,
	// the address of the interface that routes to the Internet (127.0.0.1
	// if there is none). Via always carries ";rport" (RFC 3581).
	PublicAddr netip.Addr
	// PublicPort is the port written in Contact and Via. Zero means the
	// listen port of the transport in use.
	PublicPort int
	// UserAgent is the User-Agent header value. Zero means "sipstream".
	UserAgent string
	// TLSConfig enables SIP over TLS. nil means no TLS: requests with
	// Transport "tls" fail. It is used for outgoing connections; when it has
	// Certificates the UA also listens for TLS on TLSListenAddr.
	TLSConfig *tls.Config
	// TLSListenAddr is where to listen for TLS. Zero means the listen IP
	// with a free port. Ignored without TLSConfig.Certificates.
	TLSListenAddr string
	// Logger receives protocol logs (never passwords). nil discards them.
	Logger *slog.Logger
	// TransactionTimeout bounds how long a request may go without a final
	// answer (for INVITE: without a response other than 100 Trying), after which it fails
	// with a 408 *StatusError (ErrTimeout). Zero means 32 s (64×T1,
	// RFC 3261 Timer B/F).
	TransactionTimeout time.Duration
	// CleanupTimeout bounds BYE and CANCEL, which run even when the caller's
	// context is already cancelled. Zero means 10 s.
	CleanupTimeout time.Duration

	// UDPSourceTimeout is how long the UA remembers a UDP source address it
	// has not heard from (sipgo keeps one table entry per source, forever,
	// unless we remove it). Zero means 64 s, longer than any transaction
	// (64×T1).
	UDPSourceTimeout time.Duration
	// MaxUDPSources caps the UDP source addresses remembered at once;
	// datagrams from further sources are dropped until idle ones are
	// forgotten (sources already known keep working). Zero means 10,000.
	MaxUDPSources int
	// TCPIdleTimeout closes an incoming TCP or TLS connection that sends
	// nothing for this long (a peer using it sends RFC 5626 CRLF
	// keepalives). Zero means 3 min; negative means never.
	TCPIdleTimeout time.Duration
	// MaxTCPConns caps the incoming TCP connections (and, separately, the
	// TLS connections) open at once; further ones are closed as soon as
	// they are accepted. Zero means 1,024; negative means no cap.
	MaxTCPConns int
}

// sipgo refuses UDP messages longer than UDPMTUSize-200 (1300) bytes. An
// INVITE carrying a full audio+video offer plus a digest Authorization header
// exceeds that, while PBXs accept larger (fragmented) UDP datagrams as every
// phone sends them; RFC 3261 §18.1.1's switch to TCP fails on the many PBXs
// that do not listen on TCP. Raised once, while the package initialises,
// before any goroutine can read it.
var _ = raiseUDPLimit()

func raiseUDPLimit() bool {
	if sipgox.UDPMTUSize < 65000 {
		sipgox.UDPMTUSize = 65000
	}
	return true
}

// MinSessionExpires is RFC 4028's Min-SE: a re-INVITE or UPDATE asking for
// a shorter session interval is refused with 422 Session Interval Too
// Small, a shorter interval in a 2xx is raised to it (we never refresh more
// often than every 45 s), and InviteRequest.SessionExpires is raised to it.
const MinSessionExpires = 90 * time.Second

// UA is a SIP user agent: it places calls (Invite), keeps their dialogs,
// answers in-dialog requests and registers (Register). It is safe for
// concurrent use.
type UA struct {
	cfg     Config
	log     *slog.Logger
	sua     *sipgo.UserAgent
	srv     *sipgo.Server
	clients map[string]*sipgo.Client // by lower-case transport

	udpConn  net.PacketConn
	udpGuard *udpGuard // wraps udpConn for sipgo
	tcpLn    net.Listener
	tlsLn    net.Listener

	publicHost string
	// minSE is the smallest session interval we accept or use (RFC 4028
	// Min-SE): 90 s; tests lower it.
	minSE    time.Duration
	ports    map[string]int // listen port by transport
	udpLaddr sipgox.Addr

	mu      sync.Mutex
	dialogs map[string]*Dialog // by Call-ID
	regs    map[*Registration]struct{}
	closed  bool

	onInvite  func(*IncomingInvite)
	invites   map[string]*IncomingInvite // pending incoming INVITEs by Call-ID
	registrar *Registrar
	invWG     sync.WaitGroup // sipgo goroutines serving incoming INVITEs
	// t1 is RFC 3261's T1 for our 2xx retransmissions and inviteTimeout
	// how long an incoming INVITE may wait for its final answer; tests
	// lower them.
	t1            time.Duration
	inviteTimeout time.Duration

	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup  // listeners and dialog loops
	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	reqWG     sync.WaitGroup // background requests (CANCEL, BYE on expiry)
	deaf      atomic.Bool    // set by Close: incoming messages are dropped
}

// readFilter drops everything once Close has begun, so sipgo spawns no new
// handlers while it is being torn down.
func (ua *UA) readFilter(_ sipgox.TransportReadProps, data []byte) ([]byte, error) {
	if ua.deaf.Load() {
		return nil, nil
	}
	return data, nil
}

// NewUA starts a user agent listening on cfg.ListenAddr.
func NewUA(cfg Config) (*UA, error) {
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "0.0.0.0:5060"
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "sipstream"
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = 32 * time.Second
	}
	if cfg.CleanupTimeout <= 0 {
		cfg.CleanupTimeout = 10 * time.Second
	}
	if cfg.UDPSourceTimeout <= 0 {
		cfg.UDPSourceTimeout = 64 * time.Second
	}
	if cfg.MaxUDPSources <= 0 {
		cfg.MaxUDPSources = 10000
	}
	if cfg.TCPIdleTimeout == 0 {
		cfg.TCPIdleTimeout = 3 * time.Minute
	}
	if cfg.MaxTCPConns == 0 {
		cfg.MaxTCPConns = 1024
	}
	if err := checkHeader("UserAgent", Header{Name: "User-Agent", Value: cfg.UserAgent}); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	listen := cfg.ListenAddr
	if strings.HasPrefix(listen, ":") {
		listen = "0.0.0.0" + listen // ":5060" means all IPv4 interfaces
	}
	ap, err := netip.ParseAddrPort(listen)
	if err != nil {
		return nil, fmt.Errorf("sip: ListenAddr %q: want ip:port: %w", cfg.ListenAddr, err)
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() && ip.IsUnspecified() {
		return nil, fmt.Errorf("sip: ListenAddr %q: listen on 0.0.0.0 or a concrete address", cfg.ListenAddr)
	}
	if cfg.PublicPort < 0 || cfg.PublicPort > 65535 {
		return nil, fmt.Errorf("sip: PublicPort %d out of range", cfg.PublicPort)
	}
	ua := &UA{
		cfg:     cfg,
		log:     log,
		ports:   map[string]int{},
		dialogs: map[string]*Dialog{},
		regs:    map[*Registration]struct{}{},
		invites: map[string]*IncomingInvite{},
		closing: make(chan struct{}),
		clients: map[string]*sipgo.Client{},
		minSE:   MinSessionExpires,

		t1:            defaultT1,
		inviteTimeout: unansweredTimeout,
	}
	ua.ctx, ua.cancel = context.WithCancel(context.Background())
	udpNet, tcpNet := "udp4", "tcp4"
	if ip.Is6() {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	if err := ua.listen(udpNet, tcpNet, ip, ap.Port()); err != nil {
		return nil, err
	}
	switch {
	case cfg.PublicAddr.IsValid():
		ua.publicHost = hostString(cfg.PublicAddr.Unmap())
	case ip.IsUnspecified():
		ua.publicHost = hostString(outboundIP())
	default:
		ua.publicHost = hostString(ip)
	}

	sua, err := sipgo.NewUA(
		sipgo.WithUserAgent(cfg.UserAgent),
		sipgo.WithUserAgentHostname(ua.publicHost),
		sipgo.WithUserAgenTLSConfig(cfg.TLSConfig),
		sipgo.WithUserAgentTransactionLayerOptions(
			sipgox.WithTransactionLayerLogger(log),
			sipgox.WithTransactionLayerUnhandledResponseHandler(ua.onUnhandledResponse),
		),
		sipgo.WithUserAgentTransportLayerOptions(sipgox.WithTransportLayerLogger(log),
			sipgox.WithTransportLayerReadFilter(ua.readFilter)),
	)
	if err != nil {
		ua.closeListeners()
		return nil, fmt.Errorf("sip: %w", err)
	}
	ua.sua = sua
	srv, err := sipgo.NewServer(sua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.closeListeners()
		_ = sua.Close()
		return nil, fmt.Errorf("sip: %w", err)
	}
	ua.srv = srv
	for tp, port := range ua.ports {
		pub := port
		if cfg.PublicPort != 0 {
			pub = cfg.PublicPort
		}
		c, err := sipgo.NewClient(sua,
			sipgo.WithClientLogger(log),
			sipgo.WithClientHostname(ua.publicHost),
			sipgo.WithClientPort(pub),
			sipgo.WithClientNAT(),
		)
		if err != nil {
			ua.closeListeners()
			_ = sua.Close()
			return nil, fmt.Errorf("sip: %w", err)
		}
		ua.clients[tp] = c
	}
	ua.udpGuard.pool = sua.TransportLayer().Pool("udp")
	ua.udpLaddr = sipgox.Addr{IP: net.IP(ip.AsSlice()), Port: ua.ports["udp"], Hostname: ip.String()}
	ua.registerHandlers()

	ua.serve(ua.serveUDP)
	ua.wg.Add(1)
	go ua.sweepLoop()
	ua.serve(func() error { return srv.ServeTCP(ua.tcpLn) })
	if ua.tlsLn != nil {
		ua.serve(func() error { return srv.ServeTLS(ua.tlsLn) })
	}
	if err := waitListening(sua.TransportLayer(), ua.udpConn.LocalAddr().String()); err != nil {
		ua.Close()
		return nil, err
	}
	log.Info("sip: user agent listening", "udp", ua.udpConn.LocalAddr().String(),
		"tcp", ua.tcpLn.Addr().String(), "public", ua.publicHost)
	return ua, nil
}

func (ua *UA) serve(f func() error) {
	ua.wg.Add(1)
	go func() {
		defer ua.wg.Done()
		if err := f(); err != nil {
			select {
			case <-ua.closing:
			default:
				ua.log.Error("sip: listener stopped", "err", err)
			}
		}
	}()
}

// waitListening waits until sipgo has registered the UDP listener, so
// requests sent from it (Laddr) find it.
func waitListening(tp *sipgox.TransportLayer, addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := tp.GetConnection("udp", addr); err == nil && c != nil {
			_, _ = c.TryClose() // GetConnection took a reference
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("sip: UDP listener did not start")
		}
		time.Sleep(time.Millisecond)
	}
}

// listen opens UDP and TCP on the same port (retrying when port 0 gives a
// UDP port whose TCP twin is taken), and TLS when configured.
func (ua *UA) listen(udpNet, tcpNet string, ip netip.Addr, port uint16) error {
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		uc, err := net.ListenPacket(udpNet, netip.AddrPortFrom(ip, port).String())
		if err != nil {
			return fmt.Errorf("sip: listen udp: %w", err)
		}
		// A burst of INVITEs (a flood, or a PBX's failover sending every
		// call at once) must not overflow the socket: each datagram lost
		// comes back as a retransmission wave. Best effort: the kernel
		// caps it at net.core.rmem_max.
		_ = uc.(*net.UDPConn).SetReadBuffer(udpReadBuffer)
		p := uc.LocalAddr().(*net.UDPAddr).Port
		tl, err := net.Listen(tcpNet, netip.AddrPortFrom(ip, uint16(p)).String())
		if err != nil {
			uc.Close()
			lastErr = err
			if port != 0 {
				break
			}
			continue
		}
		ua.udpConn = uc
		ua.udpGuard = newUDPGuard(uc, ua.cfg.UDPSourceTimeout, ua.cfg.MaxUDPSources)
		ua.tcpLn = &tcpGuard{Listener: tl, idle: ua.cfg.TCPIdleTimeout, max: ua.cfg.MaxTCPConns}
		ua.ports["udp"], ua.ports["tcp"] = p, p
		lastErr = nil
		break
	}
	if lastErr != nil {
		return fmt.Errorf("sip: listen tcp: %w", lastErr)
	}
	if ua.cfg.TLSConfig != nil && len(ua.cfg.TLSConfig.Certificates) > 0 {
		addr := ua.cfg.TLSListenAddr
		if addr == "" {
			addr = netip.AddrPortFrom(ip, 0).String()
		}
		l, err := net.Listen(tcpNet, addr)
		if err != nil {
			ua.closeListeners()
			return fmt.Errorf("sip: listen tls: %w", err)
		}
		ua.tlsLn = tls.NewListener(&tcpGuard{Listener: l, idle: ua.cfg.TCPIdleTimeout, max: ua.cfg.MaxTCPConns}, ua.cfg.TLSConfig)
		ua.ports["tls"] = l.Addr().(*net.TCPAddr).Port
	} else if ua.cfg.TLSConfig != nil {
		ua.ports["tls"] = ua.ports["tcp"] // outgoing only; Contact points at TCP
	}
	return nil
}

// udpReadBuffer is the receive buffer asked for the SIP UDP socket.
const udpReadBuffer = 4 << 20

func (ua *UA) closeListeners() {
	if ua.udpConn != nil {
		ua.udpConn.Close()
	}
	if ua.tcpLn != nil {
		ua.tcpLn.Close()
	}
	if ua.tlsLn != nil {
		ua.tlsLn.Close()
	}
}

// outboundIP finds the local address the kernel would use towards the
// Internet (no packet is sent).
func outboundIP() netip.Addr {
	c, err := net.Dial("udp4", "192.0.2.1:9")
	if err == nil {
		defer c.Close()
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				return ip.Unmap()
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

func hostString(a netip.Addr) string {
	if a.Is6() {
		return "[" + a.String() + "]"
	}
	return a.String()
}

// ListenPort returns the port the UA listens on for transport "udp", "tcp"
// or "tls" (0 when not listening on it).
func (ua *UA) ListenPort(transport string) int {
	return ua.ports[transport]
}

// PublicHost returns the host written in Contact and Via.
func (ua *UA) PublicHost() string { return ua.publicHost }

// Close ends every dialog locally (without BYE: call Dialog.Bye first for a
// clean hangup), stops registrations without unREGISTER, closes the
// listeners and waits for the UA's goroutines. It is idempotent.
func (ua *UA) Close() error {
	ua.closeOnce.Do(func() {
		ua.mu.Lock()
		ua.closed = true
		dialogs := make([]*Dialog, 0, len(ua.dialogs))
		for _, d := range ua.dialogs {
			dialogs = append(dialogs, d)
		}
		regs := make([]*Registration, 0, len(ua.regs))
		for r := range ua.regs {
			regs = append(regs, r)
		}
		ua.mu.Unlock()
		for _, d := range dialogs {
			d.terminate(ErrClosed)
		}
		for _, d := range dialogs {
			<-d.loopDone
		}
		ua.rejectPending()
		for _, r := range regs {
			r.stop()
		}
		// Background requests end before the transport goes: a request sent
		// after sipgo's pool is cleared would rebind our port and leak.
		ua.cancel()
		ua.reqWG.Wait()
		ua.deaf.Store(true)
		close(ua.closing)
		// Stop reading first and wait for the read loops, then let sipgo
		// terminate its transactions and close the connections it made.
		ua.closeListeners()
		ua.wg.Wait()
		_ = ua.sua.Close()
		clearLateConnections(ua.sua.TransportLayer())
	})
	return nil
}

// lateWriteGrace is how long Close waits for sipgo's own goroutines to
// finish handling what was read before the listeners closed.
const lateWriteGrace = 20 * time.Millisecond

// clearLateConnections closes, after a grace, the UDP sockets sipgo
// opened after its transport was closed. sipgo (v1.7.3) handles each
// message read in a goroutine of its own; one that still writes after
// the transport's pool was cleared (an ACK to a retransmitted 200) finds
// no connection and opens a new socket on our freed port, read by a
// goroutine nothing ends (seen once in CI as a goroutine leak).
func clearLateConnections(tl *sipgox.TransportLayer) {
	time.Sleep(lateWriteGrace)
	_ = tl.Pool("udp").Clear()
}

func (ua *UA) isClosed() bool {
	ua.mu.Lock()
	defer ua.mu.Unlock()
	return ua.closed
}

func (ua *UA) addDialog(d *Dialog) error {
	ua.mu.Lock()
	defer ua.mu.Unlock()
	if ua.closed {
		return ErrClosed
	}
	if _, ok := ua.dialogs[d.callID]; ok {
		return ErrDuplicateCallID
	}
	ua.dialogs[d.callID] = d
	return nil
}

func (ua *UA) removeDialog(d *Dialog) {
	ua.mu.Lock()
	if ua.dialogs[d.callID] == d {
		delete(ua.dialogs, d.callID)
	}
	ua.mu.Unlock()
}

func (ua *UA) findDialog(callID string) *Dialog {
	ua.mu.Lock()
	defer ua.mu.Unlock()
	return ua.dialogs[callID]
}

// --- request building -------------------------------------------------

func (ua *UA) client(transport string) (*sipgo.Client, error) {
	c, ok := ua.clients[transport]
	if !ok {
		return nil, paramErr("Transport", transport+" is not available (TLS needs Config.TLSConfig)")
	}
	return c, nil
}

func (ua *UA) viaPort(transport string) int {
	if ua.cfg.PublicPort != 0 {
		return ua.cfg.PublicPort
	}
	return ua.ports[transport]
}

func (ua *UA) newVia(transport string) *sipgox.ViaHeader {
	v := &sipgox.ViaHeader{
		ProtocolName:    "SIP",
		ProtocolVersion: "2.0",
		Transport:       sipgox.NetworkToUpper(transport),
		Host:            ua.publicHost,
		Port:            ua.viaPort(transport),
		Params:          sipgox.NewParams(),
	}
	v.Params.Add("branch", sipgox.GenerateBranch())
	v.Params.Add("rport", "")
	return v
}

func (ua *UA) contactURI(user, transport string) sipgox.Uri {
	u := sipgox.Uri{Scheme: "sip", User: user, Host: ua.publicHost, Port: ua.viaPort(transport)}
	if transport == "tls" {
		u.Scheme = "sips"
	}
	if transport != "udp" {
		u.UriParams = sipgox.NewParams()
		u.UriParams.Add("transport", transport)
	}
	return u
}

// prepare sets the fields every outgoing request needs: transport, local
// address, destination, and the UA's fixed headers.
func (ua *UA) prepare(req *sipgox.Request, transport, dest string) {
	req.SetTransport(sipgox.NetworkToUpper(transport))
	if transport == "udp" {
		ua.udpLaddr.Copy(&req.Laddr)
	}
	req.SetDestination(dest)
	if req.GetHeader("User-Agent") == nil {
		req.AppendHeader(sipgox.NewHeader("User-Agent", ua.cfg.UserAgent))
	}
	if req.MaxForwards() == nil {
		mf := sipgox.MaxForwardsHeader(70)
		req.AppendHeader(&mf)
	}
}

// goRequest runs f in the background with a context that Close cancels
// (bounded by CleanupTimeout); Close waits for it.
func (ua *UA) goRequest(f func(ctx context.Context)) {
	ua.mu.Lock()
	if ua.closed {
		ua.mu.Unlock()
		return
	}
	ua.reqWG.Add(1)
	ua.mu.Unlock()
	go func() {
		defer ua.reqWG.Done()
		ctx, cancel := context.WithTimeout(ua.ctx, ua.cfg.CleanupTimeout)
		defer cancel()
		f(ctx)
	}()
}

func noBuild(*sipgo.Client, *sipgox.Request) error { return nil }

// credentials for digest authentication.
type credentials struct {
	user, password string
	scope          authScope // where they may be sent
}

func (c *credentials) ok() bool { return c != nil && c.user != "" }

// do runs a non-INVITE transaction to its final answer, answering one 401
// and one 407 challenge with creds. A transaction timeout (or no final
// answer within TransactionTimeout) yields a 408 *StatusError.
func (ua *UA) do(ctx context.Context, req *sipgox.Request, transport string, creds *credentials) (*sipgox.Response, error) {
	cl, err := ua.client(transport)
	if err != nil {
		return nil, err
	}
	if ua.ctx.Err() != nil {
		return nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, ua.cfg.TransactionTimeout)
	defer cancel()
	tx, err := cl.TransactionRequest(ctx, req, noBuild)
	if err != nil {
		return nil, fmt.Errorf("sip: send %s: %w", req.Method, err)
	}
	challenged := map[int]bool{}
	for {
		res, err := waitFinal(ctx, tx, nil)
		tx.Terminate()
		if err != nil {
			return nil, timeoutError(string(req.Method), err)
		}
		if (res.StatusCode == 401 || res.StatusCode == 407) && creds.ok() && !challenged[res.StatusCode] {
			if err := creds.scope.check(ctx, string(req.Method), req.Destination(), res); err != nil {
				return nil, err
			}
			challenged[res.StatusCode] = true
			tx, err = cl.TransactionDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: creds.user, Password: creds.password})
			if err != nil {
				return nil, fmt.Errorf("sip: %s digest auth: %w", req.Method, err)
			}
			continue
		}
		return res, nil
	}
}

// waitFinal returns the first final response of tx; provisional responses
// go to onProvisional.
func waitFinal(ctx context.Context, tx sipgox.ClientTransaction, onProvisional func(*sipgox.Response)) (*sipgox.Response, error) {
	for {
		select {
		case res := <-tx.Responses():
			if res.IsProvisional() {
				if onProvisional != nil {
					onProvisional(res)
				}
				continue
			}
			return res, nil
		case <-tx.Done():
			if err := tx.Err(); err != nil {
				return nil, err
			}
			return nil, sipgox.ErrTransactionTerminated
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// timeoutError maps transaction failures to a 408 *StatusError when they
// are timeouts; other errors are wrapped as they are.
func timeoutError(method string, err error) error {
	if errors.Is(err, sipgox.ErrTransactionTimeout) || errors.Is(err, context.DeadlineExceeded) {
		return &StatusError{Method: method, Code: 408, Reason: "Request Timeout", Err: err}
	}
	return fmt.Errorf("sip: %s: %w", method, err)
}

func statusError(method string, res *sipgox.Response) error {
	return &StatusError{Method: method, Code: res.StatusCode, Reason: res.Reason}
}

// destination returns "host:port" for a URI (default port by transport).
func destination(u sipgox.Uri, transport string) string {
	port := u.Port
	if port == 0 {
		port = 5060
		if transport == "tls" {
			port = 5061
		}
	}
	return net.JoinHostPort(trimBrackets(u.Host), strconv.Itoa(port))
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}
