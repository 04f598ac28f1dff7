package siptest

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// RegisterRequest says where and as whom Peer.Register registers the peer.
type RegisterRequest struct {
	// Registrar is the registrar's host:port (an IP address). Required.
	Registrar string
	// User is the address-of-record's user part and the digest user name.
	// Empty means Config.User.
	User string
	// Password answers a 401/407 challenge. Empty means none.
	Password string
	// Expires is the requested lifetime. Zero means one hour; a negative
	// value unREGISTERs (Expires: 0).
	Expires time.Duration
}

// Register registers the peer's Contact with a registrar (a kamailio in an
// interop test, or another Peer), so that calls routed by it reach the
// peer. It answers one digest challenge and returns an error unless the
// registrar answers 2xx. It does not refresh the registration.
func (p *Peer) Register(ctx context.Context, r RegisterRequest) error {
	host, port, err := net.SplitHostPort(r.Registrar)
	if err != nil {
		return fmt.Errorf("siptest: Registrar: %w", err)
	}
	pn, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("siptest: Registrar port: %w", err)
	}
	user := r.User
	if user == "" {
		user = p.cfg.User
	}
	expires := 3600
	switch {
	case r.Expires < 0:
		expires = 0
	case r.Expires > 0:
		expires = int(r.Expires / time.Second)
	}
	recipient := sip.Uri{Scheme: "sip", Host: host, Port: pn}
	if p.transport != "udp" {
		recipient.UriParams = sip.NewParams()
		recipient.UriParams.Add("transport", p.transport)
	}
	req := sip.NewRequest(sip.REGISTER, recipient)
	aor := sip.Uri{Scheme: "sip", User: user, Host: host}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", randomTag())
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor})
	contact := p.contact()
	contact.Address.User = user
	req.AppendHeader(contact)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	req.SetTransport(p.transport)
	if !p.enter() {
		return ErrClosed
	}
	defer p.wg.Done()
	res, err := p.client.Do(ctx, req)
	if err != nil {
		return fmt.Errorf("siptest: REGISTER: %w", err)
	}
	if (res.StatusCode == 401 || res.StatusCode == 407) && r.Password != "" {
		res, err = p.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: r.Password})
		if err != nil {
			return fmt.Errorf("siptest: REGISTER: %w", err)
		}
	}
	if res.StatusCode < 200 || res.StatusCode >= 300 {
		return fmt.Errorf("siptest: REGISTER answered %d %s", res.StatusCode, res.Reason)
	}
	return nil
}
