package rtmpsink

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeClock is a manual clock: After reports each wait on waits and fires
// only when the test advances time past it.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	pending []fakeTimer
	waits   chan time.Duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1_700_000_000, 0), waits: make(chan time.Duration, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	ch := make(chan time.Time, 1)
	c.pending = append(c.pending, fakeTimer{at: c.now.Add(d), ch: ch})
	c.mu.Unlock()
	c.waits <- d
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.pending[:0]
	for _, t := range c.pending {
		if !t.at.After(c.now) {
			t.ch <- c.now
		} else {
			keep = append(keep, t)
		}
	}
	c.pending = keep
}

// TestBackoffScheduleAndGiveUp drives the reconnect loop with a fake clock:
// waits double from BackoffMin up to BackoffMax (±20 % jitter), and the sink
// gives up once the next wait would pass GiveUpAfter.
func TestBackoffScheduleAndGiveUp(t *testing.T) {
	clk := newFakeClock()
	var mu sync.Mutex
	dials := 0
	dial := func(context.Context, *cfgOK) (publisher, error) {
		mu.Lock()
		dials++
		mu.Unlock()
		return nil, errors.New("connection refused")
	}
	l := newStatusLog()
	cfg := testConfig(l)
	cfg.BackoffMin, cfg.BackoffMax, cfg.GiveUpAfter = time.Second, 8*time.Second, 30*time.Second
	s, err := newSink(cfg, dial, clk)
	require.NoError(t, err)
	defer s.Close(context.Background())

	var waited time.Duration
	nominal := []time.Duration{1, 2, 4, 8, 8, 8, 8, 8} // seconds
	var got []time.Duration
	timeout := time.After(20 * time.Second)
loop:
	for {
		select {
		case d := <-clk.waits:
			i := len(got)
			require.Less(t, i, len(nominal), "too many attempts: %v", got)
			want := nominal[i] * time.Second
			assert.InDelta(t, float64(want), float64(d), 0.2*float64(want)+1, "wait %d", i)
			got = append(got, d)
			waited += d
			clk.Advance(d)
		case <-l.ch:
			if s.Status() == StatusFailed {
				break loop
			}
		case <-timeout:
			t.Fatalf("stuck after waits %v", got)
		}
	}
	l.wait(t, StatusFailed)
	assert.Equal(t, []Status{StatusWait, StatusFailed}, l.statuses())
	mu.Lock()
	assert.Equal(t, len(got)+1, dials, "one dial per wait plus the first")
	mu.Unlock()
	assert.LessOrEqual(t, waited, 30*time.Second)
	assert.Greater(t, waited, 30*time.Second-10*time.Second)
}
