package callmgr

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeLoad is a clock and a process CPU time the test moves.
type fakeLoad struct {
	mu  sync.Mutex
	now time.Time
	cpu time.Duration
}

func newFakeLoad() *fakeLoad { return &fakeLoad{now: time.Unix(1000, 0)} }

func (f *fakeLoad) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeLoad) cpuTime() (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cpu, true
}

// run advances the clock by d while the process uses cores CPUs.
func (f *fakeLoad) run(d time.Duration, cores float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.cpu += time.Duration(cores * float64(d))
}

func newTestAdmission(f *fakeLoad, cfg AdmissionConfig) *admission {
	cfg, err := cfg.validate()
	if err != nil {
		panic(err)
	}
	a := newAdmission(cfg, f.clock, f.cpuTime)
	a.procs = 2
	return a
}

// TestAdmissionCPU: with 10 calls using one of two cores, a call costs 5 %;
// calls being set up count at that cost before the CPU shows them, so a
// burst stops at the limit instead of overshooting it.
func TestAdmissionCPU(t *testing.T) {
	f := newFakeLoad()
	a := newTestAdmission(f, AdmissionConfig{MaxCPU: 0.8, Window: 2 * time.Second})
	for range 10 {
		require.NoError(t, a.check(true), "no measurement yet: admitted")
	}
	a.sample(0, 0, 10)
	// The 10 calls become visible in the CPU over the next window.
	for range 8 {
		f.run(250*time.Millisecond, 1.0)
		a.sample(0, 0, 10)
	}
	l := a.snapshot()
	assert.InDelta(t, 0.5, l.CPU, 1e-9)
	assert.InDelta(t, 1.0, l.Cores, 1e-9)
	assert.InDelta(t, 0.05, l.CallCPU, 1e-9, "one call's share")

	admitted := 0
	var err error
	for range 20 {
		if err = a.check(true); err != nil {
			break
		}
		admitted++
	}
	assert.Equal(t, 6, admitted, "0.5 + 6 × 0.05 = 0.8: the seventh would pass the limit")
	require.ErrorIs(t, err, ErrOverloaded)
	var oe *OverloadError
	require.ErrorAs(t, err, &oe)
	assert.Contains(t, oe.Reason, "CPU 50% of 2 cores")
	assert.Contains(t, oe.Reason, "limit 80%")
	assert.Equal(t, uint64(1), a.snapshot().Refused)

	// A check without recording (StartCall's early check) admits nothing.
	assert.ErrorIs(t, a.check(false), ErrOverloaded)

	// The 16 calls settle at 0.8 cores... and then the load falls: 16
	// calls using 0.8 of 2 cores cost 2.5 % each; there is room again.
	for range 9 {
		f.run(250*time.Millisecond, 0.8)
		a.sample(0, 0, 16)
	}
	l = a.snapshot()
	assert.InDelta(t, 0.4, l.CPU, 1e-9)
	assert.InDelta(t, 0.025, l.CallCPU, 1e-9)
	require.NoError(t, a.check(true))
}

// TestAdmissionDropsAndQueues: socket drops within the window and a long
// sink queue refuse calls whatever the CPU says; both clear with time.
func TestAdmissionDropsAndQueues(t *testing.T) {
	f := newFakeLoad()
	a := newTestAdmission(f, AdmissionConfig{MaxCPU: 0.8, Window: time.Second})
	a.sample(100, 0, 1) // drops counted before: the base
	f.run(250*time.Millisecond, 0.1)
	a.sample(103, 0, 1)
	err := a.check(true)
	require.ErrorIs(t, err, ErrOverloaded)
	assert.Contains(t, err.Error(), "dropped 3 received packets")

	// A window later without new drops: admitted.
	for range 5 {
		f.run(250*time.Millisecond, 0.1)
		a.sample(103, 0, 1)
	}
	require.NoError(t, a.check(true))

	f.run(250*time.Millisecond, 0.1)
	a.sample(103, 51, 2)
	err = a.check(true)
	require.ErrorIs(t, err, ErrOverloaded)
	assert.Contains(t, err.Error(), "51 frames waiting")

	// IgnoreDrops and a negative MaxQueued turn those checks off.
	b := newTestAdmission(f, AdmissionConfig{MaxCPU: 0.8, Window: time.Second, IgnoreDrops: true, MaxQueued: -1})
	b.sample(0, 0, 1)
	f.run(250*time.Millisecond, 0.1)
	b.sample(10, 500, 1)
	require.NoError(t, b.check(true))
}

func TestAdmissionConfig(t *testing.T) {
	for _, c := range []AdmissionConfig{{MaxCPU: -0.1}, {MaxCPU: 1.5}, {MaxCPU: 0.5, Window: -time.Second}} {
		_, err := c.validate()
		assert.Error(t, err, "%+v", c)
	}
	c, err := AdmissionConfig{MaxCPU: 0.5}.validate()
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, c.Window)
	assert.Equal(t, 50, c.MaxQueued)
	// Off: everything is admitted and nothing is measured.
	a := newAdmission(AdmissionConfig{}, nil, nil)
	for range 100 {
		require.NoError(t, a.check(true))
	}
}

// TestManagerRefusesWhenOverloaded: through StartCall, a saturated CPU
// refuses the next call with ErrOverloaded; the live call is untouched, and
// the sampler stops with the last call.
func TestManagerRefusesWhenOverloaded(t *testing.T) {
	f := newFakeLoad()
	e := newTestEnv(t, func(c *Config) {
		c.Admission = AdmissionConfig{MaxCPU: 0.5, Window: time.Hour}
		c.admissionClock = f.clock
		c.admissionCPU = f.cpuTime
	})
	ctx := ctxT(t)
	c1, err := e.m.StartCall(ctx, CallParams{CallID: "a1", Callee: "answer@h"})
	require.NoError(t, err)
	require.NoError(t, c1.WaitEstablished(ctx))
	a := e.m.adm
	require.Eventually(t, func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		return len(a.samples) == 1
	}, 10*time.Second, 5*time.Millisecond, "the sampler took its first measurement")

	f.run(time.Hour, 0.9*a.procs) // 90 % of the CPUs over the window
	a.sample(0, 0, 1)
	_, err = e.m.StartCall(ctx, CallParams{CallID: "a2", Callee: "answer@h"})
	require.ErrorIs(t, err, ErrOverloaded)
	var oe *OverloadError
	require.True(t, errors.As(err, &oe))
	assert.Contains(t, oe.Reason, "CPU 90%")
	_, found := e.m.Call("a2")
	assert.False(t, found, "the refused call is not registered")
	assert.Equal(t, StatusEstablished, c1.Info().Status, "the live call goes on")
	assert.Equal(t, uint64(1), e.m.Load().Refused)

	require.NoError(t, e.m.Terminate(ctx, "a1"))
	waitDone(t, c1)
}
