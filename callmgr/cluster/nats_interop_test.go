//go:build interop

package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/internal/testenv"
)

// natsConn connects to srv, reconnecting forever (a restart is survived),
// closed by the test's cleanup.
func natsConn(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		nats.RetryOnFailedConnect(false))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// newNATSReg returns a NATS registry of cluster name on its own
// connection to url, closed by the test's cleanup.
func newNATSReg(t *testing.T, url, name string, ttl time.Duration) *NATS {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := NewNATS(ctx, natsConn(t, url), NATSConfig{Cluster: name, TTL: ttl})
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Close() })
	return n
}

// TestInteropNATSRegistry runs the Registry conformance suite on NATS:
// each subtest a fresh cluster name on one nats-server, two connections.
func TestInteropNATSRegistry(t *testing.T) {
	leakCheck(t)
	srv := testenv.StartNATS(t, testenv.NATSConfig{})
	var seq int
	testRegistry(t, func(t *testing.T) (Registry, Registry) {
		seq++
		name := fmt.Sprint("reg", seq)
		return newNATSReg(t, srv.URL(), name, 2*time.Second), newNATSReg(t, srv.URL(), name, 2*time.Second)
	})
}

// TestInteropNATSBus runs the Bus conformance suite on NATS.
func TestInteropNATSBus(t *testing.T) {
	leakCheck(t)
	srv := testenv.StartNATS(t, testenv.NATSConfig{})
	var seq int
	testBus(t, func(t *testing.T) (Bus, Bus) {
		seq++
		name := fmt.Sprint("bus", seq)
		return newNATSReg(t, srv.URL(), name, 0), newNATSReg(t, srv.URL(), name, 0)
	})
}

// TestInteropNATSBigRequest: a request larger than the server takes is
// refused as such, not as an unreachable bus.
func TestInteropNATSBigRequest(t *testing.T) {
	a, ctx := natsOne(t, "big")
	_, err := a.Request(ctx, "n", make([]byte, a.nc.MaxPayload()+1))
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrUnavailable)
	require.Contains(t, err.Error(), "larger than the server takes")
}

// TestInteropNATSRestart restarts nats-server (same port, same store)
// under a registry: the entries and claims survive, operations during
// the outage fail with ErrUnavailable, and Watch resumes by itself,
// giving the present entries again and the deletions it missed.
func TestInteropNATSRestart(t *testing.T) {
	leakCheck(t)
	srv := testenv.StartNATS(t, testenv.NATSConfig{})
	a := newNATSReg(t, srv.URL(), "restart", 2*time.Second)
	b := newNATSReg(t, srv.URL(), "restart", 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	keep, err := a.Create(ctx, Call{ID: "keep", Node: "n1", Status: "ESTABLISHED", Stream: "rtmp://x/live/k", Name: "kept"})
	require.NoError(t, err)
	gone, err := a.Create(ctx, Call{ID: "gone", Node: "n1", Status: "ESTABLISHED", Name: "gone-name"})
	require.NoError(t, err)
	w := newWatchLog()
	require.NoError(t, a.Watch(ctx, w.fn))
	w.waitFor(t, []string{"keep ESTABLISHED", "gone ESTABLISHED"})

	srv.Stop()
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	_, err = a.Get(short, "keep")
	cancelShort()
	require.ErrorIs(t, err, ErrUnavailable, "the server is down")
	srv.Restart(t)

	// b deletes "gone" as soon as it can: a's watcher may miss it while
	// it is re-created; it must learn it all the same.
	require.Eventually(t, func() bool {
		return b.Delete(ctx, gone) == nil
	}, 20*time.Second, 100*time.Millisecond)
	got, err := b.Get(ctx, "keep")
	require.NoError(t, err)
	require.Equal(t, keep.Revision, got.Revision, "the entry survived the restart")
	_, err = b.Create(ctx, Call{ID: "other", Name: "kept"})
	require.ErrorIs(t, err, ErrExists, "the claim survived the restart")

	keep.Status = "AFTER"
	_, err = b.Update(ctx, keep)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		log := w.get()
		return len(log) > 0 && log[len(log)-1] == "keep AFTER" && slicesContain(log, "gone deleted")
	}, 20*time.Second, 50*time.Millisecond, "watch after the restart")
	log := w.get()
	require.Equal(t, []string{"keep ESTABLISHED", "gone ESTABLISHED"}, log[:2])
	for _, l := range log[2:] {
		// "other" is the refused Create's entry, written then undone.
		require.Contains(t, []string{"keep ESTABLISHED", "gone ESTABLISHED", "gone deleted", "keep AFTER",
			"other ", "other deleted"}, l)
	}
	t.Logf("watch log across the restart: %q", log)
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestInteropNATSRaceCreate has two processes' worth of registries (two
// connections) race to create one callId and one stream many times:
// exactly one wins each time.
func TestInteropNATSRaceCreate(t *testing.T) {
	leakCheck(t)
	srv := testenv.StartNATS(t, testenv.NATSConfig{})
	a := newNATSReg(t, srv.URL(), "race", 0)
	b := newNATSReg(t, srv.URL(), "race", 0)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, r := range []Registry{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = r.Create(ctx, Call{ID: fmt.Sprint("call", round), Node: fmt.Sprint("node", i),
					Stream: fmt.Sprint("rtmp://h/live/s", round)})
			}()
		}
		wg.Wait()
		wins := 0
		for _, err := range errs {
			if err == nil {
				wins++
				continue
			}
			var ce *ClaimError
			require.ErrorAs(t, err, &ce, "round %d", round)
		}
		require.Equal(t, 1, wins, "round %d: %v", round, errs)

		// Distinct ids, one stream: one wins, the loser leaves nothing.
		for i, r := range []Registry{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = r.Create(ctx, Call{ID: fmt.Sprintf("s%d-%d", round, i), Node: fmt.Sprint("node", i),
					Stream: fmt.Sprint("rtmp://h/live/shared", round)})
			}()
		}
		wg.Wait()
		wins = 0
		for i, err := range errs {
			if err == nil {
				wins++
				continue
			}
			require.ErrorIs(t, err, ErrExists)
			_, gerr := a.Get(ctx, fmt.Sprintf("s%d-%d", round, i))
			require.ErrorIs(t, gerr, ErrNotFound, "the loser's entry is gone")
		}
		require.Equal(t, 1, wins, "round %d: %v", round, errs)
	}
	list, err := a.List(ctx)
	require.NoError(t, err)
	require.Len(t, list, 40)
}

// TestInteropNATSStaleClaim leaves what a process dying in the middle of
// Create or Delete leaves (an entry without its claims, a claim without
// its entry): nothing stays taken for ever.
func TestInteropNATSStaleClaim(t *testing.T) {
	a, ctx := natsOne(t, "stale")

	// A claim whose call has no entry (died between Delete's steps).
	_, err := a.calls.Create(ctx, nameKey("orphan-name"), []byte(`{"id":"dead","node":"n0"}`))
	require.NoError(t, err)
	// A claim holding junk.
	_, err = a.calls.Create(ctx, streamKey(streamHash("S")), []byte(`not json`))
	require.NoError(t, err)
	_, err = a.Create(ctx, Call{ID: "new", Node: "n1", Name: "orphan-name", Stream: "S"})
	require.NoError(t, err, "stale claims are taken over")
	_, err = a.Create(ctx, Call{ID: "new2", Name: "orphan-name"})
	var ce *ClaimError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, ClaimError{Kind: KindName, CallID: "new", Node: "n1"}, *ce)

	// An entry written without its claims (died between Create's steps):
	// its Delete frees what it names, and nothing else.
	data, err := encodeEntry(Call{ID: "half", Node: "n0", Name: "half-name", StreamHash: streamHash("S")})
	require.NoError(t, err)
	_, err = a.calls.Create(ctx, callKey("half"), data)
	require.NoError(t, err)
	require.NoError(t, a.Delete(ctx, Call{ID: "half"}))
	_, err = a.Create(ctx, Call{ID: "x", Stream: "S"})
	require.ErrorIs(t, err, ErrExists, "Delete of half left the stream of new alone")
	_, err = a.Create(ctx, Call{ID: "x", Name: "half-name"})
	require.NoError(t, err)

	// Junk entries are left out of List and Watch, and the watch's checks
	// do not take them for missed changes.
	a.checkEvery = 50 * time.Millisecond
	w := newWatchLog()
	require.NoError(t, a.Watch(ctx, w.fn))
	_, err = a.calls.Create(ctx, callKey("junk"), []byte(`{"id":"not junk"}`))
	require.NoError(t, err)
	list, err := a.List(ctx)
	require.NoError(t, err)
	ids := make([]string, 0, len(list))
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	require.Equal(t, []string{"new", "x"}, ids)
	_, err = a.Create(ctx, Call{ID: "after-junk", Status: "S"})
	require.NoError(t, err)
	w.waitFor(t, []string{"new ", "x ", "after-junk S"})
	time.Sleep(10 * a.checkEvery) // checks enough to re-create the watcher if they were fooled
	require.Zero(t, a.resyncs.Load(), "a junk entry is no missed change")
	require.Equal(t, []string{"new ", "x ", "after-junk S"}, w.get())
}

// TestInteropNATSConfig checks NewNATS's refusals.
func TestInteropNATSConfig(t *testing.T) {
	leakCheck(t)
	srv := testenv.StartNATS(t, testenv.NATSConfig{})
	nc := natsConn(t, srv.URL())
	ctx := context.Background()
	for _, cfg := range []NATSConfig{
		{Cluster: "a.b"}, {Cluster: "a b"}, {Cluster: ">"}, {TTL: time.Millisecond}, {Replicas: -1}, {Timeout: -1},
	} {
		_, err := NewNATS(ctx, nc, cfg)
		require.Error(t, err, "%+v", cfg)
	}
	_, err := NewNATS(ctx, nil, NATSConfig{})
	require.Error(t, err)
	// Three replicas on one server: refused by the server, said clearly.
	_, err = NewNATS(ctx, nc, NATSConfig{Cluster: "r3", Replicas: 3})
	require.ErrorIs(t, err, ErrUnavailable)
	require.True(t, strings.Contains(err.Error(), "r3_calls"), "%v", err)
	// No JetStream at all.
	nc.Close()
	_, err = NewNATS(ctx, nc, NATSConfig{})
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrUnavailable), "%v", err)
}

// natsOne starts a nats-server for t and returns a registry of cluster
// name on it and a context bounding the test (30 s), with the leak check.
func natsOne(t *testing.T, name string) (*NATS, context.Context) {
	leakCheck(t)
	srv := testenv.StartNATS(t, testenv.NATSConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return newNATSReg(t, srv.URL(), name, 0), ctx
}

// leakCheck checks, after every other cleanup of t (the server stopped,
// the connections closed), that t left no goroutine behind.
func leakCheck(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// TestInteropNATSSweep checks that the delete markers of ended calls are
// swept, and that sweeping a marker never removes the key written again
// after it.
func TestInteropNATSSweep(t *testing.T) {
	a, ctx := natsOne(t, "sweep")
	msgs := func() uint64 {
		st, err := a.js.Stream(ctx, "KV_"+a.calls.Bucket())
		require.NoError(t, err)
		info, err := st.Info(ctx)
		require.NoError(t, err)
		return info.State.Msgs
	}
	for i := range 5 {
		c, err := a.Create(ctx, Call{ID: fmt.Sprint("ended", i), Stream: fmt.Sprint("S", i), Name: fmt.Sprint("N", i)})
		require.NoError(t, err)
		require.NoError(t, a.Delete(ctx, c))
	}
	live, err := a.Create(ctx, Call{ID: "live", Name: "L"})
	require.NoError(t, err)
	require.Equal(t, uint64(15+2), msgs(), "15 markers and 2 live keys")

	require.NoError(t, a.sweep(ctx, time.Hour))
	require.Equal(t, uint64(17), msgs(), "the markers are younger than an hour")
	require.NoError(t, a.sweep(ctx, 0))
	require.Equal(t, uint64(2), msgs(), "only the live keys are left")
	got, err := a.Get(ctx, "live")
	require.NoError(t, err)
	require.Equal(t, live.Revision, got.Revision)

	// A marker swept after its key was written again: the new value stays.
	c, err := a.Create(ctx, Call{ID: "again", Name: "A"})
	require.NoError(t, err)
	require.NoError(t, a.Delete(ctx, c))
	_, err = a.calls.Get(ctx, callKey("again"))
	require.ErrorIs(t, err, jetstream.ErrKeyNotFound)
	hist, err := a.calls.History(ctx, callKey("again"))
	require.NoError(t, err)
	markerRev := hist[len(hist)-1].Revision()
	c2, err := a.Create(ctx, Call{ID: "again", Name: "A", Status: "second"})
	require.NoError(t, err)
	require.NoError(t, a.purgeMarker(ctx, callKey("again"), markerRev))
	got, err = a.Get(ctx, "again")
	require.NoError(t, err)
	require.Equal(t, c2.Revision, got.Revision)
	require.Equal(t, "second", got.Status)
	_, err = a.Create(ctx, Call{ID: "x", Name: "A"})
	require.ErrorIs(t, err, ErrExists, "the new claim stays too")
}

// TestInteropNATSJetStreamCluster runs the registry on a JetStream
// cluster of three nats-servers with three replicas, and stops one
// server: the entries, the claims and the watch live on.
func TestInteropNATSJetStreamCluster(t *testing.T) {
	leakCheck(t)
	var routes []string
	ports := make([]int, 3)
	for i := range ports {
		ports[i] = testenv.FreePort(t, "tcp")
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
	}
	var srvs []*testenv.NATS
	var urls []string
	for i := range ports {
		srv := testenv.StartNATS(t, testenv.NATSConfig{Args: []string{"-n", fmt.Sprint("s", i),
			"--cluster_name", "sipstream-test", "--cluster", routes[i], "--routes", strings.Join(routes, ",")}})
		srvs = append(srvs, srv)
		urls = append(urls, srv.URL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	open := func() *NATS {
		nc := natsConn(t, strings.Join(urls, ","))
		var reg *NATS
		require.Eventually(t, func() bool { // until JetStream has elected its leader
			var err error
			actx, acancel := context.WithTimeout(ctx, 5*time.Second)
			defer acancel()
			reg, err = NewNATS(actx, nc, NATSConfig{Cluster: "ha", Replicas: 3, TTL: 2 * time.Second})
			if err != nil {
				t.Logf("NewNATS: %v", err)
			}
			return err == nil
		}, 30*time.Second, 250*time.Millisecond)
		t.Cleanup(func() { _ = reg.Close() })
		return reg
	}
	a, b := open(), open()

	c, err := a.Create(ctx, Call{ID: "ha-1", Node: "n1", Status: "ESTABLISHED", Name: "ha-name"})
	require.NoError(t, err)
	require.NoError(t, a.Heartbeat(ctx, NodeInfo{ID: "n1"}))
	w := newWatchLog()
	require.NoError(t, b.Watch(ctx, w.fn))
	w.waitFor(t, []string{"ha-1 ESTABLISHED"})

	// Stop the server a is connected to (or any: it makes no difference to
	// three replicas).
	victim := 0
	for i, u := range urls {
		if u == a.nc.ConnectedUrl() {
			victim = i
		}
	}
	srvs[victim].Stop()
	t.Logf("stopped server s%d (a's); b is on %s", victim, b.nc.ConnectedUrl())
	c.Status = "AFTER"
	require.Eventually(t, func() bool {
		var err error
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		defer acancel()
		u, err := a.Update(actx, c)
		if err != nil {
			t.Logf("Update: %v", err)
			return false
		}
		c = u
		return true
	}, 30*time.Second, 250*time.Millisecond, "the cluster of two takes writes")
	got, err := b.Get(ctx, "ha-1")
	require.NoError(t, err)
	require.Equal(t, c.Revision, got.Revision)
	_, err = b.Create(ctx, Call{ID: "other", Name: "ha-name"})
	require.ErrorIs(t, err, ErrExists, "the claim lives on")
	stored := time.Now()
	require.Eventually(t, func() bool {
		return slicesContain(w.get(), "ha-1 AFTER")
	}, 30*time.Second, 50*time.Millisecond, "the watch goes on: %q", w.get())
	t.Logf("the watch gave the change %v after it was stored: %q", time.Since(stored).Round(time.Millisecond), w.get())
	require.Eventually(t, func() bool {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		defer acancel()
		if err := a.Heartbeat(actx, NodeInfo{ID: "n1"}); err != nil {
			t.Logf("Heartbeat: %v", err)
			return false
		}
		nodes, err := b.Nodes(actx)
		return err == nil && len(nodes) == 1
	}, 30*time.Second, 250*time.Millisecond, "heartbeats go on")
}
