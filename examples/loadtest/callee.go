package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// calleeIP is where the callee's SIP, RTP and RTMP listen.
const calleeIP = "127.0.0.1"

// loadUA is the load peer's SIP user agent, on one UDP socket: as the
// callee it answers every INVITE with 200 OK and streams the call's media
// from the shared sender once the ACK arrives; as the caller (caller.go) it
// places calls with the same A/V offer and streams once they are answered.
// A BYE from the gateway stops a call's media either way.
type loadUA struct {
	snd    *sender
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	dialog sipgo.DialogUA // the caller's INVITEs
	conn   net.PacketConn
	port   int
	done   chan struct{}

	mu    sync.Mutex
	calls map[string]*uaCall // by Call-ID
}

// uaCall is one call of the load peer, answered or placed.
type uaCall struct {
	c      *sendCall
	tag    string // our To tag (answered calls)
	answer []byte // our SDP: the answer, or the offer of a placed call
	acked  bool
	dlg    *sipgo.DialogClientSession // placed calls
}

func newLoadUA(snd *sender) (*loadUA, error) {
	conn, err := net.ListenPacket("udp4", calleeIP+":0")
	if err != nil {
		return nil, err
	}
	u := &loadUA{snd: snd, conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port, calls: map[string]*uaCall{}, done: make(chan struct{})}
	logger := slog.New(slog.DiscardHandler)
	u.ua, err = sipgo.NewUA(sipgo.WithUserAgent("sipstream-loadtest"), sipgo.WithUserAgentHostname(calleeIP))
	if err == nil {
		u.srv, err = sipgo.NewServer(u.ua, sipgo.WithServerLogger(logger))
	}
	if err == nil {
		// Requests go out from the listening socket (found in sipgo's
		// connection pool by this address), so that the gateway answers
		// and sends its BYE there.
		u.client, err = sipgo.NewClient(u.ua, sipgo.WithClientHostname(calleeIP), sipgo.WithClientLogger(logger),
			sipgo.WithClientConnectionAddr(u.addr()))
	}
	if err != nil {
		conn.Close()
		if u.ua != nil {
			_ = u.ua.Close()
		}
		return nil, err
	}
	u.dialog = sipgo.DialogUA{Client: u.client, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "load", Host: calleeIP, Port: u.port}}}
	u.srv.OnInvite(u.onInvite)
	u.srv.OnAck(u.onAck)
	u.srv.OnBye(u.onBye)
	u.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {}) // answered at once: nothing to cancel
	go func() {
		defer close(u.done)
		_ = u.srv.ServeUDP(conn)
	}()
	u.waitServing()
	return u, nil
}

// waitServing waits until sipgo's transport layer holds the listening
// socket, so that the client's requests find it (WithClientConnectionAddr).
func (u *loadUA) waitServing() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := u.ua.TransportLayer().GetConnection("udp", u.addr()); err == nil && c != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (u *loadUA) addr() string { return net.JoinHostPort(calleeIP, strconv.Itoa(u.port)) }

func (u *loadUA) close() {
	_ = u.conn.Close()
	<-u.done
	_ = u.ua.Close()
}

func (u *loadUA) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	id := req.CallID()
	if id == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	u.mu.Lock()
	uc := u.calls[id.Value()]
	u.mu.Unlock()
	if uc != nil { // re-INVITE or retransmission: same answer
		u.respondOK(uc, req, tx)
		return
	}
	o, err := parseOffer(req.Body())
	if err != nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	ap, vp := u.snd.ports()
	c := u.snd.newCall(net.UDPAddrFromAddrPort(o.AudioAddr), net.UDPAddrFromAddrPort(o.VideoAddr), o.AudioPT, o.VideoPT)
	uc = &uaCall{c: c, tag: strconv.FormatUint(uint64(rand32()), 16), answer: answerSDP(calleeIP, uint64(rand32()), ap, vp, o.AudioPT, o.VideoPT)}
	u.mu.Lock()
	u.calls[id.Value()] = uc
	u.mu.Unlock()
	u.respondOK(uc, req, tx)
}

func (u *loadUA) respondOK(uc *uaCall, req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 200, "OK", uc.answer)
	if to := res.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", uc.tag)
	}
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "load", Host: calleeIP, Port: u.port}})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	_ = tx.Respond(res)
}

func (u *loadUA) onAck(req *sip.Request, tx sip.ServerTransaction) {
	id := req.CallID()
	if id == nil {
		return
	}
	u.mu.Lock()
	uc := u.calls[id.Value()]
	start := uc != nil && !uc.acked
	if start {
		uc.acked = true
	}
	u.mu.Unlock()
	if start {
		u.snd.start(uc.c)
	}
}

func (u *loadUA) onBye(req *sip.Request, tx sip.ServerTransaction) {
	id := req.CallID()
	var uc *uaCall
	if id != nil {
		u.mu.Lock()
		uc = u.calls[id.Value()]
		delete(u.calls, id.Value())
		u.mu.Unlock()
	}
	if uc == nil {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	if uc.c != nil { // nil: a call we place, not answered yet
		uc.c.stopped.Store(true)
	}
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	if uc.dlg != nil {
		_ = uc.dlg.Close()
	}
}

// calleeHello is the child's first line on stdout.
type calleeHello struct {
	SIP  string `json:"sip"`
	RTMP string `json:"rtmp"`
}

// command is one line the parent writes to the child's stdin. Seq is
// echoed in the reply: call, hangup and flood run concurrently with the
// other commands, so replies may come out of order.
type command struct {
	Seq    int64      `json:"seq"`
	Cmd    string     `json:"cmd"` // round, measure, stats, phase, stream, stopall, call, hangup; flood (the flooder)
	Video  string     `json:"video,omitempty"`
	Audio  string     `json:"audio,omitempty"`
	Record string     `json:"record,omitempty"` // round: FLV file for the round's first stream
	Target string     `json:"target,omitempty"` // call: the SIP URI to call
	ID     string     `json:"id,omitempty"`     // call, hangup: the Call-ID
	Flood  *floodSpec `json:"flood,omitempty"`
}

// reply is the child's answer, one line on stdout.
type reply struct {
	Seq   int64        `json:"seq"`
	Err   string       `json:"err,omitempty"`
	Idx   int          `json:"idx,omitempty"`
	Stats *recvStats   `json:"stats,omitempty"`
	Phase *phaseStats  `json:"phase,omitempty"`
	Flood *floodResult `json:"flood,omitempty"`
}

// runCallee is the child process (roles callee and caller): SIP user
// agent, media sender and RTMP receiver in one process, driven by JSON
// lines on in until it ends. rtmpAddr is where the receiver listens
// ("": a free loopback port).
func runCallee(in io.Reader, out io.Writer, mtu int, rtmpAddr string) error {
	cl, err := loadClip(clipH264, mtu)
	if err != nil {
		return err
	}
	snd, err := newSender(cl, calleeIP)
	if err != nil {
		return err
	}
	defer snd.close()
	rcv, err := newReceiver(snd, rtmpAddr)
	if err != nil {
		return err
	}
	defer rcv.close()
	u, err := newLoadUA(snd)
	if err != nil {
		return err
	}
	defer u.close()
	var encMu sync.Mutex
	enc := json.NewEncoder(out)
	if err := enc.Encode(calleeHello{SIP: u.addr(), RTMP: rcv.addr()}); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait() // before the UA, receiver and sender close
	defer cancel()
	var writeErr error
	send := func(rep reply) {
		encMu.Lock()
		defer encMu.Unlock()
		if err := enc.Encode(rep); err != nil && writeErr == nil {
			writeErr = err
		}
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var cmd command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			send(reply{Err: err.Error()})
			continue
		}
		switch cmd.Cmd {
		case "call", "hangup":
			wg.Add(1)
			go func() {
				defer wg.Done()
				rep := handleAsync(ctx, cmd, u)
				rep.Seq = cmd.Seq
				send(rep)
			}()
		default:
			rep := handleCommand(cmd, snd, rcv)
			rep.Seq = cmd.Seq
			send(rep)
		}
	}
	cancel()
	wg.Wait()
	encMu.Lock()
	defer encMu.Unlock()
	return errors.Join(sc.Err(), writeErr)
}

// handleAsync runs the commands that wait on the network.
func handleAsync(ctx context.Context, cmd command, u *loadUA) reply {
	switch cmd.Cmd {
	case "call":
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		idx, err := u.call(ctx, cmd.Target, cmd.ID)
		if err != nil {
			return reply{Err: err.Error()}
		}
		return reply{Idx: idx}
	case "hangup":
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := u.hangup(ctx, cmd.ID); err != nil {
			return reply{Err: err.Error()}
		}
	}
	return reply{}
}

func handleCommand(cmd command, snd *sender, rcv *receiver) reply {
	switch cmd.Cmd {
	case "round":
		snd.stopAll()
		rcv.reset(cmd.Record)
	case "measure":
		rcv.startMeasure()
	case "stats":
		st := rcv.stats()
		return reply{Stats: &st}
	case "phase":
		ph := rcv.phase()
		return reply{Phase: &ph}
	case "stopall":
		snd.stopAll()
	case "stream":
		v, err1 := net.ResolveUDPAddr("udp4", cmd.Video)
		a, err2 := net.ResolveUDPAddr("udp4", cmd.Audio)
		if err := errors.Join(err1, err2); err != nil {
			return reply{Err: err.Error()}
		}
		c := snd.newCall(a, v, 8, ffmpegPT)
		snd.start(c)
		return reply{Idx: c.idx}
	default:
		return reply{Err: fmt.Sprintf("unknown command %q", cmd.Cmd)}
	}
	return reply{}
}
