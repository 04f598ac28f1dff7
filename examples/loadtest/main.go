package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
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

	// Incoming calls (issue 17): the child calls the gateway.
	directions   []string // "out", "in": the rounds of each -n, in this order
	inboundAllow []netip.Prefix
	gatewaySIP   string // the REST server's SIP address (-rest with incoming calls or a flood)
	receiverAddr string // the embedded RTMP receiver's address ("": any free port)

	// The INVITE flood, during each round of our gateway.
	flood        int
	floodRate    float64
	floodSources int
	floodWait    time.Duration
	floodBefore  time.Duration
	floodNoAck   bool
}

// parseDirections reads -direction: out, in or both.
func parseDirections(s string) ([]string, error) {
	switch s {
	case "out":
		return []string{dirOut}, nil
	case "in":
		return []string{dirIn}, nil
	case "both":
		return []string{dirOut, dirIn}, nil
	}
	return nil, fmt.Errorf("want out, in or both, not %q", s)
}

// parsePrefixes reads "127.0.0.1/32,10.0.0.0/8" (a bare address is a /32).
func parsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, err2 := netip.ParseAddr(f)
			if err2 != nil {
				return nil, err
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
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
	fs.StringVar(&opt.role, "role", "", "internal: callee (or caller) runs the load peer and RTMP receiver, flooder the INVITE flood")
	direction := fs.String("direction", "out", "who calls: out (the gateway calls the load callee), in (the load caller calls the gateway, which answers and publishes stream = Request-URI user), both (out then in at each -n)")
	incoming := fs.Bool("incoming", false, "same as -direction in")
	allow := fs.String("inbound-allow", "", "networks the in-process gateway takes calls from without authentication (CIDR,...; empty: 127.0.0.0/8, or 127.0.0.1/32 with -flood, whose strangers must authenticate)")
	fs.StringVar(&opt.gatewaySIP, "gateway-sip", "", "SIP address (host:port, UDP) of the REST server, for -rest with incoming calls or -flood")
	fs.StringVar(&opt.receiverAddr, "receiver-addr", "", "address of the embedded RTMP receiver (host:port; empty: a free port), for a REST server started with -inbound-rtmp-url rtmp://ADDR/live")
	fs.IntVar(&opt.flood, "flood", 0, "send this many INVITEs without credentials from random 127.0.0.0/8 sources to the gateway while each sipstream round's calls are live (after the measuring window), and report the answers and the harm to the live calls")
	fs.Float64Var(&opt.floodRate, "flood-rate", 0, "INVITEs per second of -flood (0: as fast as one goroutine sends)")
	fs.IntVar(&opt.floodSources, "flood-sources", 2000, "source addresses of -flood (one UDP socket each, bound to a random 127.x.y.z; INVITEs go round them)")
	fs.DurationVar(&opt.floodWait, "flood-wait", 10*time.Second, "how long after the flood's last INVITE to wait for answers")
	fs.DurationVar(&opt.floodBefore, "flood-before", 5*time.Second, "how long the live calls are watched before the flood, to compare with the flood's duration")
	fs.BoolVar(&opt.floodNoAck, "flood-no-ack", false, "the flood does not acknowledge final answers (as an attacker would: the gateway then retransmits each for 32 s)")
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
	if *incoming {
		*direction = "in"
	}
	if opt.directions, err = parseDirections(*direction); err != nil {
		return nil, fmt.Errorf("-direction: %w", err)
	}
	if opt.inboundAllow, err = parsePrefixes(*allow); err != nil {
		return nil, fmt.Errorf("-inbound-allow: %w", err)
	}
	if *allow == "" {
		opt.inboundAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		if opt.flood > 0 {
			opt.inboundAllow = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
		}
	}
	if opt.gatewaySIP != "" {
		if _, err := netip.ParseAddrPort(opt.gatewaySIP); err != nil {
			return nil, fmt.Errorf("-gateway-sip: want ip:port: %w", err)
		}
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
	case opt.flood < 0 || opt.floodRate < 0 || opt.floodSources < 1 || opt.floodWait < 0 || opt.floodBefore < 0:
		return nil, errors.New("-flood, -flood-rate, -flood-wait and -flood-before must not be negative, -flood-sources at least 1")
	case opt.rest != "" && opt.gatewaySIP == "" && (opt.flood > 0 || slices.Contains(opt.directions, dirIn)):
		return nil, errors.New("-rest with incoming calls or -flood needs -gateway-sip (the REST server's SIP address)")
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
	if opt.role == "flooder" {
		if err := runFlooder(os.Stdin, stdout); err != nil {
			fmt.Fprintln(stderr, "loadtest flooder:", err)
			return 1
		}
		return 0
	}
	if opt.role == "callee" || opt.role == "caller" {
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
		if err := runCallee(os.Stdin, stdout, opt.mtu, opt.receiverAddr); err != nil {
			fmt.Fprintln(stderr, "loadtest "+opt.role+":", err)
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

// calleeProc is the child process (the load callee, or caller) and its
// control pipe: commands go out on its stdin, replies come back on its
// stdout, matched by sequence number (call, hangup and flood run
// concurrently in the child).
type calleeProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	hello calleeHello

	wmu     sync.Mutex // one command line at a time
	mu      sync.Mutex
	seq     int64
	pending map[int64]chan reply
	gone    error // set when the child's stdout ended
}

// startCallee re-executes this program as the child in role ("callee" or
// "caller"), in its own process group so that everything it started ends
// with it. rtmpAddr is where its RTMP receiver listens ("": anywhere).
func startCallee(role string, mtu int, profile, rtmpAddr string, stderr io.Writer) (*calleeProc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"-role", role, "-mtu", strconv.Itoa(mtu)}
	if profile != "" {
		args = append(args, "-cpuprofile", profile)
	}
	if rtmpAddr != "" {
		args = append(args, "-receiver-addr", rtmpAddr)
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
	p := &calleeProc{cmd: cmd, in: in, pending: map[int64]chan reply{}}
	out := bufio.NewScanner(outPipe)
	out.Buffer(make([]byte, 64<<10), 16<<20)
	if !out.Scan() {
		p.kill()
		return nil, fmt.Errorf("%s did not start: %v", role, out.Err())
	}
	if err := json.Unmarshal(out.Bytes(), &p.hello); err != nil {
		p.kill()
		return nil, fmt.Errorf("%s hello: %w", role, err)
	}
	go p.readReplies(out)
	return p, nil
}

// readReplies hands each reply line to the command waiting for it, until
// the child's stdout ends.
func (p *calleeProc) readReplies(out *bufio.Scanner) {
	for out.Scan() {
		var r reply
		if err := json.Unmarshal(out.Bytes(), &r); err != nil {
			continue
		}
		p.mu.Lock()
		ch := p.pending[r.Seq]
		delete(p.pending, r.Seq)
		p.mu.Unlock()
		if ch != nil {
			ch <- r
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gone = fmt.Errorf("child gone: %v", out.Err())
	for seq, ch := range p.pending {
		close(ch)
		delete(p.pending, seq)
	}
}

func (p *calleeProc) pid() int { return p.cmd.Process.Pid }

// do sends one command and waits for its reply. Several may wait at once.
func (p *calleeProc) do(c command) (reply, error) {
	ch := make(chan reply, 1)
	p.mu.Lock()
	if p.gone != nil {
		p.mu.Unlock()
		return reply{}, p.gone
	}
	p.seq++
	c.Seq = p.seq
	p.pending[c.Seq] = ch
	p.mu.Unlock()
	b, _ := json.Marshal(c)
	p.wmu.Lock()
	_, err := p.in.Write(append(b, '\n'))
	p.wmu.Unlock()
	if err != nil {
		p.mu.Lock()
		delete(p.pending, c.Seq)
		p.mu.Unlock()
		return reply{}, err
	}
	r, ok := <-ch
	if !ok {
		p.mu.Lock()
		defer p.mu.Unlock()
		return reply{}, p.gone
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
	Started time.Time `json:"started"`
	Gateway string    `json:"gateway"` // in-process or the REST base URL
	// Directions are the sipstream rounds' at each N: "out", "in".
	Directions []string  `json:"directions"`
	Audio      string    `json:"audio"`
	WebRTC     bool      `json:"webrtc"`
	WindowS    float64   `json:"window_s"`
	WarmupS    float64   `json:"warmup_s"`
	Receiver   string    `json:"receiver"`
	Results    []*result `json:"results"`
	Ratios     []ratio   `json:"ratios,omitempty"`
}

func runParent(opt *options, stdout, stderr io.Writer) error {
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, "loadtest: "+format+"\n", args...) }
	role := "callee"
	if slices.Contains(opt.directions, dirIn) {
		role = "caller"
	}
	child, err := startCallee(role, opt.mtu, opt.calleeProfile, opt.receiverAddr, stderr)
	if err != nil {
		return err
	}
	defer child.stop()
	var flooder *calleeProc
	if opt.flood > 0 {
		// A process of its own: the flood must not slow the load peer
		// or its RTMP receiver down, whose figures judge the harm.
		if flooder, err = startCallee("flooder", opt.mtu, "", "", stderr); err != nil {
			return err
		}
		defer flooder.stop()
	}
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

	t := &tester{opt: opt, gw: gw, child: child, flooder: flooder, rtmpBase: rtmpBase, logf: logf, runID: strconv.FormatUint(uint64(rand32()%1e6), 36)}
	sum := summary{Started: time.Now().UTC(), Gateway: gwName, Directions: opt.directions, Audio: opt.audio, WebRTC: opt.webrtc,
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
				for i, dir := range opt.directions {
					r := t.roundOurs(n, dir, n == largest && rep == 0 && i == 0)
					sum.Results = append(sum.Results, r)
					logf("%s", r.line())
				}
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
