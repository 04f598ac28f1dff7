package callmgr

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"
)

// AdmissionConfig is the Manager's admission control: StartCall refuses a
// new call with an *OverloadError (errors.Is ErrOverloaded) when the machine
// has no headroom left for it, so that the calls already up keep their
// quality instead of all degrading at once. It is on when MaxCPU is set
// (0.8 is a good value); the zero value leaves it off.
//
// Three signals are measured over the last Window by one sampler goroutine
// per Manager (it runs only while calls are live; nothing ticks per call):
//   - CPU: the process's CPU time (getrusage) per second of wall time, as a
//     share of the CPUs Go may use (runtime.GOMAXPROCS). A new call is
//     refused when that share, plus the expected cost of the calls admitted
//     within the Window (their cost is not measured yet) and of this one,
//     would exceed MaxCPU. The expected cost of a call is learnt from the
//     calls that have been up for a Window.
//   - Receive drops: datagrams the kernel dropped because a call's socket
//     buffer was full (MediaStats.SocketDrops): the process does not keep
//     up.
//   - Queue depth: frames waiting in a sink's queue (a sink whose goroutine
//     does not get enough CPU falls behind).
type AdmissionConfig struct {
	// MaxCPU is the share of the CPUs the process may use (1 = every CPU
	// of runtime.GOMAXPROCS busy) beyond which new calls are refused.
	// Zero turns admission control off; a value above 1 is an error.
	MaxCPU float64
	// Window is how far back the signals are measured. Zero means 2 s.
	Window time.Duration
	// MaxQueued refuses new calls while a sink of a live call has more
	// frames than this waiting in its queue. Zero means 50 (about 1 s of
	// audio and video); negative turns the check off.
	MaxQueued int
	// IgnoreDrops keeps admitting calls while sockets drop packets.
	// Zero (false) means kernel receive drops within the Window refuse new
	// calls.
	IgnoreDrops bool
}

func (a AdmissionConfig) off() bool { return a.MaxCPU == 0 }

const (
	defaultAdmissionWindow = 2 * time.Second
	defaultMaxQueued       = 50
	admissionSamples       = 8 // per Window
)

func (a AdmissionConfig) validate() (AdmissionConfig, error) {
	if a.MaxCPU < 0 || a.MaxCPU > 1 || a.Window < 0 {
		return a, fmt.Errorf("callmgr: Config.Admission: MaxCPU must be within 0..1 and Window not negative")
	}
	if a.Window == 0 {
		a.Window = defaultAdmissionWindow
	}
	if a.MaxQueued == 0 {
		a.MaxQueued = defaultMaxQueued
	}
	return a, nil
}

// ErrOverloaded is wrapped by every *OverloadError: admission control
// refused a call because the machine has no headroom left. Retry later, or
// on another machine.
var ErrOverloaded = errors.New("callmgr: overloaded")

// OverloadError says why admission control refused a call. It wraps
// ErrOverloaded.
type OverloadError struct {
	// Reason is a sentence for people, e.g. "CPU 83% of 2 cores over the
	// last 2s (limit 80%)".
	Reason string
}

// Error returns "callmgr: overloaded: " and the reason.
func (e *OverloadError) Error() string { return "callmgr: overloaded: " + e.Reason }

// Unwrap returns ErrOverloaded.
func (e *OverloadError) Unwrap() error { return ErrOverloaded }

// Load is what admission control measured last (Manager.Load).
type Load struct {
	// CPU is the process's CPU use over the last window, as a share of the
	// CPUs Go may use (0..1); Cores is the same in cores.
	CPU, Cores float64
	// CallCPU is the learnt cost of one live call, as a share of the CPUs
	// (zero until measured).
	CallCPU float64
	// SocketDrops counts datagrams the kernel dropped on calls' sockets
	// within the last window.
	SocketDrops uint64
	// MaxQueued is the longest sink queue (frames) of the live calls.
	MaxQueued int
	// Refused counts calls refused by admission control since New.
	Refused uint64
}

// cpuSample is the process's CPU time at a moment.
type cpuSample struct {
	at    time.Time
	cpu   time.Duration
	drops uint64 // sum of the live calls' socket drops then
}

// admission is the Manager's admission control state.
type admission struct {
	cfg   AdmissionConfig
	procs float64
	now   func() time.Time
	cpu   func() (time.Duration, bool) // process CPU time; false: unknown

	mu       sync.Mutex
	samples  []cpuSample // oldest first, spanning about one window
	load     Load
	admitted []time.Time // admissions within the last window
	running  bool        // the sampler goroutine runs
	stop     chan struct{}
	done     chan struct{}
}

func newAdmission(cfg AdmissionConfig, now func() time.Time, cpu func() (time.Duration, bool)) *admission {
	if now == nil {
		now = time.Now
	}
	if cpu == nil {
		cpu = processCPU
	}
	return &admission{cfg: cfg, procs: float64(runtime.GOMAXPROCS(0)), now: now, cpu: cpu}
}

// check says whether one more call may be admitted; it records the
// admission when it may and record is set. Called with the Manager's lock
// held.
func (a *admission) check(record bool) error {
	if a.cfg.off() {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.trimAdmitted(now)
	l := a.load
	recent := len(a.admitted)
	var reason string
	switch {
	case !a.cfg.IgnoreDrops && l.SocketDrops > 0:
		reason = fmt.Sprintf("the kernel dropped %d received packets in the last %v (socket buffers full: the process does not keep up)", l.SocketDrops, a.cfg.Window)
	case a.cfg.MaxQueued > 0 && l.MaxQueued > a.cfg.MaxQueued:
		reason = fmt.Sprintf("a sink has %d frames waiting in its queue (limit %d)", l.MaxQueued, a.cfg.MaxQueued)
	default:
		projected := l.CPU + float64(recent+1)*l.CallCPU
		if projected > a.cfg.MaxCPU {
			reason = fmt.Sprintf("CPU %.0f%% of %g cores over the last %v, %.0f%% with the %d calls being set up and this one (limit %.0f%%)",
				100*l.CPU, a.procs, a.cfg.Window, 100*projected, recent, 100*a.cfg.MaxCPU)
		}
	}
	if reason != "" {
		a.load.Refused++
		return &OverloadError{Reason: reason}
	}
	if record {
		a.admitted = append(a.admitted, now)
	}
	return nil
}

func (a *admission) trimAdmitted(now time.Time) {
	i := 0
	for i < len(a.admitted) && now.Sub(a.admitted[i]) >= a.cfg.Window {
		i++
	}
	a.admitted = append(a.admitted[:0], a.admitted[i:]...)
}

// snapshot returns the last measurement.
func (a *admission) snapshot() Load {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.load
}

// sample takes one measurement. drops is the sum of the live calls' socket
// drops, queued the longest sink queue, live the number of live calls.
func (a *admission) sample(drops uint64, queued, live int) {
	now := a.now()
	cpu, ok := a.cpu()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.trimAdmitted(now)
	a.samples = append(a.samples, cpuSample{at: now, cpu: cpu, drops: drops})
	// Keep one sample at least a window old as the base.
	for len(a.samples) > 2 && now.Sub(a.samples[1].at) >= a.cfg.Window {
		a.samples = a.samples[1:]
	}
	base := a.samples[0]
	a.load.MaxQueued = queued
	a.load.SocketDrops = 0
	if drops > base.drops {
		a.load.SocketDrops = drops - base.drops
	}
	elapsed := now.Sub(base.at)
	if !ok || elapsed <= 0 {
		return
	}
	cores := float64(cpu-base.cpu) / float64(elapsed)
	a.load.Cores = cores
	a.load.CPU = cores / a.procs
	// Calls admitted within the window are not fully in the measurement
	// yet; the others are.
	if settled := live - len(a.admitted); settled > 0 && elapsed >= a.cfg.Window/2 {
		a.load.CallCPU = a.load.CPU / float64(settled)
	}
}

// resetLocked forgets the window (no call is live: the next burst starts
// from a fresh measurement, but keeps the learnt cost of a call).
func (a *admission) resetLocked() {
	a.samples = a.samples[:0]
	a.load.CPU, a.load.Cores, a.load.SocketDrops, a.load.MaxQueued = 0, 0, 0, 0
}

// Load returns what admission control measured last. With admission control
// off (or before the first call) it is zero but for Refused.
func (m *Manager) Load() Load { return m.adm.snapshot() }

// startSampler starts the sampler goroutine unless it runs. Called with
// m.mu held, when a call was admitted.
func (m *Manager) startSampler() {
	a := m.adm
	if a.cfg.off() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running {
		return
	}
	a.running = true
	a.stop = make(chan struct{})
	a.done = make(chan struct{})
	go m.sampler(a.stop, a.done)
}

// stopSampler stops the sampler goroutine and waits for it.
func (m *Manager) stopSampler() {
	a := m.adm
	a.mu.Lock()
	if !a.running {
		a.mu.Unlock()
		return
	}
	a.running = false
	stop, done := a.stop, a.done
	a.mu.Unlock()
	close(stop)
	<-done
}

// sampler measures the load a few times per window while calls are live.
// It ends when the last call ended (or on stop).
func (m *Manager) sampler(stop, done chan struct{}) {
	defer close(done)
	a := m.adm
	t := time.NewTicker(a.cfg.Window / admissionSamples)
	defer t.Stop()
	measure := func() bool {
		calls := m.liveCalls()
		var drops uint64
		queued := 0
		for _, c := range calls {
			s := c.Stats()
			drops += s.Audio.SocketDrops + s.Video.SocketDrops
			for _, k := range s.Sinks {
				queued = max(queued, k.Queued)
			}
		}
		a.sample(drops, queued, len(calls))
		return len(calls) > 0
	}
	measure()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if measure() {
				continue
			}
			a.mu.Lock()
			select {
			case <-stop:
				// stopSampler is waiting for us.
				a.mu.Unlock()
				return
			default:
			}
			a.running = false
			a.resetLocked()
			a.mu.Unlock()
			return
		}
	}
}
