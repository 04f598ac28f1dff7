package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// calleeIP is where the callee's SIP, RTP and RTMP listen.
const calleeIP = "127.0.0.1"

// uas answers every INVITE with 200 OK and streams the call's media from
// the shared sender once the ACK arrives; BYE stops it.
type uas struct {
	snd  *sender
	ua   *sipgo.UserAgent
	srv  *sipgo.Server
	conn net.PacketConn
	port int
	done chan struct{}

	mu    sync.Mutex
	calls map[string]*uasCall // by Call-ID
}

type uasCall struct {
	c      *sendCall
	tag    string // our To tag
	answer []byte
	acked  bool
}

func newUAS(snd *sender) (*uas, error) {
	conn, err := net.ListenPacket("udp4", calleeIP+":0")
	if err != nil {
		return nil, err
	}
	u := &uas{snd: snd, conn: conn, port: conn.LocalAddr().(*net.UDPAddr).Port, calls: map[string]*uasCall{}, done: make(chan struct{})}
	logger := slog.New(slog.DiscardHandler)
	u.ua, err = sipgo.NewUA(sipgo.WithUserAgent("sipstream-loadtest"), sipgo.WithUserAgentHostname(calleeIP))
	if err == nil {
		u.srv, err = sipgo.NewServer(u.ua, sipgo.WithServerLogger(logger))
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	u.srv.OnInvite(u.onInvite)
	u.srv.OnAck(u.onAck)
	u.srv.OnBye(u.onBye)
	u.srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {}) // answered at once: nothing to cancel
	go func() {
		defer close(u.done)
		_ = u.srv.ServeUDP(conn)
	}()
	return u, nil
}

func (u *uas) addr() string { return net.JoinHostPort(calleeIP, strconv.Itoa(u.port)) }

func (u *uas) close() {
	_ = u.conn.Close()
	<-u.done
	_ = u.ua.Close()
}

func (u *uas) onInvite(req *sip.Request, tx sip.ServerTransaction) {
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
	uc = &uasCall{c: c, tag: strconv.FormatUint(uint64(rand32()), 16), answer: answerSDP(calleeIP, uint64(rand32()), ap, vp, o.AudioPT, o.VideoPT)}
	u.mu.Lock()
	u.calls[id.Value()] = uc
	u.mu.Unlock()
	u.respondOK(uc, req, tx)
}

func (u *uas) respondOK(uc *uasCall, req *sip.Request, tx sip.ServerTransaction) {
	res := sip.NewResponseFromRequest(req, 200, "OK", uc.answer)
	if to := res.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", uc.tag)
	}
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "load", Host: calleeIP, Port: u.port}})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	_ = tx.Respond(res)
}

func (u *uas) onAck(req *sip.Request, tx sip.ServerTransaction) {
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

func (u *uas) onBye(req *sip.Request, tx sip.ServerTransaction) {
	id := req.CallID()
	var uc *uasCall
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
	uc.c.stopped.Store(true)
	_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
}

// calleeHello is the callee's first line on stdout.
type calleeHello struct {
	SIP  string `json:"sip"`
	RTMP string `json:"rtmp"`
}

// command is one line the parent writes to the callee's stdin.
type command struct {
	Cmd    string `json:"cmd"` // round, measure, stats, stream, stopall
	Video  string `json:"video,omitempty"`
	Audio  string `json:"audio,omitempty"`
	Record string `json:"record,omitempty"` // round: FLV file for the round's first stream
}

// reply is the callee's answer, one line on stdout.
type reply struct {
	Err   string     `json:"err,omitempty"`
	Idx   int        `json:"idx,omitempty"`
	Stats *recvStats `json:"stats,omitempty"`
}

// runCallee is the callee role: SIP UAS, media sender and RTMP receiver in
// one process, driven by JSON lines on in until it ends.
func runCallee(in io.Reader, out io.Writer, mtu int) error {
	cl, err := loadClip(clipH264, mtu)
	if err != nil {
		return err
	}
	snd, err := newSender(cl, calleeIP)
	if err != nil {
		return err
	}
	defer snd.close()
	rcv, err := newReceiver(snd)
	if err != nil {
		return err
	}
	defer rcv.close()
	u, err := newUAS(snd)
	if err != nil {
		return err
	}
	defer u.close()
	enc := json.NewEncoder(out)
	if err := enc.Encode(calleeHello{SIP: u.addr(), RTMP: rcv.addr()}); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var cmd command
		var rep reply
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			rep.Err = err.Error()
		} else {
			rep = handleCommand(cmd, snd, rcv)
		}
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	return sc.Err()
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
