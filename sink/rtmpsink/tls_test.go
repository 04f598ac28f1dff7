package rtmpsink_test

import (
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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/rtmpsink"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sipstream test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}, pool
}

func TestPublishRTMPS(t *testing.T) {
	cert, pool := selfSigned(t)
	srv, err := rtmp.NewServer(rtmp.ServerConfig{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(l) }()
	defer func() {
		require.NoError(t, srv.Close())
		<-served
	}()
	sub := srv.Subscribe("rtmp", streamKey, 4096)
	defer sub.Close()

	st := newStatuses()
	s, err := rtmpsink.New(rtmpsink.Config{
		URL: "rtmps://" + l.Addr().String() + "/rtmp", StreamName: streamKey, Audio: true, Video: true,
		TLSConfig: &tls.Config{RootCAs: pool}, OnStatus: st.on,
	})
	require.NoError(t, err)
	f := sink.NewFanout(sink.FanoutConfig{})
	require.NoError(t, f.Add("rtmps", s, 1<<16))
	stop := make(chan struct{})
	done := pump(f, &source{}, time.Millisecond, stop)
	tags := collect(t, sub, 30)
	close(stop)
	<-done
	require.NoError(t, f.Close())
	checkStart(t, tags)
	assert.Equal(t, []rtmpsink.Status{rtmpsink.StatusWait, rtmpsink.StatusActive}, st.get())
}

func TestRTMPSUntrustedCertificateFails(t *testing.T) {
	cert, _ := selfSigned(t)
	srv, err := rtmp.NewServer(rtmp.ServerConfig{TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(l) }()
	defer func() {
		require.NoError(t, srv.Close())
		<-served
	}()
	st := newStatuses()
	s, err := rtmpsink.New(rtmpsink.Config{
		URL: "rtmps://" + l.Addr().String() + "/rtmp/" + streamKey, Audio: true,
		OnStatus: st.on, BackoffMin: 10 * time.Millisecond, GiveUpAfter: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	defer s.Close()
	require.Eventually(t, func() bool { return s.Status() == rtmpsink.StatusFailed }, 20*time.Second, 5*time.Millisecond)
	st.mu.Lock()
	reason := st.reasons[len(st.reasons)-1]
	st.mu.Unlock()
	assert.Contains(t, reason, "certificate")
	assert.NotContains(t, reason, streamKey)
}
