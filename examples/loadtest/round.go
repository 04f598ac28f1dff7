package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sipstream/sipstream/callmgr"
)

// Modes of a result.
const (
	modeOurs   = "sipstream"
	modeFFmpeg = "ffmpeg"
)

// Directions of a sipstream round: who places the calls.
const (
	dirOut = "out" // the gateway calls the load callee
	dirIn  = "in"  // the load caller calls the gateway
)

// result is one round: N calls through one mode.
type result struct {
	N    int    `json:"n"`
	Mode string `json:"mode"`
	// Direction is who placed the calls of a sipstream round: "out" (the
	// gateway) or "in" (the load caller, to the gateway).
	Direction string `json:"direction,omitempty"`

	CallsPlaced     int            `json:"calls_placed"`
	CallsOK         int            `json:"calls_ok"`
	CallsFailed     int            `json:"calls_failed"`
	Errors          map[string]int `json:"errors,omitempty"`         // by message
	RefusedOverload int            `json:"refused_overload"`         // admission control (overloaded, too many calls, 503); not in calls_failed
	RefusedReason   string         `json:"refused_reason,omitempty"` // the first refusal's message
	SetupS          float64        `json:"setup_s"`                  // placing all calls until all answered
	SetupRate       float64        `json:"setup_rate"`               // calls/s
	StreamsActive   int            `json:"streams_active"`           // RTMP ACTIVE at the gateway; -1 unknown

	WindowS            float64 `json:"window_s"`
	CPUS               float64 `json:"cpu_s"`                 // gateway (or all ffmpeg) CPU in the window
	CPUPerStreamSecond float64 `json:"cpu_per_stream_second"` // CPU-seconds per stream-second
	CPUCores           float64 `json:"cpu_cores"`             // cores busy on average

	RSSBaseMB    float64 `json:"rss_base_mb,omitempty"`  // before the calls
	RSSLoadedMB  float64 `json:"rss_loaded_mb"`          // at the end of the window (ffmpeg: PSS sum)
	MemPerCallMB float64 `json:"mem_per_call_mb"`        // (loaded-base)/N; ffmpeg: PSS per process
	RSSAfterMB   float64 `json:"rss_after_mb,omitempty"` // after the calls ended and -settle
	HeapBaseMB   float64 `json:"heap_base_mb,omitempty"` // in-process: live heap (HeapAlloc after a GC) before the calls
	HeapAfterMB  float64 `json:"heap_after_mb,omitempty"`
	// GoroutinesBefore and GoroutinesAfter are the gateway's goroutines
	// before the calls and -settle after they ended (in-process only;
	// -1 unknown). More after than before is a leak or timers still
	// running (sipgo keeps a transaction up to 32 s after it ends).
	GoroutinesBefore int `json:"goroutines_before"`
	GoroutinesAfter  int `json:"goroutines_after"`
	// MemBase and MemAfter break the in-process gateway's memory down
	// before the calls and -settle after they ended.
	MemBase  *memBreakdown `json:"mem_base,omitempty"`
	MemAfter *memBreakdown `json:"mem_after,omitempty"`

	PacketsLost *uint64 `json:"packets_lost,omitempty"` // gateway's counters (in-process only)
	PacketsLate *uint64 `json:"packets_late,omitempty"`

	CalleeCPUS               float64 `json:"callee_cpu_s"` // load callee + RTMP receiver process
	CalleeCPUPerStreamSecond float64 `json:"callee_cpu_per_stream_second"`

	Receiver *recvStats   `json:"receiver,omitempty"` // the embedded RTMP receiver's window
	Flood    *floodReport `json:"flood,omitempty"`    // -flood, after the window
	Problems []string     `json:"problems,omitempty"`
}

// ratio compares the modes at one N.
type ratio struct {
	N       int     `json:"n"`
	CPU     float64 `json:"cpu_ours_over_ffmpeg"`
	Memory  float64 `json:"mem_ours_over_ffmpeg"`
	Latency float64 `json:"latency_median_ours_over_ffmpeg,omitempty"`
	// Direction is the sipstream round's: "out" or "in".
	Direction string `json:"direction,omitempty"`
	Describe  string `json:"describe"`
}

// tester runs the rounds.
type tester struct {
	opt      *options
	gw       gateway
	child    *calleeProc
	flooder  *calleeProc // -flood's process
	rtmpBase string
	runID    string
	rep      int // -repeat pass, from 0
	logf     func(string, ...any)
}

const mb = 1 << 20

func (r *result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// countErr files err under its message with the call's ID taken out.
func (r *result) countErr(id string, err error) {
	msg := strings.ReplaceAll(err.Error(), id, "<id>")
	if errors.Is(err, callmgr.ErrOverloaded) || errors.Is(err, callmgr.ErrTooManyCalls) || strings.Contains(msg, "HTTP 503") ||
		strings.Contains(strings.ToLower(msg), "overload") || strings.Contains(strings.ToLower(msg), "too many") {
		// Refused by admission control: what it is for, not a failure
		// (and each message holds the load figures: not counted by it).
		r.RefusedOverload++
		if r.RefusedReason == "" {
			r.RefusedReason = msg
		}
		return
	}
	if r.Errors == nil {
		r.Errors = map[string]int{}
	}
	r.Errors[msg]++
	r.CallsFailed++
}

// parallel runs f for 0..n-1 with at most limit at once.
func parallel(n, limit int, f func(i int)) {
	rampParallel(n, limit, 0, f)
}

// rampParallel is parallel with f(i) started no earlier than i·ramp after
// the first.
func rampParallel(n, limit int, ramp time.Duration, f func(i int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i := range n {
		if ramp > 0 {
			time.Sleep(time.Until(t0.Add(time.Duration(i) * ramp)))
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(i)
		}()
	}
	wg.Wait()
}

// waitReceiving waits until want streams deliver video to the embedded
// receiver (or timeout).
func (t *tester) waitReceiving(want int, timeout time.Duration) {
	if t.opt.rtmp != "" || want == 0 {
		return
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		rep, err := t.child.do(command{Cmd: "stats"})
		if err == nil && rep.Stats.StreamsReceived >= want {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// window measures the steady window: cpu is the measured processes' CPU
// clock, read at both ends.
func (t *tester) window(r *result, cpu func() float64) {
	time.Sleep(t.opt.warmup)
	if _, err := t.child.do(command{Cmd: "measure"}); err != nil {
		r.problem("callee: %v", err)
	}
	c0 := cpu()
	k0, _ := procCPU(t.child.pid())
	t0 := time.Now()
	time.Sleep(t.opt.duration)
	c1 := cpu()
	k1, _ := procCPU(t.child.pid())
	r.WindowS = time.Since(t0).Seconds()
	streams := float64(max(r.CallsOK, 1)) * r.WindowS
	r.CPUS = c1 - c0
	r.CPUPerStreamSecond = r.CPUS / streams
	r.CPUCores = r.CPUS / r.WindowS
	r.CalleeCPUS = k1 - k0
	r.CalleeCPUPerStreamSecond = r.CalleeCPUS / streams
	if t.opt.rtmp == "" {
		rep, err := t.child.do(command{Cmd: "stats"})
		if err != nil {
			r.problem("callee stats: %v", err)
		} else {
			r.Receiver = rep.Stats
		}
	}
}

// place places call id in direction dir and returns once it is
// established at the gateway.
func (t *tester) place(ctx context.Context, dir, id string) error {
	if dir == dirOut {
		return t.gw.start(ctx, id)
	}
	if _, err := t.child.do(command{Cmd: "call", Target: "sip:" + id + "@" + t.gw.sipAddr(), ID: id}); err != nil {
		return err
	}
	if err := t.gw.adopt(ctx, id); err != nil {
		// Answered, but the gateway cannot be watched: a failed call,
		// hung up so that it does not stream on.
		_, _ = t.child.do(command{Cmd: "hangup", ID: id})
		return err
	}
	return nil
}

// hangup ends call id: the gateway hangs up an outgoing call, the load
// caller an incoming one.
func (t *tester) hangup(ctx context.Context, dir, id string) error {
	if dir == dirOut {
		return t.gw.stop(ctx, id)
	}
	if _, err := t.child.do(command{Cmd: "hangup", ID: id}); err != nil {
		return err
	}
	return t.gw.awaitEnd(ctx, id)
}

// roundOurs measures n calls through the gateway, placed in direction
// dir.
func (t *tester) roundOurs(n int, dir string, profileHeap bool) *result {
	r := &result{N: n, Mode: modeOurs, Direction: dir, CallsPlaced: n, StreamsActive: -1}
	t.logf("sipstream: %d calls %s", n, dir)
	if _, err := t.child.do(command{Cmd: "round", Record: t.opt.recordFLV}); err != nil {
		r.problem("callee: %v", err)
		return r
	}
	if base, err := t.gw.rss(); err == nil {
		r.RSSBaseMB = float64(base) / mb
	}
	r.GoroutinesBefore = t.gw.goroutines()
	r.HeapBaseMB = float64(t.gw.heap()) / mb
	r.MemBase = t.gw.mem()
	t.heapProfile(r, "before", n)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("lt%s-%s-%d-%d-%d", t.runID, dir, t.rep, n, i)
	}
	var mu sync.Mutex
	var ok []string
	t0 := time.Now()
	rampParallel(n, t.opt.inFlight, t.opt.ramp, func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := t.place(ctx, dir, ids[i])
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			r.countErr(ids[i], err)
			return
		}
		ok = append(ok, ids[i])
	})
	r.SetupS = time.Since(t0).Seconds()
	r.CallsOK = len(ok)
	r.SetupRate = float64(r.CallsOK) / r.SetupS
	t.logf("sipstream: %d/%d calls %s answered in %.2f s", r.CallsOK, n, dir, r.SetupS)
	deadline := time.Now().Add(15 * time.Second)
	for t.gw.active(ok) >= 0 && t.gw.active(ok) < len(ok) && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	t.waitReceiving(len(ok), 15*time.Second)

	t.window(r, func() float64 {
		c, err := t.gw.cpu()
		if err != nil {
			r.problem("gateway cpu: %v", err)
		}
		return c
	})
	r.StreamsActive = t.gw.active(ok)
	if lost, late, has := t.gw.stats(ok); has {
		r.PacketsLost, r.PacketsLate = &lost, &late
	}
	if rss, err := t.gw.rss(); err == nil {
		r.RSSLoadedMB = float64(rss) / mb
		r.MemPerCallMB = (r.RSSLoadedMB - r.RSSBaseMB) / float64(max(r.CallsOK, 1))
	}
	if profileHeap && t.opt.memprofile != "" {
		if err := writeHeapProfile(t.opt.memprofile); err != nil {
			r.problem("memprofile: %v", err)
		}
	}
	if t.opt.flood > 0 && len(ok) > 0 {
		r.Flood = t.floodRound(len(ok))
		for _, p := range r.Flood.Problems {
			r.problem("flood: %s", p)
		}
	}

	parallel(len(ok), t.opt.inFlight, func(i int) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := t.hangup(ctx, dir, ok[i]); err != nil {
			mu.Lock()
			r.problem("hanging up %s: %v", ok[i], err)
			mu.Unlock()
		}
	})
	time.Sleep(t.opt.settle) // publishers' connections close, buffers go back, SIP transactions end
	if rss, err := t.gw.rss(); err == nil {
		r.RSSAfterMB = float64(rss) / mb
	}
	r.GoroutinesAfter = t.gw.goroutines()
	r.HeapAfterMB = float64(t.gw.heap()) / mb
	r.MemAfter = t.gw.mem()
	t.heapProfile(r, "after", n)
	t.check(r)
	return r
}

// heapProfile writes the in-process gateway's heap profile to
// -heap-profiles/heap-<when>-<n>-<rep>.pb.gz, when asked: compare them with
// go tool pprof -base heap-before-N-R.pb.gz heap-after-N-R.pb.gz.
func (t *tester) heapProfile(r *result, when string, n int) {
	if t.opt.heapDir == "" || t.opt.rest != "" {
		return
	}
	if err := writeHeapProfile(filepath.Join(t.opt.heapDir, fmt.Sprintf("heap-%s-%d-%d.pb.gz", when, n, t.rep))); err != nil {
		r.problem("heap profile: %v", err)
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// check notes what went wrong in r.
func (t *tester) check(r *result) {
	if failed := r.CallsPlaced - r.CallsOK - r.RefusedOverload; failed > 0 {
		r.problem("%d of %d calls failed", failed, r.CallsPlaced)
	}
	if r.StreamsActive >= 0 && r.StreamsActive < r.CallsOK {
		r.problem("%d of %d streams ACTIVE", r.StreamsActive, r.CallsOK)
	}
	if rs := r.Receiver; rs != nil {
		if rs.StreamsReceived < r.CallsOK {
			r.problem("%d of %d streams received video", rs.StreamsReceived, r.CallsOK)
		}
		if want := int64(r.WindowS * clipFPS * 0.9); rs.MinVideoFrames < want {
			r.problem("a stream received %d video frames in the window, want about %d", rs.MinVideoFrames, int64(r.WindowS*clipFPS))
		}
		if rs.SenderErrors > 0 {
			r.problem("the callee failed to send %d batches", rs.SenderErrors)
		}
	}
}

// ffmpegProc is one ffmpeg of the comparison.
type ffmpegProc struct {
	cmd    *exec.Cmd
	stderr strings.Builder
	mu     sync.Mutex
}

func (p *ffmpegProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stderr.Len() < 4096 {
		p.stderr.Write(b)
	}
	return len(b), nil
}

// stop asks ffmpeg to finish (SIGTERM to its process group), kills the
// group after 3 s.
func (p *ffmpegProc) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	waitOrKill(p.cmd, 3*time.Second)
}

// reservePairs binds n even/odd UDP port pairs on loopback and returns
// them with their sockets, to close just before ffmpeg binds the ports.
func reservePairs(n int) ([]int, []net.PacketConn, error) {
	var ports []int
	var conns []net.PacketConn
	for range n {
		a, b, err := listenPair("127.0.0.1")
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, nil, err
		}
		ports = append(ports, a.LocalAddr().(*net.UDPAddr).Port)
		conns = append(conns, a, b)
	}
	return ports, conns, nil
}

// udpBound reports whether someone else holds UDP port on loopback.
func udpBound(port int) bool {
	c, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// startFFmpeg starts what users run instead of sipstream for one call:
// ffmpeg reading the call's RTP (SDP file) and publishing it to RTMP,
// video copied, G.711 to AAC. It returns once ffmpeg listens.
func startFFmpeg(dir, name, rtmpURL string, videoPort, audioPort int) (*ffmpegProc, error) {
	sdpPath := filepath.Join(dir, name+".sdp")
	if err := os.WriteFile(sdpPath, []byte(ffmpegSDP(videoPort, audioPort)), 0o600); err != nil {
		return nil, err
	}
	p := &ffmpegProc{}
	p.cmd = exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
		"-protocol_whitelist", "file,udp,rtp", "-i", sdpPath,
		"-c:v", "copy", "-c:a", "aac", "-f", "flv", rtmpURL)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stdout, p.cmd.Stderr = io.Discard, p
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for !udpBound(videoPort) || !udpBound(audioPort) {
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("ffmpeg did not listen within 10 s: %s", strings.TrimSpace(p.stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p, nil
}

// roundFFmpeg measures n ffmpeg processes, one per call, fed by the callee
// without SIP.
func (t *tester) roundFFmpeg(n int) *result {
	r := &result{N: n, Mode: modeFFmpeg, CallsPlaced: n, StreamsActive: -1, GoroutinesBefore: -1, GoroutinesAfter: -1}
	t.logf("ffmpeg: %d processes", n)
	if _, err := t.child.do(command{Cmd: "round"}); err != nil {
		r.problem("callee: %v", err)
		return r
	}
	dir, err := os.MkdirTemp("", "loadtest-ffmpeg-")
	if err != nil {
		r.problem("%v", err)
		return r
	}
	defer os.RemoveAll(dir)
	ports, conns, err := reservePairs(2 * n)
	if err != nil {
		r.problem("%v", err)
		return r
	}
	for _, c := range conns {
		c.Close()
	}
	var mu sync.Mutex
	var procs []*ffmpegProc
	t0 := time.Now()
	parallel(n, t.opt.inFlight, func(i int) {
		name := fmt.Sprintf("ff%s-%d-%d-%d", t.runID, t.rep, n, i)
		vp, ap := ports[2*i], ports[2*i+1]
		p, err := startFFmpeg(dir, name, t.rtmpBase+"/"+name, vp, ap)
		if err == nil {
			_, err = t.child.do(command{Cmd: "stream", Video: fmt.Sprintf("127.0.0.1:%d", vp), Audio: fmt.Sprintf("127.0.0.1:%d", ap)})
			if err != nil {
				p.stop()
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			r.countErr(name, err)
			return
		}
		procs = append(procs, p)
	})
	r.SetupS = time.Since(t0).Seconds()
	r.CallsOK = len(procs)
	r.SetupRate = float64(r.CallsOK) / r.SetupS
	defer func() {
		_, _ = t.child.do(command{Cmd: "stopall"})
		parallel(len(procs), 64, func(i int) { procs[i].stop() })
	}()
	t.waitReceiving(len(procs), 20*time.Second)
	t.window(r, func() float64 {
		sum := 0.0
		for _, p := range procs {
			c, err := procCPU(p.cmd.Process.Pid)
			if err != nil {
				r.problem("ffmpeg cpu: %v: %s", err, strings.TrimSpace(p.stderr.String()))
			}
			sum += c
		}
		return sum
	})
	var pss int64
	for _, p := range procs {
		v, err := procPSS(p.cmd.Process.Pid)
		if err != nil {
			r.problem("ffmpeg pss: %v", err)
		}
		pss += v
	}
	r.RSSLoadedMB = float64(pss) / mb
	r.MemPerCallMB = r.RSSLoadedMB / float64(max(len(procs), 1))
	t.check(r)
	return r
}

// line is the one-line progress report of a round.
func (r *result) line() string {
	mode := r.Mode
	if r.Direction == dirIn {
		mode += " in"
	}
	s := fmt.Sprintf("%s n=%d: %d/%d up, cpu %.4f s per stream-second (%.2f cores), %.2f MB per call, callee cpu %.4f",
		mode, r.N, r.CallsOK, r.CallsPlaced, r.CPUPerStreamSecond, r.CPUCores, r.MemPerCallMB, r.CalleeCPUPerStreamSecond)
	if rs := r.Receiver; rs != nil {
		s += fmt.Sprintf(", latency median %.0f p99 %.0f max %.0f ms, audio extra latency %+.0f ms", rs.Latency.Median, rs.Latency.P99, rs.Latency.Max, rs.AudioExtraLatency)
		if av := rs.AVSync; av != nil && av.Markers > 0 {
			s += fmt.Sprintf(", A/V sync median %+.1f max |%.1f| ms (%d markers, %s)", av.Median, av.MaxAbs, av.Markers, av.Decoder)
		}
	}
	if f := r.Flood; f != nil {
		s += "; " + f.line()
	}
	if len(r.Problems) > 0 {
		s += "; PROBLEMS: " + strings.Join(r.Problems, "; ")
	}
	return s
}

// ratios pairs the modes measured at the same N.
func ratios(rs []*result) []ratio {
	var out []ratio
	for _, a := range rs {
		if a.Mode != modeOurs {
			continue
		}
		for _, b := range rs {
			if b.Mode != modeFFmpeg || b.N != a.N || b.CPUPerStreamSecond == 0 {
				continue
			}
			q := ratio{N: a.N, CPU: a.CPUPerStreamSecond / b.CPUPerStreamSecond}
			if b.MemPerCallMB > 0 {
				q.Memory = a.MemPerCallMB / b.MemPerCallMB
			}
			if a.Receiver != nil && b.Receiver != nil && b.Receiver.Latency.Median > 0 {
				q.Latency = a.Receiver.Latency.Median / b.Receiver.Latency.Median
			}
			what := "sipstream"
			if a.Direction == dirIn {
				what = "sipstream (incoming calls)"
			}
			q.Direction = a.Direction
			q.Describe = fmt.Sprintf("at %d calls %s uses %.2fx the CPU and %.2fx the memory of one ffmpeg per call", a.N, what, q.CPU, q.Memory)
			out = append(out, q)
		}
	}
	return out
}

// printTable writes the human-readable summary.
func printTable(w io.Writer, s *summary) {
	fmt.Fprintf(w, "\n%-9s %5s %7s %7s %9s %11s %7s %9s %9s %9s %8s %8s %8s %6s %8s %8s %6s %8s %9s\n",
		"mode", "n", "up", "refused", "setup/s", "cpu/str-s", "cores", "MB/call", "RSSafter", "lost/late", "lat-med", "lat-p99", "lat-max", "late",
		"a-extra", "sync", "|sync|", "key-ms", "callee/s")
	for _, r := range s.Results {
		lostLate := "-"
		if r.PacketsLost != nil {
			lostLate = fmt.Sprintf("%d/%d", *r.PacketsLost, *r.PacketsLate)
		}
		med, p99, mx, extra, late, key := math.NaN(), math.NaN(), math.NaN(), math.NaN(), int64(0), math.NaN()
		sync, syncMax := math.NaN(), math.NaN()
		if rs := r.Receiver; rs != nil {
			med, p99, mx, extra, late, key = rs.Latency.Median, rs.Latency.P99, rs.Latency.Max, rs.AudioExtraLatency, rs.Late, rs.KeyInterval.Median
			if av := rs.AVSync; av != nil && av.Markers > 0 {
				sync, syncMax = av.Median, av.MaxAbs
			}
		}
		after := "-"
		if r.RSSAfterMB > 0 {
			after = fmt.Sprintf("%.1f", r.RSSAfterMB)
		}
		mode := r.Mode
		if r.Direction == dirIn {
			mode = "sip-in"
		}
		fmt.Fprintf(w, "%-9s %5d %3d/%-3d %7d %9.1f %11.5f %7.3f %9.2f %9s %9s %8.0f %8.0f %8.0f %6d %+8.0f %+8.1f %6.1f %8.0f %9.5f\n",
			mode, r.N, r.CallsOK, r.CallsPlaced, r.RefusedOverload, r.SetupRate, r.CPUPerStreamSecond, r.CPUCores, r.MemPerCallMB, after, lostLate,
			med, p99, mx, late, extra, sync, syncMax, key, r.CalleeCPUPerStreamSecond)
	}
	for _, q := range s.Ratios {
		fmt.Fprintf(w, "ratio: %s\n", q.Describe)
	}
	for _, r := range s.Results {
		if r.Flood != nil {
			mode := r.Direction
			fmt.Fprintf(w, "flood during %d %s calls: %s\n", r.CallsOK, mode, r.Flood.line())
		}
	}
}
