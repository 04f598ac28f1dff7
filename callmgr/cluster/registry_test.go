package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// regPair returns two handles on one fresh, empty store (for Memory the
// same Memory twice; for NATS two connections), both closed by the test's
// cleanup, and the store's TTL.
type regPair func(t *testing.T) (a, b Registry)

// busPair returns two handles on one fresh bus, closed by the test's
// cleanup.
type busPair func(t *testing.T) (a, b Bus)

// oddIDs are call ids and names a registry must take as they are.
var oddIDs = []string{
	"plain", "with space", "a/b/c", "a.b.c", "sub.>", "*", "ünïcødé",
	"x=y&z", "", "----", "__", "€", string(make([]byte, 300)),
}

// testRegistry is the conformance suite every Registry passes.
func testRegistry(t *testing.T, newPair regPair) {
	ctx := func(t *testing.T) context.Context {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return c
	}

	t.Run("CreateGetList", func(t *testing.T) {
		a, b := newPair(t)
		c := Call{ID: "call-1", Node: "n1", Status: "TRYING", Stream: "rtmp://h/app/key-secret",
			Name: "stream1", Pushes: []string{"p1", "p2"}, Object: json.RawMessage(`{"callId":"call-1"}`)}
		got, err := a.Create(ctx(t), c)
		require.NoError(t, err)
		require.NotZero(t, got.Revision)
		require.Equal(t, streamHash(c.Stream), got.StreamHash)
		require.Equal(t, c.Stream, got.Stream, "Create returns c as given")

		g, err := b.Get(ctx(t), "call-1")
		require.NoError(t, err)
		want := got
		want.Stream = "" // never stored
		require.Equal(t, want, g)

		list, err := b.List(ctx(t))
		require.NoError(t, err)
		require.Equal(t, []Call{want}, list)

		_, err = b.Get(ctx(t), "missing")
		require.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("Claims", func(t *testing.T) {
		a, b := newPair(t)
		c1, err := a.Create(ctx(t), Call{ID: "c1", Node: "n1", Stream: "S1", Name: "N1"})
		require.NoError(t, err)

		_, err = b.Create(ctx(t), Call{ID: "c1", Node: "n2"})
		var ce *ClaimError
		require.ErrorAs(t, err, &ce)
		require.ErrorIs(t, err, ErrExists)
		require.Equal(t, ClaimError{Kind: KindCallID, CallID: "c1", Node: "n1"}, *ce)

		_, err = b.Create(ctx(t), Call{ID: "c2", Node: "n2", Stream: "S1", Name: "N2"})
		require.ErrorAs(t, err, &ce)
		require.Equal(t, ClaimError{Kind: KindStream, CallID: "c1", Node: "n1"}, *ce)
		require.NotContains(t, err.Error(), "S1", "the stream may hold a key")

		_, err = b.Create(ctx(t), Call{ID: "c2", Node: "n2", Stream: "S2", Name: "N1"})
		require.ErrorAs(t, err, &ce)
		require.Equal(t, ClaimError{Kind: KindName, CallID: "c1", Node: "n1"}, *ce)

		// The refused creates left nothing: c2, S2 and N2 are free.
		_, err = a.Get(ctx(t), "c2")
		require.ErrorIs(t, err, ErrNotFound)
		c2, err := b.Create(ctx(t), Call{ID: "c2", Node: "n2", Stream: "S2", Name: "N2"})
		require.NoError(t, err)
		require.Greater(t, c2.Revision, c1.Revision)

		list, err := a.List(ctx(t))
		require.NoError(t, err)
		require.Len(t, list, 2)
	})

	t.Run("Update", func(t *testing.T) {
		a, b := newPair(t)
		c, err := a.Create(ctx(t), Call{ID: "u", Node: "n1", Status: "TRYING", Stream: "S", Name: "N"})
		require.NoError(t, err)

		c.Status = "ESTABLISHED"
		c.Name = "other" // claims cannot change
		c2, err := b.Update(ctx(t), c)
		require.NoError(t, err)
		require.Greater(t, c2.Revision, c.Revision)
		require.Equal(t, "N", c2.Name)
		require.Equal(t, streamHash("S"), c2.StreamHash)

		_, err = a.Update(ctx(t), c) // c's revision is stale now
		require.ErrorIs(t, err, ErrRevision)

		c2.Revision = 0
		c2.Status = "FINISH"
		c2.Final = true
		c3, err := a.Update(ctx(t), c2)
		require.NoError(t, err)
		g, err := b.Get(ctx(t), "u")
		require.NoError(t, err)
		require.Equal(t, c3.Revision, g.Revision)
		require.Equal(t, "FINISH", g.Status)
		require.True(t, g.Final)

		_, err = b.Create(ctx(t), Call{ID: "v", Name: "N"})
		require.ErrorIs(t, err, ErrExists, "the name stays claimed")

		_, err = a.Update(ctx(t), Call{ID: "missing", Status: "x"})
		require.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("Delete", func(t *testing.T) {
		a, b := newPair(t)
		c, err := a.Create(ctx(t), Call{ID: "d", Node: "n1", Stream: "S", Name: "N"})
		require.NoError(t, err)
		c2, err := a.Update(ctx(t), c)
		require.NoError(t, err)

		require.ErrorIs(t, b.Delete(ctx(t), c), ErrRevision)
		_, err = b.Get(ctx(t), "d")
		require.NoError(t, err, "a refused Delete leaves the entry")

		require.NoError(t, b.Delete(ctx(t), c2))
		_, err = a.Get(ctx(t), "d")
		require.ErrorIs(t, err, ErrNotFound)
		require.NoError(t, b.Delete(ctx(t), c2), "no entry is not an error")

		// Every key is free again.
		_, err = b.Create(ctx(t), Call{ID: "d", Node: "n2", Stream: "S", Name: "N"})
		require.NoError(t, err)
		require.NoError(t, a.Delete(ctx(t), Call{ID: "d"}), "revision 0 deletes whatever it is")
		_, err = a.Create(ctx(t), Call{ID: "e", Node: "n2", Stream: "S", Name: "N"})
		require.NoError(t, err)
	})

	t.Run("OddIDs", func(t *testing.T) {
		a, b := newPair(t)
		for i, id := range oddIDs {
			if id == "" {
				_, err := a.Create(ctx(t), Call{ID: id})
				require.Error(t, err, "an empty call id")
				continue
			}
			c, err := a.Create(ctx(t), Call{ID: id, Node: "n", Name: id, Stream: id})
			require.NoError(t, err, "id %q", id)
			g, err := b.Get(ctx(t), id)
			require.NoError(t, err, "id %q", id)
			require.Equal(t, id, g.ID)
			require.Equal(t, id, g.Name)
			_, err = b.Create(ctx(t), Call{ID: fmt.Sprint("other", i), Name: id})
			require.ErrorIs(t, err, ErrExists, "name %q", id)
			require.NoError(t, b.Delete(ctx(t), c))
		}
		list, err := a.List(ctx(t))
		require.NoError(t, err)
		require.Empty(t, list)
	})

	t.Run("RaceCreate", func(t *testing.T) {
		a, b := newPair(t)
		regs := []Registry{a, b}
		race := func(mk func(i int) Call) (won []Call, lost []error) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := regs[i%2].Create(ctx(t), mk(i))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						lost = append(lost, err)
					} else {
						won = append(won, c)
					}
				}()
			}
			wg.Wait()
			return won, lost
		}
		won, lost := race(func(i int) Call {
			return Call{ID: "same", Node: fmt.Sprint("n", i), Stream: fmt.Sprint("S", i)}
		})
		require.Len(t, won, 1)
		for _, err := range lost {
			var ce *ClaimError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, ClaimError{Kind: KindCallID, CallID: "same", Node: won[0].Node}, *ce)
		}
		won, lost = race(func(i int) Call {
			return Call{ID: fmt.Sprint("id", i), Node: fmt.Sprint("n", i), Stream: "shared", Name: fmt.Sprint("N", i)}
		})
		require.Len(t, won, 1)
		for _, err := range lost {
			require.ErrorIs(t, err, ErrExists)
		}
		list, err := a.List(ctx(t))
		require.NoError(t, err)
		require.Len(t, list, 2, "the losers left nothing: %v", list)
		// The losers' names are free.
		for i := range 8 {
			id := fmt.Sprint("new", i)
			if won[0].Name == fmt.Sprint("N", i) {
				continue
			}
			_, err := b.Create(ctx(t), Call{ID: id, Name: fmt.Sprint("N", i)})
			require.NoError(t, err)
		}
	})

	t.Run("Watch", func(t *testing.T) {
		a, b := newPair(t)
		_, err := a.Create(ctx(t), Call{ID: "before", Node: "n1", Status: "S0"})
		require.NoError(t, err)

		w := newWatchLog()
		wctx, cancel := context.WithCancel(ctx(t))
		require.NoError(t, b.Watch(wctx, w.fn))
		require.Equal(t, []string{"before S0"}, w.get(), "present entries given before Watch returns")

		c, err := a.Create(ctx(t), Call{ID: "x", Node: "n1", Status: "S1", Object: json.RawMessage(`{"a":1}`)})
		require.NoError(t, err)
		c.Status = "S2"
		c, err = a.Update(ctx(t), c)
		require.NoError(t, err)
		require.NoError(t, a.Delete(ctx(t), c))
		want := []string{"before S0", "x S1", "x S2", "x deleted"}
		w.waitFor(t, want)
		last := w.lastCall()
		require.Equal(t, Call{ID: "x"}, last, "a deletion sets only ID")

		// A second watcher sees the same present state.
		w2 := newWatchLog()
		require.NoError(t, a.Watch(wctx, w2.fn))
		require.Equal(t, []string{"before S0"}, w2.get())

		// After its ctx ends, a watcher is told nothing more.
		cancel()
		w.waitStopped(t)
		_, err = a.Create(ctx(t), Call{ID: "after", Node: "n1", Status: "S3"})
		require.NoError(t, err)
		w3 := newWatchLog()
		w3ctx, cancel3 := context.WithCancel(ctx(t))
		defer cancel3()
		require.NoError(t, a.Watch(w3ctx, w3.fn))
		require.ElementsMatch(t, []string{"after S3", "before S0"}, w3.get())
		require.Equal(t, want, w.get())
	})

	t.Run("Heartbeats", func(t *testing.T) {
		a, b := newPair(t)
		ttl := a.TTL()
		require.Positive(t, ttl)
		start := time.Now()
		n2 := NodeInfo{ID: "n2", URL: "http://127.0.0.1:2", Calls: 3, MaxCalls: 10, Load: 0.5,
			Started: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		require.NoError(t, b.Heartbeat(ctx(t), n2))
		require.NoError(t, a.Heartbeat(ctx(t), NodeInfo{ID: "n1"}))
		nodes, err := a.Nodes(ctx(t))
		require.NoError(t, err)
		require.Len(t, nodes, 2)
		require.Equal(t, "n1", nodes[0].ID)
		got := nodes[1]
		require.False(t, got.Seen.IsZero())
		require.WithinDuration(t, time.Now(), got.Seen, 5*time.Second)
		got.Seen = time.Time{}
		require.True(t, got.Started.Equal(n2.Started))
		got.Started = n2.Started
		require.Equal(t, n2, got)

		require.NoError(t, a.Leave(ctx(t), "n1"))
		require.NoError(t, a.Leave(ctx(t), "never-seen"))
		nodes, err = b.Nodes(ctx(t))
		require.NoError(t, err)
		require.Len(t, nodes, 1)

		// n2 stops beating: it is gone about TTL after its last heartbeat.
		deadline := time.Now().Add(ttl + 5*time.Second)
		for {
			nodes, err = b.Nodes(ctx(t))
			require.NoError(t, err)
			if len(nodes) == 0 {
				break
			}
			require.True(t, time.Now().Before(deadline), "n2 still alive %v after its heartbeat (TTL %v)", time.Since(start), ttl)
			time.Sleep(ttl / 10)
		}
		require.GreaterOrEqual(t, time.Since(start), ttl*9/10, "n2 expired before its TTL")
		t.Logf("a heartbeat of TTL %v was gone %v after it was written", ttl, time.Since(start).Round(time.Millisecond))

		require.Error(t, a.Heartbeat(ctx(t), NodeInfo{ID: "bad id"}))
		require.Error(t, a.Heartbeat(ctx(t), NodeInfo{ID: ""}))
	})

	t.Run("Close", func(t *testing.T) {
		a, b := newPair(t)
		w := newWatchLog()
		require.NoError(t, a.Watch(ctx(t), w.fn))
		require.NoError(t, a.Close())
		require.NoError(t, a.Close(), "Close may be called again")
		w.waitStopped(t)
		_, err := a.Create(ctx(t), Call{ID: "z"})
		require.ErrorIs(t, err, ErrClosed)
		_, err = a.List(ctx(t))
		require.ErrorIs(t, err, ErrClosed)
		require.ErrorIs(t, a.Watch(ctx(t), w.fn), ErrClosed)
		_ = b
	})
}

// watchLog records what a watcher is told, as "id status" or "id deleted".
type watchLog struct {
	mu      sync.Mutex
	log     []string
	last    Call
	changed chan struct{}
}

func newWatchLog() *watchLog { return &watchLog{changed: make(chan struct{}, 1)} }

func (w *watchLog) fn(c Call, deleted bool) {
	w.mu.Lock()
	if deleted {
		w.log = append(w.log, c.ID+" deleted")
	} else {
		w.log = append(w.log, c.ID+" "+c.Status)
	}
	w.last = c
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

func (w *watchLog) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.log...)
}

func (w *watchLog) lastCall() Call {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// waitFor waits (at most 10 s) until the log is want.
func (w *watchLog) waitFor(t *testing.T, want []string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		got := w.get()
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		require.LessOrEqual(t, len(got), len(want), "watch gave %q, want %q", got, want)
		select {
		case <-w.changed:
		case <-deadline:
			require.Equal(t, want, got, "watch")
		}
	}
}

// waitStopped gives the watcher's goroutine a moment to see its end.
func (w *watchLog) waitStopped(t *testing.T) {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
}

// testBus is the conformance suite every Bus passes.
func testBus(t *testing.T, newPair busPair) {
	t.Run("RequestAnswer", func(t *testing.T) {
		a, b := newPair(t)
		stop, err := a.Serve("node-1", func(ctx context.Context, req []byte) []byte {
			return append([]byte("echo:"), req...)
		})
		require.NoError(t, err)
		defer stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := fmt.Appendf(nil, "req %d", i)
				ans, err := b.Request(ctx, "node-1", req)
				if err != nil {
					t.Errorf("request %d: %v", i, err)
					return
				}
				if !bytes.Equal(ans, append([]byte("echo:"), req...)) {
					t.Errorf("request %d: answer %q", i, ans)
				}
			}()
		}
		wg.Wait()
		big := bytes.Repeat([]byte("x"), 64<<10)
		ans, err := a.Request(ctx, "node-1", big)
		require.NoError(t, err, "a node may ask itself")
		require.Len(t, ans, len(big)+5)
	})

	t.Run("NoNode", func(t *testing.T) {
		a, b := newPair(t)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := b.Request(ctx, "nobody", []byte("x"))
		require.ErrorIs(t, err, ErrNoNode)

		stop, err := a.Serve("n", func(context.Context, []byte) []byte { return []byte("ok") })
		require.NoError(t, err)
		_, err = b.Request(ctx, "n", nil)
		require.NoError(t, err)
		stop()
		stop() // idempotent
		_, err = b.Request(ctx, "n", nil)
		require.ErrorIs(t, err, ErrNoNode, "after stop")

		_, err = a.Serve("bad id", func(context.Context, []byte) []byte { return nil })
		require.Error(t, err)
		_, err = a.Serve("bad.id", func(context.Context, []byte) []byte { return nil })
		require.Error(t, err)
	})

	t.Run("Timeout", func(t *testing.T) {
		a, b := newPair(t)
		handlerDone := make(chan error, 1)
		stop, err := a.Serve("slow", func(ctx context.Context, req []byte) []byte {
			select {
			case <-ctx.Done():
				handlerDone <- ctx.Err()
				time.Sleep(200 * time.Millisecond) // answer after the requester gave up
			case <-time.After(10 * time.Second):
				handlerDone <- errors.New("the handler's context did not end")
			}
			return []byte("late")
		})
		require.NoError(t, err)
		defer stop()
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = b.Request(ctx, "slow", []byte("x"))
		require.ErrorIs(t, err, ErrTimeout)
		require.Less(t, time.Since(start), 3*time.Second)
		select {
		case err := <-handlerDone:
			require.Error(t, err) // context.DeadlineExceeded or Canceled
		case <-time.After(10 * time.Second):
			t.Fatal("the handler never returned")
		}
	})

	t.Run("Close", func(t *testing.T) {
		a, b := newPair(t)
		_, err := a.Serve("c", func(context.Context, []byte) []byte { return []byte("ok") })
		require.NoError(t, err)
		require.NoError(t, a.Close())
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if b != a {
			_, err = b.Request(ctx, "c", nil)
			require.ErrorIs(t, err, ErrNoNode, "a closed bus serves nothing")
		}
		_, err = a.Request(ctx, "c", nil)
		require.ErrorIs(t, err, ErrClosed)
	})
}

func TestMemoryRegistry(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	testRegistry(t, func(t *testing.T) (Registry, Registry) {
		m := NewMemory(time.Second, nil)
		t.Cleanup(func() { _ = m.Close() })
		return m, m
	})
}

func TestMemoryBus(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	testBus(t, func(t *testing.T) (Bus, Bus) {
		b := NewMemoryBus()
		t.Cleanup(func() { _ = b.Close() })
		return b, b
	})
}

func TestMemoryFail(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	m := NewMemory(time.Second, nil)
	defer m.Close()
	_, err := m.Create(ctx, Call{ID: "a", Status: "S1"})
	require.NoError(t, err)
	w := newWatchLog()
	require.NoError(t, m.Watch(ctx, w.fn))

	cut := errors.New("cable cut")
	m.Fail(cut)
	_, err = m.Create(ctx, Call{ID: "b"})
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, err, cut)
	_, err = m.Get(ctx, "a")
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, m.Heartbeat(ctx, NodeInfo{ID: "n"}), ErrUnavailable)
	_, err = m.Nodes(ctx)
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, m.Watch(ctx, w.fn), ErrUnavailable)

	m.Fail(nil)
	w.waitFor(t, []string{"a S1", "a S1"})
	_, err = m.Create(ctx, Call{ID: "b", Status: "S2"})
	require.NoError(t, err)
	w.waitFor(t, []string{"a S1", "a S1", "b S2"})

	bus := NewMemoryBus()
	defer bus.Close()
	stop, err := bus.Serve("n", func(context.Context, []byte) []byte { return nil })
	require.NoError(t, err)
	defer stop()
	bus.Fail(cut)
	_, err = bus.Request(ctx, "n", nil)
	require.ErrorIs(t, err, ErrUnavailable)
	bus.Fail(nil)
	_, err = bus.Request(ctx, "n", nil)
	require.NoError(t, err)
}

func TestMemoryClock(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	m := NewMemory(3*time.Second, clock)
	defer m.Close()
	ctx := context.Background()
	require.NoError(t, m.Heartbeat(ctx, NodeInfo{ID: "n1"}))
	advance(2 * time.Second)
	require.NoError(t, m.Heartbeat(ctx, NodeInfo{ID: "n2"}))
	nodes, err := m.Nodes(ctx)
	require.NoError(t, err)
	require.Len(t, nodes, 2)
	require.Equal(t, now.Add(-2*time.Second), nodes[0].Seen)
	advance(time.Second) // n1's heartbeat is 3 s old: dead
	nodes, err = m.Nodes(ctx)
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	require.Equal(t, "n2", nodes[0].ID)
	require.Equal(t, 3*time.Second, m.TTL())
	require.Equal(t, 6*time.Second, NewMemory(0, nil).TTL())
}
