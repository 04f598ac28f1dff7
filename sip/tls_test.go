package sip

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sipstream test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestInviteTLS(t *testing.T) {
	cert, pool := selfSigned(t)
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
