package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sink/whep"
)

// gateway is the system under test: sipstream in this process, or a
// running examples/restserver driven over its REST API.
type gateway interface {
	// start places call id to the callee and returns once it is answered.
	start(ctx context.Context, id string) error
	// active returns how many of ids publish (RTMP ACTIVE), or -1 when
	// the gateway cannot say.
	active(ids []string) int
	// stats returns the packets lost and late of the calls ids, ok false
	// when the gateway cannot say.
	stats(ids []string) (lost, late uint64, ok bool)
	// stop hangs up call id and waits until it is over.
	stop(ctx context.Context, id string) error
	// cpu returns the gateway's CPU time so far (seconds).
	cpu() (float64, error)
	// rss returns the gateway's resident memory (bytes), after a garbage
	// collection when the gateway is in this process.
	rss() (int64, error)
	// goroutines returns the gateway's goroutine count, -1 when unknown.
	goroutines() int
	// heap returns the gateway's live heap after a garbage collection
	// (bytes), 0 when unknown.
	heap() int64
	// mem returns what the gateway's memory is made of, nil when unknown.
	mem() *memBreakdown
	// fds returns the gateway's open file descriptors, -1 when unknown.
	fds() int

	// Incoming calls (placed by the load caller):

	// sipAddr returns the gateway's SIP address (host:port, UDP).
	sipAddr() string
	// adopt waits until the gateway answered the incoming call id (its
	// SIP Call-ID) and it is established, and follows it from then on.
	adopt(ctx context.Context, id string) error
	// awaitEnd waits until call id is over (the caller hung up).
	awaitEnd(ctx context.Context, id string) error
	// incoming returns the gateway's incoming INVITEs by result so far,
	// nil when it cannot say.
	incoming() map[string]uint64
	close()
}

// memBreakdown is what a Go process's resident memory is made of
// (runtime.MemStats after a garbage collection), MB.
type memBreakdown struct {
	HeapInuse   float64 `json:"heap_inuse_mb"`   // spans holding objects (live heap plus their free slots)
	HeapIdle    float64 `json:"heap_idle_mb"`    // free spans not yet returned to the OS
	StackInuse  float64 `json:"stack_inuse_mb"`  // goroutine stacks
	RuntimeMeta float64 `json:"runtime_meta_mb"` // span, cache and GC metadata, profiling buckets, other runtime
	Threads     int     `json:"threads"`         // OS threads (Go never ends them)
	TotalSys    float64 `json:"runtime_sys_mb"`  // all the runtime obtained from the OS (virtual, not resident)
}

// inProcess is a callmgr.Manager in this process.
type inProcess struct {
	m        *callmgr.Manager
	callee   string // SIP URI
	rtmpURL  string
	webrtc   bool
	mu       sync.Mutex
	calls    map[string]*callmgr.Call
	selfPID  int
	profiled bool
}

func newInProcess(opt *options, calleeSIP, rtmpURL string) (*inProcess, error) {
	cfg := callmgr.Config{
		ListenAddr:           "127.0.0.1:0",
		PublicIP:             netip.MustParseAddr("127.0.0.1"),
		RTPPortMin:           opt.rtpMin,
		RTPPortMax:           opt.rtpMax,
		RTMPAudioPassthrough: opt.audio == "passthrough",
		Admission:            callmgr.AdmissionConfig{MaxCPU: opt.maxCPU},
	}
	if slices.Contains(opt.directions, dirIn) || opt.flood > 0 {
		// Calls from -inbound-allow are answered and published as
		// {rtmpURL}/{Request-URI user}; anyone else must authenticate
		// as a user whose password nobody knows: strangers get 401.
		cfg.OnIncoming = func(_ context.Context, in callmgr.IncomingCall) (callmgr.Decision, error) {
			return callmgr.AnswerWith(callmgr.CallParams{RTMPURL: rtmpURL, RTMPStream: in.Callee, HasAudio: true, HasVideo: true}), nil
		}
		cfg.Inbound = callmgr.InboundConfig{AllowFrom: opt.inboundAllow, MaxPending: max(100, opt.inFlight)}
		if opt.flood > 0 {
			cfg.Inbound.Users = map[string]string{"loadtest": strconv.FormatUint(uint64(rand32()), 36) + strconv.FormatUint(uint64(rand32()), 36)}
		}
	}
	m, err := callmgr.New(cfg)
	if err != nil {
		return nil, err
	}
	return &inProcess{m: m, callee: "sip:load@" + calleeSIP, rtmpURL: rtmpURL, webrtc: opt.webrtc,
		calls: map[string]*callmgr.Call{}, selfPID: os.Getpid()}, nil
}

func (g *inProcess) start(ctx context.Context, id string) error {
	c, err := g.m.StartCall(ctx, callmgr.CallParams{
		CallID: id, Callee: g.callee, RTMPURL: g.rtmpURL, RTMPStream: id, HasAudio: true, HasVideo: true,
	})
	if err != nil {
		return err
	}
	return g.track(ctx, id, c)
}

func (g *inProcess) sipAddr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(g.m.ListenPort("udp")))
}

func (g *inProcess) adopt(ctx context.Context, id string) error {
	for {
		if c, ok := g.m.Call(id); ok {
			return g.track(ctx, id, c)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the gateway has no call %s: %w", id, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (g *inProcess) awaitEnd(ctx context.Context, id string) error {
	c := g.call(id)
	if c == nil {
		return nil
	}
	select {
	case <-c.Done():
	case <-ctx.Done():
		return fmt.Errorf("call %s still %s: %w", id, c.Info().Status, ctx.Err())
	}
	g.mu.Lock()
	delete(g.calls, id)
	g.mu.Unlock()
	return nil
}

func (g *inProcess) incoming() map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range g.m.IncomingCounts() {
		out[string(k)] = v
	}
	return out
}

func (g *inProcess) fds() int {
	n, err := procFDs(g.selfPID)
	if err != nil {
		return -1
	}
	return n
}

// track follows call c (established or on its way) as id.
func (g *inProcess) track(ctx context.Context, id string, c *callmgr.Call) error {
	g.mu.Lock()
	g.calls[id] = c
	g.mu.Unlock()
	if err := c.WaitEstablished(ctx); err != nil {
		return err
	}
	if g.webrtc {
		// What examples/restserver does for every call by default: a WHEP
		// sink ready for viewers (none join here).
		ws, err := whep.New(whep.Config{RequestKeyframe: c.RequestKeyframe, Probe: 8 * time.Second})
		if err != nil {
			return fmt.Errorf("webrtc sink: %w", err)
		}
		if _, err := g.m.AddSink(ctx, id, callmgr.SinkSpec{Sink: ws}); err != nil {
			_ = ws.Close(ctx)
			return fmt.Errorf("webrtc sink: %w", err)
		}
	}
	return nil
}

func (g *inProcess) call(id string) *callmgr.Call {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.calls[id]
}

func (g *inProcess) active(ids []string) int {
	n := 0
	for _, id := range ids {
		if c := g.call(id); c != nil && c.Info().RTMPStatus == callmgr.SinkActive {
			n++
		}
	}
	return n
}

func (g *inProcess) stats(ids []string) (lost, late uint64, ok bool) {
	for _, id := range ids {
		if c := g.call(id); c != nil {
			st := c.Stats()
			lost += st.Audio.PacketsLost + st.Video.PacketsLost
			late += st.Audio.PacketsLate + st.Video.PacketsLate
		}
	}
	return lost, late, true
}

func (g *inProcess) stop(ctx context.Context, id string) error {
	c := g.call(id)
	if c == nil {
		return nil
	}
	err := c.Terminate(ctx)
	select {
	case <-c.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	g.mu.Lock()
	delete(g.calls, id)
	g.mu.Unlock()
	if errors.Is(err, callmgr.ErrCallEnded) || errors.Is(err, callmgr.ErrCallNotFound) {
		err = nil
	}
	return err
}

func (g *inProcess) cpu() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime), nil
}

func (g *inProcess) rss() (int64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	return procRSS(g.selfPID)
}

func (g *inProcess) goroutines() int { return runtime.NumGoroutine() }

func (g *inProcess) heap() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func (g *inProcess) mem() *memBreakdown {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	f := func(v uint64) float64 { return float64(v) / mb }
	b := &memBreakdown{HeapInuse: f(ms.HeapInuse), HeapIdle: f(ms.HeapIdle - ms.HeapReleased), StackInuse: f(ms.StackInuse),
		RuntimeMeta: f(ms.MSpanSys + ms.MCacheSys + ms.GCSys + ms.OtherSys + ms.BuckHashSys), TotalSys: f(ms.Sys)}
	b.Threads, _ = procThreads(g.selfPID)
	return b
}

func (g *inProcess) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_ = g.m.Close(ctx)
}

// restGateway drives a running examples/restserver (the WCS REST API) and
// measures that process.
type restGateway struct {
	base, user, pass string
	pid              int
	callee, rtmpURL  string
	sip              string // SIP address (-gateway-sip)
	client           *http.Client

	pollMu   sync.Mutex // one /call/find_all at a time, shared by every waiter
	polled   time.Time
	snapshot map[string]restCall
}

func newREST(opt *options, calleeSIP, rtmpURL string) (*restGateway, error) {
	g := &restGateway{base: strings.TrimRight(opt.rest, "/"), pid: opt.gatewayPID, callee: "sip:load@" + calleeSIP,
		rtmpURL: rtmpURL, sip: opt.gatewaySIP, client: &http.Client{Timeout: 30 * time.Second}}
	if opt.restAuth != "" {
		var ok bool
		if g.user, g.pass, ok = strings.Cut(opt.restAuth, ":"); !ok {
			return nil, errors.New("-rest-auth: want user:password")
		}
	}
	if g.pid <= 0 {
		return nil, errors.New("-rest needs -gateway-pid (the REST server's process, whose CPU and memory are measured)")
	}
	if _, err := procCPU(g.pid); err != nil {
		return nil, fmt.Errorf("-gateway-pid: %w", err)
	}
	return g, nil
}

// post sends a JSON request to the REST API and decodes the answer into
// out (nil: ignored).
func (g *restGateway) post(ctx context.Context, path string, in, out any) (int, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.base+"/rest-api"+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if g.user != "" {
		req.SetBasicAuth(g.user, g.pass)
	}
	res, err := g.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
	if res.StatusCode != http.StatusOK {
		var e struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(b, &e)
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(b))
		}
		return res.StatusCode, fmt.Errorf("%s: HTTP %d: %s", path, res.StatusCode, e.Message)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return res.StatusCode, fmt.Errorf("%s: %w", path, err)
		}
	}
	return res.StatusCode, nil
}

type restCall struct {
	CallID     string `json:"callId"`
	Status     string `json:"status"`
	RTMPStatus string `json:"rtmpStreamStatus"`
}

// calls returns the server's calls by ID, from one /call/find_all at most
// every 200 ms however many goroutines wait for their call, and when that
// request was sent (the list holds no call newer than that).
func (g *restGateway) calls(ctx context.Context) (map[string]restCall, time.Time, error) {
	g.pollMu.Lock()
	defer g.pollMu.Unlock()
	if g.snapshot != nil && time.Since(g.polled) < 200*time.Millisecond {
		return g.snapshot, g.polled, nil
	}
	var list []restCall
	asked := time.Now()
	code, err := g.post(ctx, "/call/find_all", struct{}{}, &list)
	if err != nil && code != http.StatusNotFound { // 404: no calls
		return nil, time.Time{}, err
	}
	m := make(map[string]restCall, len(list))
	for _, c := range list {
		m[c.CallID] = c
	}
	g.snapshot, g.polled = m, asked
	return m, asked, nil
}

// status returns call id's status ("" when not listed) and when the list
// it comes from was asked for.
func (g *restGateway) status(ctx context.Context, id string) (string, time.Time, error) {
	m, asked, err := g.calls(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	return m[id].Status, asked, nil
}

func (g *restGateway) start(ctx context.Context, id string) error {
	in := map[string]any{"callId": id, "callee": g.callee, "rtmpUrl": g.rtmpURL, "rtmpStream": id, "hasAudio": true, "hasVideo": true}
	if _, err := g.post(ctx, "/call/startup", in, nil); err != nil {
		return err
	}
	return g.adopt(ctx, id)
}

func (g *restGateway) sipAddr() string { return g.sip }

// adopt waits for call id to be ESTABLISHED (an incoming call's callId
// is its SIP Call-ID).
func (g *restGateway) adopt(ctx context.Context, id string) error {
	t0 := time.Now() // the call exists (startup answered, or the caller got 200 OK)
	for {
		st, asked, err := g.status(ctx, id)
		switch {
		case err != nil:
			return err
		case st == string(callmgr.StatusEstablished):
			return nil
		case st == "" && asked.Before(t0):
			// A list from before the call existed: wait for the next.
		case st == "" || callmgr.Status(st).Final():
			return fmt.Errorf("call ended %s", st)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (g *restGateway) active(ids []string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, _, err := g.calls(ctx)
	if err != nil {
		return -1
	}
	n := 0
	for _, id := range ids {
		if m[id].RTMPStatus == "RTMP_STREAM_ACTIVE" { // the REST API's name of sink.StateActive
			n++
		}
	}
	return n
}

// stats: the REST API does not expose the media counters.
func (g *restGateway) stats([]string) (lost, late uint64, ok bool) { return 0, 0, false }

func (g *restGateway) stop(ctx context.Context, id string) error {
	if _, err := g.post(ctx, "/call/terminate", map[string]string{"callId": id}, nil); err != nil {
		return err
	}
	return g.awaitEnd(ctx, id)
}

func (g *restGateway) awaitEnd(ctx context.Context, id string) error {
	for {
		st, _, err := g.status(ctx, id)
		if err != nil || st == "" || callmgr.Status(st).Final() {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (g *restGateway) cpu() (float64, error) { return procCPU(g.pid) }
func (g *restGateway) rss() (int64, error)   { return procRSS(g.pid) }
func (g *restGateway) close()                {}
func (g *restGateway) goroutines() int       { return -1 }
func (g *restGateway) heap() int64           { return 0 }
func (g *restGateway) mem() *memBreakdown    { return nil }

// incoming: the REST server's counts are on its /metrics, not read here.
func (g *restGateway) incoming() map[string]uint64 { return nil }

func (g *restGateway) fds() int {
	n, err := procFDs(g.pid)
	if err != nil {
		return -1
	}
	return n
}
