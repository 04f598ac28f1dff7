package sip

import (
	"crypto/tls"
	"net"
	"strconv"
	"testing"

	sipgox "github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
)

func TestInviteTLS(t *testing.T) {
	tc := testenv.SelfSigned(t)
	cert, pool := tc.Certificate, tc.Pool
	p := newTestPeer(t)
	l, err := tls.Listen("tcp4", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	require.NoError(t, err)
	p.wg.Add(1)
	go func() { defer p.wg.Done(); _ = p.srv.ServeTLS(l) }()
	t.Cleanup(func() { l.Close() })
	tlsPort := l.Addr().(*net.TCPAddr).Port
	p.setInvite(func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) {
		u := sipgox.Uri{Scheme: "sips", User: "peer", Host: "127.0.0.1", Port: tlsPort, UriParams: sipgox.NewParams()}
		u.UriParams.Add("transport", "tls")
		p.answer(req, tx, &sipgox.ContactHeader{Address: u})
	})

	ua := newTestUA(t, func(c *Config) {
		c.TLSConfig = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}
	})
	require.NotZero(t, ua.ListenPort("tls"))
	d, err := ua.Invite(testCtx(t), InviteRequest{
		Callee: "sip:bob@127.0.0.1:" + strconv.Itoa(tlsPort), From: "alice", Transport: "tls", Offer: []byte(ourSDP),
	})
	require.NoError(t, err)
	inv := p.waitReq(sipgox.INVITE, 1)
	assert.Equal(t, "TLS", inv.Via().Transport)
	assert.Equal(t, "sips", inv.Contact().Address.Scheme)
	assert.Equal(t, ua.ListenPort("tls"), inv.Contact().Address.Port)
	require.NoError(t, d.Bye(testCtx(t)))
	p.waitReq(sipgox.BYE, 1)

	// An untrusted server fails the call with a transport error, not a hang.
	ua2 := newTestUA(t, func(c *Config) { c.TLSConfig = &tls.Config{} })
	_, err = ua2.Invite(testCtx(t), InviteRequest{
		Callee: "sip:bob@127.0.0.1:" + strconv.Itoa(tlsPort), From: "alice", Transport: "tls", Offer: []byte(ourSDP),
	})
	require.Error(t, err)
}
