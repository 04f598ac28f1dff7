package rtmp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type testCert struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// selfSigned makes a self-signed certificate for host.
func selfSigned(t *testing.T, host string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	c, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return testCert{cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool: pool}
}

// TestRTMPS publishes over TLS to our Server. The URL names a host that
// does not resolve; the Dial hook connects to the loopback server, so the
// test shows that SNI and verification use the URL's host name.
func TestRTMPS(t *testing.T) {
	cert := selfSigned(t, "live.example.test")
	sni := make(chan string, 1)
	s, addr := startServer(t, ServerConfig{TLSConfig: &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			select {
			case sni <- h.ServerName:
			default:
			}
			return nil, nil
		},
		Certificates: []tls.Certificate{cert.cert},
	}})
	ctx := testCtx(t)
	sub := s.Subscribe("app", "key", 0)
	defer sub.Close()
	var dialed string
	c, err := Dial(ctx, "rtmps://live.example.test/app/key", ClientConfig{
		TLSConfig: &tls.Config{RootCAs: cert.pool},
		Dial: func(ctx context.Context, network, a string) (net.Conn, error) {
			dialed = a
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	require.NoError(t, err)
	require.Equal(t, "live.example.test:443", dialed, "rtmps default port")
	require.Equal(t, "live.example.test", <-sni)
	require.NoError(t, c.WriteG711(0, true, []byte{1, 2}))
	require.NoError(t, c.Close())
	tags := readTags(t, ctx, sub)
	require.Len(t, tags, 1)

	// A client that does not trust the certificate fails in the TLS
	// handshake.
	_, err = Dial(ctx, "rtmps://live.example.test/app/key2", ClientConfig{
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	require.ErrorContains(t, err, "TLS handshake")
}
