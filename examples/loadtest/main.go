package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line.
type options struct {
	ns, ffmpegNs     []int
	duration, warmup time.Duration
	rtmp             string
	rest, restAuth   string
	gatewayPID       int
	rtpMin, rtpMax   int
	cpuprofile       string
	calleeProfile    string
	memprofile       string
	audio            string
	webrtc           bool
	inFlight         int
	mtu              int
	role             string
	maxCPU           float64
	ramp             time.Duration
	recordFLV        string
	settle           time.Duration
	heapDir          string
	repeat           int
}

// parseList reads "1,10,50" (empty: none).
func parseList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseRange reads "30000-39999" (empty: zero, the callmgr default).
func parseRange(s string) (lo, hi int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || hi < lo+3 {
		return 0, 0, fmt.Errorf("bad port range %q: want min-max within 1024-65535", s)
	}
	return lo, hi, nil
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opt options
	ns := fs.String("n", "1,10,50", "concurrent calls to measure, a comma-separated list")
	ffn := fs.String("ffmpeg-n", "", "also measure one ffmpeg per call at these counts (comma-separated)")
	fs.DurationVar(&opt.duration, "duration", 20*time.Second, "steady measuring window per count, after all calls are up")
	fs.DurationVar(&opt.warmup, "warmup", 3*time.Second, "time left out of the figures after all calls are up")
	fs.StringVar(&opt.rtmp, "rtmp", "", "publish to this RTMP application (rtmp://host/app) instead of the embedded receiver; no latency figures then")
	fs.StringVar(&opt.rest, "rest", "", "place calls through a running examples/restserver at this base URL (http://127.0.0.1:8081)")
	fs.StringVar(&opt.restAuth, "rest-auth", "", "user:password of the REST API")
	fs.IntVar(&opt.gatewayPID, "gateway-pid", 0, "process ID of the REST server (with -rest): its CPU and memory are measured")
	ports := fs.String("rtp-ports", "", "RTP port range of the in-process gateway, min-max (empty: callmgr's default 30000-31999)")
	fs.StringVar(&opt.cpuprofile, "cpuprofile", "", "write the gateway's CPU profile (in-process mode, sipstream rounds) to this file")
	fs.StringVar(&opt.calleeProfile, "callee-cpuprofile", "", "write the callee process's CPU profile (sender and RTMP receiver) to this file")
	fs.StringVar(&opt.memprofile, "memprofile", "", "write a heap profile taken at the end of the largest sipstream round's window")
	fs.StringVar(&opt.audio, "audio", "aac", "RTMP audio of the in-process gateway: aac (transcoded, 48 kHz) or passthrough (G.711 as it comes)")
	fs.BoolVar(&opt.webrtc, "webrtc", false, "add a viewer-less WHEP sink to every call, as examples/restserver does by default (in-process mode)")
	fs.IntVar(&opt.inFlight, "in-flight", 50, "calls being placed at once")
	fs.Float64Var(&opt.maxCPU, "max-cpu", 0, "admission control of the in-process gateway (callmgr Config.Admission.MaxCPU, 0..1 of the CPUs): calls beyond it are refused and counted as refused_overload; 0 = off, as for measurements")
	fs.DurationVar(&opt.ramp, "ramp", 0, "start the calls of a round this far apart (0: as fast as -in-flight allows); admission control needs a ramp to see each call's cost")
	fs.StringVar(&opt.recordFLV, "record-flv", "", "write the first stream of each round, as the embedded receiver got it, to this FLV file (overwritten per round)")
	fs.StringVar(&opt.heapDir, "heap-profiles", "", "write the in-process gateway's heap profile before each sipstream round and -settle after it (heap-before-N-R.pb.gz, heap-after-N-R.pb.gz, R the -repeat pass) into this directory; every allocation is sampled, which slows the gateway")
	fs.IntVar(&opt.repeat, "repeat", 1, "run the rounds of -n and -ffmpeg-n this many times (does the memory come back after each?)")
	fs.DurationVar(&opt.settle, "settle", time.Second, "wait this long after the calls of a round ended before reading rss_after_mb and goroutines_after (SIP transactions linger up to 32 s)")
	fs.IntVar(&opt.mtu, "mtu", defaultMTU, "largest RTP payload the callee sends (FU-A above)")
	fs.StringVar(&opt.role, "role", "", "internal: callee runs the load callee and RTMP receiver")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	var err error
	if opt.ns, err = parseList(*ns); err != nil {
		return nil, fmt.Errorf("-n: %w", err)
	}
	if opt.ffmpegNs, err = parseList(*ffn); err != nil {
		return nil, fmt.Errorf("-ffmpeg-n: %w", err)
	}
	if opt.rtpMin, opt.rtpMax, err = parseRange(*ports); err != nil {
		return nil, fmt.Errorf("-rtp-ports: %w", err)
	}
	switch {
	case opt.audio != "aac" && opt.audio != "passthrough":
		return nil, errors.New("-audio: want aac or passthrough")
	case opt.duration <= 0 || opt.warmup < 0:
		return nil, errors.New("-duration must be positive, -warmup not negative")
	case opt.inFlight < 1:
		return nil, errors.New("-in-flight must be at least 1")
	case opt.maxCPU < 0 || opt.maxCPU > 1:
		return nil, errors.New("-max-cpu: want 0 (off) to 1")
	case opt.ramp < 0 || opt.settle < 0:
		return nil, errors.New("-ramp and -settle must not be negative")
	case opt.repeat < 1:
		return nil, errors.New("-repeat must be at least 1")
	case opt.rest != "" && (opt.webrtc || opt.cpuprofile != "" || opt.memprofile != "" || opt.audio != "aac" || opt.maxCPU != 0):
		return nil, errors.New("-webrtc, -cpuprofile, -memprofile, -audio and -max-cpu apply to the in-process gateway, not to -rest (give the REST server its own -max-cpu)")
	}
	return &opt, nil
}

// run is main without the exit: it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	opt, err := parseOptions(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "loadtest:", err)
		return 2
	}
	if opt.role == "callee" {
		if opt.cpuprofile != "" {
			f, err := os.Create(opt.cpuprofile)
			if err == nil {
				err = pprof.StartCPUProfile(f)
			}
			if err != nil {
				fmt.Fprintln(stderr, "loadtest callee:", err)
				return 1
			}
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
		if err := runCallee(os.Stdin, stdout, opt.mtu); err != nil {
			fmt.Fprintln(stderr, "loadtest callee:", err)
			return 1
		}
		return 0
	}
	if err := runParent(opt, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "loadtest:", err)
		return 1
	}
	return 0
}

// calleeProc is the callee child process and its control pipe.
type calleeProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	out   *bufio.Scanner
	hello calleeHello
	mu    sync.Mutex
}

// startCallee re-executes this program as the callee, in its own process
// group so that everything it started ends with it.
func startCallee(mtu int, profile string, stderr io.Writer) (*calleeProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-role", "callee", "-mtu", strconv.Itoa(mtu)}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	cmd := exec.Command(exe, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &calleeProc{cmd: cmd, in: in, out: bufio.NewScanner(outPipe)}
	p.out.Buffer(make([]byte, 64<<10), 16<<20)
	if !p.out.Scan() {
		p.kill()
		return nil, fmt.Errorf("callee did not start: %v", p.out.Err())
	}
	if err := json.Unmarshal(p.out.Bytes(), &p.hello); err != nil {
		p.kill()
		return nil, fmt.Errorf("callee hello: %w", err)
	}
	return p, nil
}

func (p *calleeProc) pid() int { return p.cmd.Process.Pid }

// do sends one command and reads its reply.
func (p *calleeProc) do(c command) (reply, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b, _ := json.Marshal(c)
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		return reply{}, err
	}
	if !p.out.Scan() {
		return reply{}, fmt.Errorf("callee gone: %v", p.out.Err())
	}
	var r reply
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		return reply{}, err
	}
	if r.Err != "" {
		return r, errors.New(r.Err)
	}
	return r, nil
}

// stop ends the callee: EOF on its stdin, then its process group is
// killed if it has not exited within 5 s.
func (p *calleeProc) stop() {
	_ = p.in.Close()
	waitOrKill(p.cmd, 5*time.Second)
}

// waitOrKill waits for cmd (started in a process group of its own) to
// exit, and kills its group if it has not within grace.
func waitOrKill(cmd *exec.Cmd, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func (p *calleeProc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Wait()
}

// summary is the JSON printed on stdout.
type summary struct {
	Started  time.Time `json:"started"`
	Gateway  string    `json:"gateway"` // in-process or the REST base URL
	Audio    string    `json:"audio"`
	WebRTC   bool      `json:"webrtc"`
	WindowS  float64   `json:"window_s"`
	WarmupS  float64   `json:"warmup_s"`
	Receiver string    `json:"receiver"`
	Results  []*result `json:"results"`
	Ratios   []ratio   `json:"ratios,omitempty"`
}

func runParent(opt *options, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "loadtest: "+format+"\n", args...) }
	child, err := startCallee(opt.mtu, opt.calleeProfile, stderr)
	if err != nil {
		return err
	}
	defer child.stop()
	rtmpBase := "rtmp://" + child.hello.RTMP + "/live"
	receiver := "embedded"
	if opt.rtmp != "" {
		rtmpBase, receiver = strings.TrimRight(opt.rtmp, "/"), opt.rtmp
	}
	var gw gateway
	gwName := "in-process"
	if opt.rest != "" {
		gw, err = newREST(opt, child.hello.SIP, rtmpBase)
		gwName = opt.rest
	} else {
		gw, err = newInProcess(opt, child.hello.SIP, rtmpBase)
	}
	if err != nil {
		return err
	}
	defer gw.close()
	logf("callee %s (pid %d), RTMP %s, gateway %s", child.hello.SIP, child.pid(), rtmpBase, gwName)

	t := &tester{opt: opt, gw: gw, child: child, rtmpBase: rtmpBase, logf: logf, runID: strconv.FormatUint(uint64(rand32()%1e6), 36)}
	sum := summary{Started: time.Now().UTC(), Gateway: gwName, Audio: opt.audio, WebRTC: opt.webrtc,
		WindowS: opt.duration.Seconds(), WarmupS: opt.warmup.Seconds(), Receiver: receiver}

	counts := append(slices.Clone(opt.ns), opt.ffmpegNs...)
	slices.Sort(counts)
	counts = slices.Compact(counts)
	largest := 0
	if len(opt.ns) > 0 {
		largest = slices.Max(opt.ns)
	}
	if opt.cpuprofile != "" && len(opt.ns) > 0 {
		f, err := os.Create(opt.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if opt.heapDir != "" {
		// Every allocation in the profiles, so that a before/after diff
		// names what stays (slows the gateway down: not for CPU figures).
		runtime.MemProfileRate = 1
	}
	for rep := range opt.repeat {
		for _, n := range counts {
			t.rep = rep
			if slices.Contains(opt.ns, n) {
				r := t.roundOurs(n, n == largest && rep == 0)
				sum.Results = append(sum.Results, r)
				logf("%s", r.line())
			}
			if slices.Contains(opt.ffmpegNs, n) {
				r := t.roundFFmpeg(n)
				sum.Results = append(sum.Results, r)
				logf("%s", r.line())
			}
		}
	}
	if opt.cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	sum.Ratios = ratios(sum.Results)
	printTable(stderr, &sum)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(&sum)
}
