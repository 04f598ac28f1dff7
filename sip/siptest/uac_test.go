package siptest

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip/sdp"
)

// testUAC is a minimal caller built directly on sipgo, so that siptest is
// tested without sipstream's own user agent.
type testUAC struct {
	t       *testing.T
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	client  *sipgo.Client
	dialogs *sipgo.DialogClientCache
	udp     net.PacketConn
	tcp     net.Listener
	served  chan struct{}
	port    int

	audio, video *mediaSocket

	mu        sync.Mutex
	stopping  atomic.Bool
	byes      chan string
	reinvites chan string // SDP of re-INVITEs received
	infos     chan string // bodies of INFOs received
}

// mediaSocket is an RTP socket pair of the caller.
type mediaSocket struct {
	rtp, rtcp *net.UDPConn
}

func newMediaSocket(t *testing.T) *mediaSocket {
	r, rc, err := allocPair(netip.MustParseAddr("127.0.0.1"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(); _ = rc.Close() })
	return &mediaSocket{rtp: r, rtcp: rc}
}

func (m *mediaSocket) port() int { return m.rtp.LocalAddr().(*net.UDPAddr).Port }

func newUAC(t *testing.T, transport string) *testUAC {
	t.Helper()
	u := &testUAC{t: t, served: make(chan struct{}), byes: make(chan string, 8), reinvites: make(chan string, 8), infos: make(chan string, 8)}
	var err error
	u.ua, err = sipgo.NewUA(sipgo.WithUserAgent("siptest-uac"), sipgo.WithUserAgentHostname("127.0.0.1"),
		sipgo.WithUserAgenTLSConfig(testClientTLS(t)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(func(_ sip.TransportReadProps, b []byte) ([]byte, error) {
			if u.stopping.Load() {
				return nil, nil
			}
			return b, nil
		})))
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	u.srv, err = sipgo.NewServer(u.ua, sipgo.WithServerLogger(logger))
	require.NoError(t, err)
	opts := []sipgo.ClientOption{sipgo.WithClientHostname("127.0.0.1"), sipgo.WithClientLogger(logger)}
	if transport == "tcp" || transport == "tls" {
		u.tcp, err = net.Listen("tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		u.port = u.tcp.Addr().(*net.TCPAddr).Port
		if transport == "tls" {
			u.tcp = tls.NewListener(u.tcp, testServerTLS(t))
		}
	} else {
		u.udp, err = net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		u.port = u.udp.LocalAddr().(*net.UDPAddr).Port
		opts = append(opts, sipgo.WithClientConnectionAddr("127.0.0.1:"+strconv.Itoa(u.port)))
	}
	u.client, err = sipgo.NewClient(u.ua, opts...)
	require.NoError(t, err)
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "caller", Host: "127.0.0.1", Port: u.port}}
	if transport != "udp" {
		contact.Address.UriParams = sip.NewParams()
		contact.Address.UriParams.Add("transport", transport)
	}
	u.dialogs = sipgo.NewDialogClientCache(u.client, contact)
	u.srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = u.dialogs.ReadBye(req, tx)
		u.byes <- req.CallID().Value()
	})
	u.srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		// A re-INVITE from the peer: answer it like a phone would.
		ans, _, err := sdp.Answer(req.Body(), sdp.OfferConfig{Addr: netip.MustParseAddr("127.0.0.1"),
			Audio: &sdp.MediaConfig{Port: u.audio.port()}, Video: &sdp.MediaConfig{Port: u.video.port()}})
		if err != nil {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
			return
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", ans)
		res.AppendHeader(&contact)
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		_ = tx.Respond(res)
		u.reinvites <- string(req.Body())
	})
	u.srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {})
	u.srv.OnInfo(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		u.infos <- string(req.Body())
	})
	go func() {
		defer close(u.served)
		switch {
		case u.udp != nil:
			_ = u.srv.ServeUDP(u.udp)
		case transport == "tls":
			_ = u.srv.ServeTLS(u.tcp)
		default:
			_ = u.srv.ServeTCP(u.tcp)
		}
	}()
	if u.udp != nil {
		waitServing(u.ua.TransportLayer(), "127.0.0.1:"+strconv.Itoa(u.port))
	}
	u.audio = newMediaSocket(t)
	u.video = newMediaSocket(t)
	t.Cleanup(u.close)
	return u
}

func (u *testUAC) close() {
	u.stopping.Store(true)
	time.Sleep(closeGrace)
	if u.udp != nil {
		_ = u.udp.Close()
	}
	if u.tcp != nil {
		_ = u.tcp.Close()
	}
	<-u.served
	_ = u.ua.Close()
}

// offer returns an SDP offer for the caller's media sockets.
func (u *testUAC) offer(video bool) *sdp.Offer {
	cfg := sdp.OfferConfig{Addr: netip.MustParseAddr("127.0.0.1"), Audio: &sdp.MediaConfig{Port: u.audio.port()}}
	if video {
		cfg.Video = &sdp.MediaConfig{Port: u.video.port(), Feedback: true}
	}
	o, err := sdp.NewOffer(cfg)
	require.NoError(u.t, err)
	return o
}

// call places a call and acknowledges the answer.
func (u *testUAC) call(ctx context.Context, uri string, body []byte, opts sipgo.AnswerOptions, headers ...sip.Header) (*sipgo.DialogClientSession, error) {
	var recipient sip.Uri
	if err := sip.ParseUri(uri, &recipient); err != nil {
		return nil, err
	}
	headers = append(headers, sip.NewHeader("Content-Type", "application/sdp"))
	d, err := u.dialogs.Invite(ctx, recipient, body, headers...)
	if err != nil {
		return nil, err
	}
	if err := d.WaitAnswer(ctx, opts); err != nil {
		_ = d.Close()
		return nil, err
	}
	if err := d.Ack(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// statusOf returns the SIP status of a failed WaitAnswer, or 0.
func statusOf(err error) int {
	var e *sipgo.ErrDialogResponse
	if errors.As(err, &e) {
		return e.Res.StatusCode
	}
	var e2 sipgo.ErrDialogResponse
	if errors.As(err, &e2) {
		return e2.Res.StatusCode
	}
	return 0
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newPeer(t *testing.T, cfg Config) *Peer {
	t.Helper()
	p, err := NewPeer(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

var _ = media.KindAudio

// testCerts holds each test's certificate, so that its server and client
// sides (testServerTLS, testClientTLS) agree.
var testCerts sync.Map // *testing.T -> testenv.Cert

// testCertificate returns the test's self-signed certificate for
// 127.0.0.1, made on first use.
func testCertificate(t *testing.T) testenv.Cert {
	if c, ok := testCerts.Load(t); ok {
		return c.(testenv.Cert)
	}
	c := testenv.SelfSigned(t)
	testCerts.Store(t, c)
	t.Cleanup(func() { testCerts.Delete(t) })
	return c
}

func testServerTLS(t *testing.T) *tls.Config { return testCertificate(t).ServerConfig() }

func testClientTLS(t *testing.T) *tls.Config { return testCertificate(t).ClientConfig() }
