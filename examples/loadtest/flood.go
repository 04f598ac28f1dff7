package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The INVITE flood (issue 17: "a flood of 10,000 INVITEs from random
// sources leaves the live calls unharmed"): the child sends INVITEs
// without credentials, each from one of Sources UDP sockets bound to
// random addresses of 127.0.0.0/8 (all local on Linux), to the gateway's
// SIP port, and counts the answers. It behaves as a UAC transaction over
// UDP would (RFC 3261 §17.1.1): an INVITE without any answer is sent again
// after 500 ms, then 1 s, 2 s, 4 s, 4 s… until 32 s, and a final answer
// is acknowledged (ACK for 3xx-6xx; ACK then BYE for a 2xx, which a
// flood must never get).

// runFlooder is the flooder child ("-role flooder"): a process of its own,
// so that neither the gateway nor the load peer and its RTMP receiver
// share a process with the flood. It answers "flood" commands, one at a
// time, until in ends.
func runFlooder(in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	if err := enc.Encode(calleeHello{}); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var cmd command
		rep := reply{}
		switch err := json.Unmarshal(sc.Bytes(), &cmd); {
		case err != nil:
			rep.Err = err.Error()
		case cmd.Cmd != "flood" || cmd.Flood == nil:
			rep.Err = fmt.Sprintf("flooder: unknown command %q", cmd.Cmd)
		default:
			res, err := runFlood(context.Background(), *cmd.Flood)
			if err != nil {
				rep.Err = err.Error()
			}
			rep.Flood = res
		}
		rep.Seq = cmd.Seq
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	return sc.Err()
}

// floodSpec is what the parent asks for.
type floodSpec struct {
	Target  string        `json:"target"`  // gateway SIP address, host:port (UDP)
	Count   int           `json:"count"`   // INVITEs (retransmissions not counted)
	Rate    float64       `json:"rate"`    // INVITEs per second; 0: as fast as one goroutine can
	Sources int           `json:"sources"` // source addresses (one socket each); 0: min(Count, 2000)
	Wait    time.Duration `json:"wait"`    // how long after the last INVITE to wait for answers; 0: 10 s
	NoAck   bool          `json:"no_ack"`  // do not acknowledge final answers (an attacker's way: the gateway retransmits them)
}

// floodResult is what the flood saw.
type floodResult struct {
	Sent        int            `json:"sent"`        // INVITEs
	Retransmits int            `json:"retransmits"` // INVITEs sent again for want of any answer
	Sources     int            `json:"sources"`     // distinct source addresses used
	ByStatus    map[string]int `json:"by_status"`   // final answers by status code
	Provisional int            `json:"provisional"` // INVITEs that got a 1xx
	Unanswered  int            `json:"unanswered"`  // INVITEs without a final answer at the end
	SendS       float64        `json:"send_s"`      // first to last INVITE
	RateSent    float64        `json:"rate_sent"`   // INVITEs per second achieved
	DurationS   float64        `json:"duration_s"`  // first INVITE to the last final answer
	AnswerP50   float64        `json:"answer_p50_ms"`
	AnswerMax   float64        `json:"answer_max_ms"`
	SendErrors  int            `json:"send_errors"`
	FirstError  string         `json:"first_error,omitempty"`
	Malformed   int            `json:"malformed"` // datagrams that were not a SIP response to us
	// RcvbufErrors is how many UDP datagrams the machine's kernel dropped
	// for a full socket receive buffer while the flood ran (all sockets
	// of all processes, /proc/net/snmp; -1 unknown): a gateway whose
	// socket overflows loses INVITEs before it reads them, and every
	// retransmission wave of a burst overflows it again.
	RcvbufErrors int64 `json:"rcvbuf_errors"`
}

// floodInvite is the state of one INVITE of the flood.
type floodInvite struct {
	sock     int // index into the sockets
	msg      []byte
	sent     time.Time // first sent
	last     time.Time // last (re)sent
	interval time.Duration
	prov     bool
	final    int // status code, 0 before
	answered time.Time
}

// floodSources returns n distinct addresses of 127.0.0.0/8 other than
// 127.0.0.1 (the address a gateway may allow), none ending in .0 or .255.
func floodSources(n int) []netip.Addr {
	seen := map[netip.Addr]bool{netip.AddrFrom4([4]byte{127, 0, 0, 1}): true}
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		r := rand32()
		a := netip.AddrFrom4([4]byte{127, byte(r >> 16), byte(r >> 8), byte(r)})
		if byte(r) == 0 || byte(r) == 255 || seen[a] {
			continue
		}
		seen[a] = true
		out = append(out, a)
	}
	return out
}

// floodRequest is the i-th INVITE of a flood: a complete one with an A/V
// offer and no credentials, from src to target.
func floodRequest(run string, i int, src netip.AddrPort, target string, branch string) []byte {
	sdp := answerSDP(src.Addr().String(), uint64(i), 4000, 4002, 8, callerPT)
	var b strings.Builder
	fmt.Fprintf(&b, "INVITE sip:flood%d@%s SIP/2.0\r\n", i, target)
	fmt.Fprintf(&b, "Via: SIP/2.0/UDP %s;branch=%s;rport\r\n", src, branch)
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "From: <sip:stranger%d@%s>;tag=f%d\r\n", i, src.Addr(), i)
	fmt.Fprintf(&b, "To: <sip:flood%d@%s>\r\n", i, target)
	fmt.Fprintf(&b, "Call-ID: %s\r\n", floodCallID(run, i))
	b.WriteString("CSeq: 1 INVITE\r\n")
	fmt.Fprintf(&b, "Contact: <sip:stranger%d@%s>\r\n", i, src)
	b.WriteString("User-Agent: sipstream-loadtest-flood\r\n")
	b.WriteString("Content-Type: application/sdp\r\n")
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(sdp))
	b.Write(sdp)
	return []byte(b.String())
}

func floodCallID(run string, i int) string { return "flood-" + run + "-" + strconv.Itoa(i) }

// floodAnswer is what the flood reads from a response.
type floodAnswer struct {
	index  int    // the INVITE's index, from the Call-ID
	code   int    // status code
	method string // CSeq method
	to     string // To header value (with the gateway's tag)
	via    string // top Via value
	from   string
	callID string
	ruri   string // Contact URI of a 2xx
}

// parseFloodAnswer parses a datagram the gateway sent to a flood socket:
// a SIP response to one of run's requests.
func parseFloodAnswer(run string, b []byte) (floodAnswer, error) {
	msg, err := sip.ParseMessage(b)
	if err != nil {
		return floodAnswer{}, err
	}
	res, ok := msg.(*sip.Response)
	if !ok {
		return floodAnswer{}, errors.New("not a response")
	}
	cid, cseq, to, from, via := res.CallID(), res.CSeq(), res.To(), res.From(), res.Via()
	if cid == nil || cseq == nil || to == nil || from == nil || via == nil {
		return floodAnswer{}, errors.New("response without Call-ID, CSeq, To, From or Via")
	}
	num, ok := strings.CutPrefix(cid.Value(), "flood-"+run+"-")
	if !ok {
		return floodAnswer{}, fmt.Errorf("Call-ID %q is not the flood's", cid.Value())
	}
	i, err := strconv.Atoi(num)
	if err != nil || i < 0 || strconv.Itoa(i) != num {
		return floodAnswer{}, fmt.Errorf("Call-ID %q is not the flood's", cid.Value())
	}
	if res.StatusCode < 100 || res.StatusCode > 699 {
		return floodAnswer{}, fmt.Errorf("status %d", res.StatusCode)
	}
	a := floodAnswer{index: i, code: res.StatusCode, method: string(cseq.MethodName), to: to.Value(), from: from.Value(),
		via: via.Value(), callID: cid.Value()}
	if ct := res.Contact(); ct != nil {
		a.ruri = ct.Address.String()
	}
	return a, nil
}

// ackFor is the ACK of a 3xx-6xx answer (RFC 3261 §17.1.1.3: the
// INVITE's Request-URI, Via, From, Call-ID, and the answer's To).
func ackFor(a floodAnswer, ruri string) []byte {
	return []byte(fmt.Sprintf("ACK %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
		ruri, a.via, a.from, a.to, a.callID))
}

// ackByeFor acknowledges a 2xx (a new transaction to the Contact) and
// ends the call at once.
func ackByeFor(a floodAnswer, src netip.AddrPort, ruri string) [][]byte {
	if a.ruri != "" {
		ruri = a.ruri
	}
	msg := func(method string, seq int) []byte {
		return []byte(fmt.Sprintf("%s %s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK%s%d\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n",
			method, ruri, src, strings.ToLower(method), rand32(), a.from, a.to, a.callID, seq, method))
	}
	return [][]byte{msg("ACK", 1), msg("BYE", 2)}
}

// runFlood sends the flood and waits for its answers (or spec.Wait after
// the last INVITE, or ctx).
func runFlood(ctx context.Context, spec floodSpec) (*floodResult, error) {
	dst, err := net.ResolveUDPAddr("udp4", spec.Target)
	if err != nil {
		return nil, fmt.Errorf("flood target: %w", err)
	}
	switch {
	case spec.Count < 1:
		return nil, errors.New("flood: count must be at least 1")
	case spec.Rate < 0 || spec.Sources < 0 || spec.Wait < 0:
		return nil, errors.New("flood: rate, sources and wait must not be negative")
	}
	if spec.Sources == 0 {
		spec.Sources = min(spec.Count, 2000)
	}
	spec.Sources = min(spec.Sources, spec.Count)
	if spec.Wait == 0 {
		spec.Wait = 10 * time.Second
	}
	run := strconv.FormatUint(uint64(rand32()), 36)
	target := dst.String()

	socks := make([]*net.UDPConn, 0, spec.Sources)
	closeAll := func() {
		for _, s := range socks {
			s.Close()
		}
	}
	for _, a := range floodSources(spec.Sources) {
		s, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 0)))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("flood: bind %s: %w (%d sockets open)", a, err, len(socks))
		}
		_ = s.SetReadBuffer(256 << 10)
		socks = append(socks, s)
	}
	srcs := make([]netip.AddrPort, len(socks))
	for i, s := range socks {
		srcs[i] = s.LocalAddr().(*net.UDPAddr).AddrPort()
	}

	drops0, dropsErr := udpRcvbufErrors()
	f := &flood{spec: spec, run: run, dst: dst, target: target, socks: socks, srcs: srcs,
		invites: make([]floodInvite, spec.Count), res: &floodResult{Sources: len(socks), ByStatus: map[string]int{}}}
	var wg sync.WaitGroup
	for i := range socks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f.read(i)
		}()
	}
	f.send(ctx)
	f.wait(ctx)
	closeAll()
	wg.Wait()
	res := f.result()
	res.RcvbufErrors = -1
	if drops1, err := udpRcvbufErrors(); err == nil && dropsErr == nil {
		res.RcvbufErrors = int64(drops1 - drops0)
	}
	return res, nil
}

// flood is one run of runFlood.
type flood struct {
	spec   floodSpec
	run    string
	dst    *net.UDPAddr
	target string
	socks  []*net.UDPConn
	srcs   []netip.AddrPort

	mu      sync.Mutex
	invites []floodInvite
	sentN   int // INVITEs sent so far (first sends)
	res     *floodResult
	t0, t1  time.Time // first and last first-send
	pending atomic.Int64
}

// send sends every INVITE once, paced by spec.Rate, from one goroutine.
func (f *flood) send(ctx context.Context) {
	f.t0 = time.Now()
	for i := range f.invites {
		if ctx.Err() != nil {
			break
		}
		if f.spec.Rate > 0 {
			if d := time.Until(f.t0.Add(time.Duration(float64(i) / f.spec.Rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		sock := i % len(f.socks)
		msg := floodRequest(f.run, i, f.srcs[sock], f.target, "z9hG4bKfl"+f.run+strconv.Itoa(i))
		now := time.Now()
		f.mu.Lock()
		f.invites[i] = floodInvite{sock: sock, msg: msg, sent: now, last: now, interval: sip.T1}
		f.sentN = i + 1
		f.mu.Unlock()
		f.pending.Add(1)
		f.write(sock, msg)
	}
	f.t1 = time.Now()
}

func (f *flood) write(sock int, msg []byte) {
	if _, err := f.socks[sock].WriteToUDP(msg, f.dst); err != nil {
		f.mu.Lock()
		f.res.SendErrors++
		if f.res.FirstError == "" {
			f.res.FirstError = err.Error()
		}
		f.mu.Unlock()
	}
}

// wait retransmits INVITEs without any answer and returns when every
// INVITE has its final answer, spec.Wait after the last INVITE, or when
// ctx ends.
func (f *flood) wait(ctx context.Context) {
	deadline := f.t1.Add(f.spec.Wait)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for f.pending.Load() > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		var resend []int
		f.mu.Lock()
		for i := range f.invites[:f.sentN] {
			in := &f.invites[i]
			if in.final == 0 && !in.prov && now.Sub(in.last) >= in.interval && now.Sub(in.sent) < 64*sip.T1 {
				in.last = now
				in.interval = min(2*in.interval, sip.T2)
				resend = append(resend, i)
			}
		}
		f.res.Retransmits += len(resend)
		f.mu.Unlock()
		for _, i := range resend {
			f.write(f.invites[i].sock, f.invites[i].msg)
		}
	}
}

// read handles what the gateway sends to socket sock until it is closed.
func (f *flood) read(sock int) {
	buf := make([]byte, 65535)
	c := f.socks[sock]
	for {
		n, _, err := c.ReadFromUDP(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		a, err := parseFloodAnswer(f.run, buf[:n])
		if err != nil || a.index >= len(f.invites) {
			f.mu.Lock()
			f.res.Malformed++
			f.mu.Unlock()
			continue
		}
		if a.method != string(sip.INVITE) {
			continue // the answer to our BYE
		}
		f.mu.Lock()
		in := &f.invites[a.index]
		valid := in.msg != nil && in.sock == sock
		first := valid && a.code >= 200 && in.final == 0
		if valid && a.code < 200 {
			in.prov = true
		}
		if first {
			in.final, in.answered = a.code, time.Now()
		}
		f.mu.Unlock()
		if !valid {
			f.mu.Lock()
			f.res.Malformed++
			f.mu.Unlock()
			continue
		}
		if first {
			f.pending.Add(-1)
		}
		if a.code < 200 || f.spec.NoAck {
			continue
		}
		// Every final answer, retransmissions included, is acknowledged.
		ruri := fmt.Sprintf("sip:flood%d@%s", a.index, f.target)
		if a.code < 300 {
			for _, m := range ackByeFor(a, f.srcs[sock], ruri) {
				f.write(sock, m)
			}
			continue
		}
		f.write(sock, ackFor(a, ruri))
	}
}

func (f *flood) result() *floodResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.res
	r.Sent = f.sentN
	r.SendS = f.t1.Sub(f.t0).Seconds()
	if r.SendS > 0 {
		r.RateSent = float64(r.Sent) / r.SendS
	}
	var lat []float64
	var last time.Time
	for _, in := range f.invites[:f.sentN] {
		if in.prov {
			r.Provisional++
		}
		if in.final == 0 {
			r.Unanswered++
			continue
		}
		r.ByStatus[strconv.Itoa(in.final)]++
		lat = append(lat, float64(in.answered.Sub(in.sent))/1e6)
		if in.answered.After(last) {
			last = in.answered
		}
	}
	if !last.IsZero() {
		r.DurationS = last.Sub(f.t0).Seconds()
	}
	d := summarize(lat)
	r.AnswerP50, r.AnswerMax = d.Median, d.Max
	return r
}
