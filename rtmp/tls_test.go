package rtmp

import (
	"context"
	"crypto/tls"
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
)

// TestRTMPS publishes over TLS to our Server. The URL names a host that
// does not resolve; the Dial hook connects to the loopback server, so the
// test shows that SNI and verification use the URL's host name.
func TestRTMPS(t *testing.T) {
	cert := testenv.SelfSigned(t, "live.example.test")
	sni := make(chan string, 1)
	s, addr := startServer(t, ServerConfig{TLSConfig: &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			select {
			case sni <- h.ServerName:
			default:
			}
			return nil, nil
		},
		Certificates: []tls.Certificate{cert.Certificate},
	}})
	ctx := testCtx(t)
	sub := s.Subscribe("app", "key", 0)
	defer sub.Close()
	var dialed string
	c, err := Dial(ctx, "rtmps://live.example.test/app/key", ClientConfig{
		TLSConfig: &tls.Config{RootCAs: cert.Pool},
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
