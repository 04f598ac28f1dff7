package callmgr

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/sip/siptest"
)

// TestSIPTransports places calls over TCP and TLS (CallParams.SIPTransport,
// Config.SIPTLSConfig) with the real stack.
func TestSIPTransports(t *testing.T) {
	cert := testenv.SelfSigned(t)
	for _, tr := range []string{"tcp", "tls"} {
		t.Run(tr, func(t *testing.T) {
			peer, err := siptest.NewPeer(siptest.Config{Transport: tr,
				TLSConfig: cert.ServerConfig()})
			require.NoError(t, err)
			defer peer.Close()
			m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 25000, RTPPortMax: 25999,
				SIPTLSConfig: cert.ClientConfig()})
			require.NoError(t, err)
			defer m.Close(context.Background())
			ctx := ctxT(t)
			c, err := m.StartCall(ctx, CallParams{CallID: "tr-" + tr, Callee: peer.URI(), SIPTransport: tr})
			require.NoError(t, err)
			require.NoError(t, c.WaitEstablished(ctx))
			pc, err := peer.WaitCall(ctx)
			require.NoError(t, err)
			require.NoError(t, c.SendDTMF(ctx, "7", DTMFInfo))
			d, err := pc.WaitDTMF(ctx, 1)
			require.NoError(t, err)
			assert.Equal(t, "7", d)
			require.NoError(t, c.Terminate(ctx))
			require.NoError(t, pc.WaitBye(ctx))
			assert.Equal(t, StatusFinish, c.Info().Status)
		})
	}
}

// TestListenAllInterfaces: ":0" listens on all IPv4 interfaces (UDP and
// TCP on one port) and Close releases it.
func TestListenAllInterfaces(t *testing.T) {
	m, err := New(Config{ListenAddr: ":0", PublicIP: netip.MustParseAddr("127.0.0.1"), RTPPortMin: 28000, RTPPortMax: 28099})
	require.NoError(t, err)
	port := m.ListenPort("udp")
	assert.NotZero(t, port)
	assert.Equal(t, port, m.ListenPort("tcp"))
	require.NoError(t, m.Close(context.Background()))
	l, err := net.ListenPacket("udp4", net.JoinHostPort("0.0.0.0", strconv.Itoa(port)))
	require.NoError(t, err, "port released")
	l.Close()
}
