package sip

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgox "github.com/emiago/sipgo/sip"
)

// testPeer is a small scripted SIP UAS/registrar/proxy stand-in built on
// sipgo's server side, used until sip/siptest is available.
type testPeer struct {
	t    testing.TB
	sua  *sipgo.UserAgent
	srv  *sipgo.Server
	cli  *sipgo.Client
	udp  net.PacketConn
	tcp  net.Listener
	port int
	wg   sync.WaitGroup

	// onInvite scripts the answer to an out-of-dialog INVITE; nil answers 200.
	onInvite func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction)
	// onRequest, when set, handles every other request (return false to fall back).
	onRequest func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) bool

	mu       sync.Mutex
	reqs     []*sipgox.Request
	notify   chan struct{}
	invite   *sipgox.Request  // last initial INVITE
	answered *sipgox.Response // our 200 to it
	cseq     uint32

	// dropOptions makes the peer deaf to OPTIONS (a vanished peer), at the
	// transport so no server transaction is ever created.
	dropOptions atomic.Bool
	closing     atomic.Bool
}

func (p *testPeer) readFilter(_ sipgox.TransportReadProps, data []byte) ([]byte, error) {
	if p.closing.Load() || p.dropOptions.Load() && bytes.HasPrefix(data, []byte("OPTIONS ")) {
		return nil, nil
	}
	return data, nil
}

const peerSDP = "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n"

const ourSDP = "v=0\r\no=us 7 7 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"

func newTestPeer(t testing.TB) *testPeer {
	t.Helper()
	p := &testPeer{t: t, notify: make(chan struct{}, 1), cseq: 100}
	var err error
	for i := 0; i < 20; i++ {
		p.udp, err = net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p.port = p.udp.LocalAddr().(*net.UDPAddr).Port
		p.tcp, err = net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(p.port))
		if err == nil {
			break
		}
		p.udp.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	p.sua, err = sipgo.NewUA(sipgo.WithUserAgent("testpeer"),
		sipgo.WithUserAgentTransactionLayerOptions(sipgox.WithTransactionLayerLogger(log)),
		sipgo.WithUserAgentTransportLayerOptions(sipgox.WithTransportLayerLogger(log),
			sipgox.WithTransportLayerReadFilter(p.readFilter)))
	if err != nil {
		t.Fatal(err)
	}
	p.srv, _ = sipgo.NewServer(p.sua, sipgo.WithServerLogger(log))
	p.cli, _ = sipgo.NewClient(p.sua, sipgo.WithClientLogger(log), sipgo.WithClientHostname("127.0.0.1"),
		sipgo.WithClientConnectionAddr(p.addr()))
	for _, m := range []sipgox.RequestMethod{sipgox.INVITE, sipgox.ACK, sipgox.BYE, sipgox.CANCEL, sipgox.INFO,
		sipgox.OPTIONS, sipgox.UPDATE, sipgox.REGISTER, sipgox.REFER, sipgox.NOTIFY} {
		p.srv.OnRequest(m, p.handle)
	}
	p.wg.Add(2)
	go func() { defer p.wg.Done(); _ = p.srv.ServeUDP(p.udp) }()
	go func() { defer p.wg.Done(); _ = p.srv.ServeTCP(p.tcp) }()
	t.Cleanup(p.close)
	if err := waitListening(p.sua.TransportLayer(), p.addr()); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *testPeer) close() {
	// Go deaf, let handlers already spawned finish, then tear down: sipgo
	// creates a fresh UDP socket for a request handled after its pool was
	// cleared, and nothing would close it.
	p.closing.Store(true)
	time.Sleep(100 * time.Millisecond)
	p.udp.Close()
	p.tcp.Close()
	p.wg.Wait()
	p.sua.Close()
}

func (p *testPeer) setInvite(f func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction)) {
	p.mu.Lock()
	p.onInvite = f
	p.mu.Unlock()
}

func (p *testPeer) setRequest(f func(p *testPeer, req *sipgox.Request, tx sipgox.ServerTransaction) bool) {
	p.mu.Lock()
	p.onRequest = f
	p.mu.Unlock()
}

func (p *testPeer) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// record notes a request the peer received.
func (p *testPeer) record(req *sipgox.Request) {
	p.mu.Lock()
	p.reqs = append(p.reqs, req)
	if req.IsInvite() && toTag(req) == "" {
		p.invite = req
	}
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

func (p *testPeer) handle(req *sipgox.Request, tx sipgox.ServerTransaction) {
	p.record(req)
	p.mu.Lock()
	onInvite, onRequest := p.onInvite, p.onRequest
	p.mu.Unlock()
	if onRequest != nil && onRequest(p, req, tx) {
		return
	}
	switch {
	case req.IsAck():
	case req.IsInvite() && toTag(req) == "":
		if onInvite != nil {
			onInvite(p, req, tx)
		} else {
			p.answer(req, tx)
		}
	case req.IsInvite():
		res := sipgox.NewResponseFromRequest(req, 200, "OK", []byte(peerSDP))
		res.AppendHeader(sipgox.NewHeader("Content-Type", "application/sdp"))
		res.AppendHeader(&sipgox.ContactHeader{Address: sipgox.Uri{Scheme: "sip", User: "peer", Host: "127.0.0.1", Port: p.port}})
		_ = tx.Respond(res)
	default:
		_ = tx.Respond(sipgox.NewResponseFromRequest(req, 200, "OK", nil))
	}
}

// answer rings then answers with peerSDP; extra headers go on the 200.
func (p *testPeer) answer(req *sipgox.Request, tx sipgox.ServerTransaction, extra ...sipgox.Header) {
	ring := sipgox.NewResponseFromRequest(req, 180, "Ringing", nil)
	_ = tx.Respond(ring)
	tag, _ := ring.To().Params.Get("tag")
	time.Sleep(100 * time.Millisecond) // sipgo handles responses concurrently: keep 180 before 200
	res := sipgox.NewResponseFromRequest(req, 200, "OK", []byte(peerSDP))
	res.To().Params.Add("tag", tag)
	res.AppendHeader(sipgox.NewHeader("Content-Type", "application/sdp"))
	hasContact := false
	for _, h := range extra {
		if h.Name() == "Contact" {
			hasContact = true
		}
		res.AppendHeader(h)
	}
	if !hasContact {
		res.AppendHeader(&sipgox.ContactHeader{Address: sipgox.Uri{Scheme: "sip", User: "peer", Host: "127.0.0.1", Port: p.port}})
	}
	p.mu.Lock()
	p.answered = res
	p.mu.Unlock()
	_ = tx.Respond(res)
}

// waitReq returns the n-th (1-based) request of method, waiting up to 10 s.
func (p *testPeer) waitReq(method sipgox.RequestMethod, n int) *sipgox.Request {
	p.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		k := 0
		for _, r := range p.reqs {
			if r.Method == method {
				k++
				if k == n {
					p.mu.Unlock()
					return r
				}
			}
		}
		p.mu.Unlock()
		select {
		case <-p.notify:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			p.t.Fatalf("peer: no %s #%d within 10 s", method, n)
			return nil
		}
	}
}

func (p *testPeer) count(method sipgox.RequestMethod) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := 0
	for _, r := range p.reqs {
		if r.Method == method {
			k++
		}
	}
	return k
}

// inDialog sends a request inside the dialog the last INVITE created.
func (p *testPeer) inDialog(ctx context.Context, method sipgox.RequestMethod, ct string, body []byte, hdrs ...sipgox.Header) (*sipgox.Response, error) {
	p.mu.Lock()
	inv, ans := p.invite, p.answered
	p.cseq++
	seq := p.cseq
	p.mu.Unlock()
	if inv == nil || ans == nil {
		return nil, fmt.Errorf("no dialog")
	}
	req := sipgox.NewRequest(method, inv.Contact().Address)
	from := ans.To().AsFrom()
	req.AppendHeader(&from)
	to := inv.From().AsTo()
	req.AppendHeader(&to)
	req.AppendHeader(sipgox.HeaderClone(inv.CallID()))
	req.AppendHeader(&sipgox.CSeqHeader{SeqNo: seq, MethodName: method})
	req.AppendHeader(&sipgox.ContactHeader{Address: sipgox.Uri{Scheme: "sip", User: "peer", Host: "127.0.0.1", Port: p.port}})
	if ct != "" {
		req.AppendHeader(sipgox.NewHeader("Content-Type", ct))
	}
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	req.SetBody(body)
	req.SetTransport(inv.Transport())
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if method == sipgox.INVITE && res.IsSuccess() {
		ack := sipgox.NewRequest(sipgox.ACK, inv.Contact().Address)
		ack.AppendHeader(&from)
		ack.AppendHeader(&to)
		ack.AppendHeader(sipgox.HeaderClone(inv.CallID()))
		ack.AppendHeader(&sipgox.CSeqHeader{SeqNo: seq, MethodName: sipgox.ACK})
		ack.SetTransport(inv.Transport())
		if err := p.cli.WriteRequest(ack); err != nil {
			return res, err
		}
	}
	return res, nil
}
