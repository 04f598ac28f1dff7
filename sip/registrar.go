package sip

import (
	"errors"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
)

// RegistrarConfig configures UA.ServeRegistrar.
type RegistrarConfig struct {
	// Auth challenges every REGISTER; required.
	Auth *Authenticator
	// MinExpires is the shortest registration granted; a shorter one asked
	// for gets 423 Interval Too Brief with Min-Expires. Zero means 60 s.
	MinExpires time.Duration
	// MaxExpires is the longest registration granted (longer requests are
	// shortened). Zero means 3600 s.
	MaxExpires time.Duration
	// MaxBindings caps the bindings kept in total; further new bindings get
	// 503 Service Unavailable. Zero means 1000.
	MaxBindings int
	// OnChange is called when a binding is added or refreshed (removed
	// false) or removed or expired (removed true); from the UA's
	// goroutines, never with a lock held; must not block.
	OnChange func(b Binding, removed bool)
}

// Binding is a contact registered to our Registrar.
type Binding struct {
	User      string         // the authenticated user (the To user)
	Contact   string         // the Contact URI as registered
	Source    netip.AddrPort // where the REGISTER came from
	Transport string         // "udp", "tcp" or "tls"
	Expires   time.Time      // when the binding lapses unless refreshed
	UserAgent string         // the REGISTER's User-Agent, may be empty
}

// Registrar makes the UA a registrar for the Authenticator's users (trunks,
// phones that register to the gateway): REGISTER is challenged, then
// bindings are kept in memory with their expiry and answered 200 with the
// current Contacts. Safe for concurrent use.
//
// A REGISTER with the Call-ID of a binding and a CSeq not above the one
// that last updated it (a late or replayed one) is refused with 500 (RFC
// 3261 §10.3 step 7). q values are ignored, and only users of its own
// Authenticator are served (the To user must be the authenticated user,
// else 403).
type Registrar struct {
	ua  *UA
	cfg RegistrarConfig

	mu       sync.Mutex
	bindings map[string]map[string]*binding // user → contact URI → binding
	count    int
}

// binding is a Binding with the REGISTER that last updated it.
type binding struct {
	Binding
	callID string
	cseq   uint32
}

// Registrar limits and defaults.
const (
	defaultMinExpires  = 60 * time.Second
	defaultMaxExpires  = 3600 * time.Second
	defaultMaxBindings = 1000
	// maxContactsPerRegister bounds the contacts one REGISTER may carry.
	maxContactsPerRegister = 20
)

// errRegistrarSet: ServeRegistrar was called twice on one UA.
var errRegistrarSet = errors.New("sip: the UA already serves a registrar")

// ServeRegistrar makes the UA answer REGISTER as a registrar (RFC 3261
// §10.3). Without it, REGISTER gets 405 Method Not Allowed. One Registrar
// per UA; it lives until the UA closes.
func (ua *UA) ServeRegistrar(cfg RegistrarConfig) (*Registrar, error) {
	if cfg.Auth == nil {
		return nil, paramErr("Auth", "a registrar needs an Authenticator")
	}
	if cfg.MinExpires < 0 || cfg.MaxExpires < 0 || cfg.MaxBindings < 0 {
		return nil, paramErr("RegistrarConfig", "negative limit")
	}
	if cfg.MinExpires == 0 {
		cfg.MinExpires = defaultMinExpires
	}
	if cfg.MaxExpires == 0 {
		cfg.MaxExpires = defaultMaxExpires
	}
	if cfg.MaxBindings == 0 {
		cfg.MaxBindings = defaultMaxBindings
	}
	if cfg.MinExpires < time.Second || cfg.MaxExpires < cfg.MinExpires {
		return nil, paramErr("MaxExpires", "want 1 s <= MinExpires <= MaxExpires")
	}
	r := &Registrar{ua: ua, cfg: cfg, bindings: map[string]map[string]*binding{}}
	ua.mu.Lock()
	defer ua.mu.Unlock()
	if ua.closed {
		return nil, ErrClosed
	}
	if ua.registrar != nil {
		return nil, errRegistrarSet
	}
	ua.registrar = r
	ua.wg.Add(1)
	go r.sweepLoop()
	return r, nil
}

// Bindings returns the live bindings, sorted by user (then contact).
func (r *Registrar) Bindings() []Binding {
	now := time.Now()
	r.mu.Lock()
	var out []Binding
	for _, m := range r.bindings {
		for _, b := range m {
			if b.Expires.After(now) {
				out = append(out, b.Binding)
			}
		}
	}
	r.mu.Unlock()
	sortBindings(out)
	return out
}

// Lookup returns the live bindings of user.
func (r *Registrar) Lookup(user string) []Binding {
	now := time.Now()
	r.mu.Lock()
	var out []Binding
	for _, b := range r.bindings[user] {
		if b.Expires.After(now) {
			out = append(out, b.Binding)
		}
	}
	r.mu.Unlock()
	sortBindings(out)
	return out
}

func sortBindings(bs []Binding) {
	sort.Slice(bs, func(i, j int) bool {
		if bs[i].User != bs[j].User {
			return bs[i].User < bs[j].User
		}
		return bs[i].Contact < bs[j].Contact
	})
}

// sweepLoop removes expired bindings every second until the UA closes.
func (r *Registrar) sweepLoop() {
	defer r.ua.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.ua.closing:
			return
		case now := <-t.C:
			r.notify(r.sweep(now), true)
		}
	}
}

func (r *Registrar) sweep(now time.Time) []Binding {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []Binding
	for user, m := range r.bindings {
		for c, b := range m {
			if !b.Expires.After(now) {
				gone = append(gone, b.Binding)
				delete(m, c)
				r.count--
			}
		}
		if len(m) == 0 {
			delete(r.bindings, user)
		}
	}
	return gone
}

func (r *Registrar) notify(bs []Binding, removed bool) {
	if r.cfg.OnChange == nil {
		return
	}
	for _, b := range bs {
		r.cfg.OnChange(b, removed)
	}
}

// regContact is one Contact of a REGISTER.
type regContact struct {
	uri     string
	expires int // seconds; -1: not given
}

// parseRegisterContacts reads the Contact values and Expires of a
// REGISTER: star reports "Contact: *"; expires are seconds with the
// Expires header (or 3600, RFC 3261 §10.2.1.1) filled in where a contact
// has no expires parameter.
func parseRegisterContacts(values []string, expiresHeader string) (contacts []regContact, star bool, err error) {
	def := 3600
	if v := strings.TrimSpace(expiresHeader); v != "" {
		n, err := parseDeltaSeconds(v)
		if err != nil {
			return nil, false, errors.New("bad Expires")
		}
		def = n
	}
	for _, v := range values {
		for _, part := range splitHeaderList(v) {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			if part == "*" {
				star = true
				continue
			}
			var u sipgox.Uri
			params := sipgox.NewParams()
			if _, err := sipgox.ParseAddressValue(part, &u, &params); err != nil {
				return nil, false, errors.New("bad Contact")
			}
			if s := strings.ToLower(u.Scheme); s != "sip" && s != "sips" {
				return nil, false, errors.New("bad Contact scheme")
			}
			if u.Host == "" {
				return nil, false, errors.New("bad Contact host")
			}
			c := regContact{uri: u.String(), expires: def}
			if hasCtlOrSpace(c.uri) {
				return nil, false, errors.New("bad Contact")
			}
			if e, ok := params.Get("expires"); ok {
				n, err := parseDeltaSeconds(e)
				if err != nil {
					return nil, false, errors.New("bad Contact expires")
				}
				c.expires = n
			}
			contacts = append(contacts, c)
			if len(contacts) > maxContactsPerRegister {
				return nil, false, errors.New("too many Contacts")
			}
		}
	}
	if star && (len(contacts) > 0 || def != 0 || strings.TrimSpace(expiresHeader) == "") {
		return nil, false, errors.New("Contact: * needs Expires: 0 and no other Contact")
	}
	return contacts, star, nil
}

// hasCtlOrSpace reports whether s holds a control character or a space
// (none may appear unescaped in a SIP URI; found by FuzzRegisterContacts).
func hasCtlOrSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// parseDeltaSeconds reads RFC 3261's delta-seconds, capping huge values.
func parseDeltaSeconds(s string) (int, error) {
	if s == "" || len(s) > 10 {
		if len(s) > 10 && strings.Trim(s, "0123456789") == "" {
			return 1 << 31, nil
		}
		return 0, errors.New("bad delta-seconds")
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, errors.New("bad delta-seconds")
		}
	}
	return strconv.Atoi(s)
}

// handleRegister serves an out-of-dialog REGISTER (sipgo's goroutine).
func (ua *UA) handleRegister(req *sipgox.Request, tx sipgox.ServerTransaction) {
	ua.mu.Lock()
	r := ua.registrar
	ua.mu.Unlock()
	if r == nil {
		respond(tx, req, 405, "Method Not Allowed", nil, sipgox.NewHeader("Allow", allowedMethods))
		return
	}
	r.serve(req, tx)
}

func (r *Registrar) serve(req *sipgox.Request, tx sipgox.ServerTransaction) {
	if req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		respond(tx, req, 400, "Missing From, To, Call-ID or CSeq", nil)
		return
	}
	var src netip.AddrPort
	if ap, err := netip.ParseAddrPort(req.Source()); err == nil {
		src = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	user, res, err := r.cfg.Auth.authenticate(req, src.Addr())
	if err != nil {
		r.ua.log.Info("sip: REGISTER not authenticated", "status", res.StatusCode, "source", src.String())
		_ = tx.Respond(res)
		return
	}
	if req.To().Address.User != user {
		r.ua.log.Info("sip: REGISTER for another user refused", "user", user, "source", src.String())
		respond(tx, req, 403, "Forbidden", nil)
		return
	}
	var values []string
	for _, h := range req.GetHeaders("Contact") {
		values = append(values, h.Value())
	}
	expiresHeader := ""
	if h := req.GetHeader("Expires"); h != nil {
		expiresHeader = h.Value()
	}
	contacts, star, err := parseRegisterContacts(values, expiresHeader)
	if err != nil {
		respond(tx, req, 400, err.Error(), nil)
		return
	}
	minSecs := int(r.cfg.MinExpires / time.Second)
	for _, c := range contacts {
		if c.expires > 0 && c.expires < minSecs {
			respond(tx, req, 423, "Interval Too Brief", nil, sipgox.NewHeader("Min-Expires", strconv.Itoa(minSecs)))
			return
		}
	}
	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
	}
	now := time.Now()
	maxSecs := int(r.cfg.MaxExpires / time.Second)
	callID, cseq := req.CallID().Value(), req.CSeq().SeqNo
	r.mu.Lock()
	mine := r.bindings[user]
	var added, removed []Binding
	switch {
	case star:
		for c, b := range mine {
			removed = append(removed, b.Binding)
			delete(mine, c)
			r.count--
		}
	default:
		fresh := 0
		for _, c := range contacts {
			b, ok := mine[c.uri]
			if !ok && c.expires > 0 {
				fresh++
			}
			if ok && b.callID == callID && cseq <= b.cseq {
				r.mu.Unlock()
				respond(tx, req, 500, "Server Internal Error", nil) // RFC 3261 §10.3 step 7
				return
			}
		}
		if fresh > 0 && r.count+fresh > r.cfg.MaxBindings {
			r.mu.Unlock()
			r.ua.log.Warn("sip: registrar full", "bindings", r.cfg.MaxBindings)
			respond(tx, req, 503, "Service Unavailable", nil, sipgox.NewHeader("Retry-After", "60"))
			return
		}
		for _, c := range contacts {
			b, ok := mine[c.uri]
			if c.expires == 0 {
				if ok {
					removed = append(removed, b.Binding)
					delete(mine, c.uri)
					r.count--
				}
				continue
			}
			if !ok {
				if mine == nil {
					mine = map[string]*binding{}
					r.bindings[user] = mine
				}
				b = &binding{Binding: Binding{User: user, Contact: c.uri}}
				mine[c.uri] = b
				r.count++
			}
			b.Source = src
			b.Transport = strings.ToLower(req.Transport())
			b.UserAgent = ua
			b.Expires = now.Add(time.Duration(min(c.expires, maxSecs)) * time.Second)
			b.callID, b.cseq = callID, cseq
			added = append(added, b.Binding)
		}
	}
	if len(mine) == 0 {
		delete(r.bindings, user)
	}
	res = sipgox.NewResponseFromRequest(req, 200, "OK", nil)
	for _, b := range mine {
		if !b.Expires.After(now) {
			continue
		}
		var u sipgox.Uri
		if sipgox.ParseUri(b.Contact, &u) != nil {
			continue
		}
		ch := &sipgox.ContactHeader{Address: u, Params: sipgox.NewParams()}
		ch.Params.Add("expires", strconv.Itoa(int((b.Expires.Sub(now)+time.Second/2)/time.Second)))
		res.AppendHeader(ch)
	}
	r.mu.Unlock()
	res.AppendHeader(sipgox.NewHeader("Date", now.UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT")))
	_ = tx.Respond(res)
	r.ua.log.Info("sip: REGISTER", "user", user, "source", src.String(), "bound", len(added), "removed", len(removed))
	r.notify(removed, true)
	r.notify(added, false)
}
