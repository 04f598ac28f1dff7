package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The TTL of the member tests: short, so that deaths are seen quickly,
// long enough for a loaded machine running -race.
const testTTL = 900 * time.Millisecond

// orphans records the OnOrphan calls of several members.
type orphans struct {
	mu    sync.Mutex
	calls []Call
	by    map[string][]string // call id -> the members that reported it
}

func (o *orphans) hook(member string) func(Call) {
	return func(c Call) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if o.by == nil {
			o.by = make(map[string][]string)
		}
		o.calls = append(o.calls, c)
		o.by[c.ID] = append(o.by[c.ID], member)
	}
}

func (o *orphans) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.calls)
}

func (o *orphans) snapshot() ([]Call, map[string][]string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	by := make(map[string][]string, len(o.by))
	for k, v := range o.by {
		by[k] = append([]string(nil), v...)
	}
	return append([]Call(nil), o.calls...), by
}

// cluster is a Memory registry and bus with members on them.
type testCluster struct {
	t   *testing.T
	reg *Memory
	bus *MemoryBus
	orp orphans
}

func newTestCluster(t *testing.T) *testCluster { return newTestClusterTTL(t, testTTL) }

func newTestClusterTTL(t *testing.T, ttl time.Duration) *testCluster {
	c := &testCluster{t: t, reg: NewMemory(ttl, nil), bus: NewMemoryBus()}
	t.Cleanup(func() {
		c.bus.Close()
		c.reg.Close()
	})
	return c
}

// join starts a member of id; edit may change its Config. It is closed
// at the end of the test (if the test did not close or kill it).
func (c *testCluster) join(id string, edit func(*Config)) *Member {
	c.t.Helper()
	cfg := Config{ID: id, Registry: c.reg, Bus: c.bus, OnOrphan: c.orp.hook(id), Linger: time.Hour}
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, err := Join(ctx, cfg)
	require.NoError(c.t, err)
	c.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = m.Close(ctx)
	})
	return m
}

// eventually waits (up to 10 s) until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkLeaks checks, after every cleanup of t, that the goroutines are
// back to those of now.
func checkLeaks(t *testing.T) {
	base := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, base) })
}

func bg(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestMemberJoinChecksConfig(t *testing.T) {
	checkLeaks(t)
	reg, bus := NewMemory(testTTL, nil), NewMemoryBus()
	defer reg.Close()
	defer bus.Close()
	ctx := bg(t)
	for name, cfg := range map[string]Config{
		"no id":        {Registry: reg, Bus: bus},
		"bad id":       {ID: "a.b", Registry: reg, Bus: bus},
		"no registry":  {ID: "a", Bus: bus},
		"no bus":       {ID: "a", Registry: reg},
		"slow beat":    {ID: "a", Registry: reg, Bus: bus, Heartbeat: testTTL},
		"neg beat":     {ID: "a", Registry: reg, Bus: bus, Heartbeat: -time.Second},
		"neg linger":   {ID: "a", Registry: reg, Bus: bus, Linger: -time.Second},
		"reg away (1)": {ID: "a", Registry: reg, Bus: bus},
	} {
		if name == "reg away (1)" {
			reg.Fail(errors.New("partition"))
		}
		m, err := Join(ctx, cfg)
		require.Error(t, err, name)
		require.Nil(t, m, name)
		if name == "reg away (1)" {
			require.ErrorIs(t, err, ErrUnavailable)
			reg.Fail(nil)
		}
	}
}

func TestMemberSharedView(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	var changesMu sync.Mutex
	var changes []string
	a := tc.join("A", func(c *Config) { c.Linger = 200 * time.Millisecond })
	b := tc.join("B", func(c *Config) {
		c.OnChange = func(c Call, deleted bool) {
			changesMu.Lock()
			defer changesMu.Unlock()
			changes = append(changes, fmt.Sprintf("%s %s %v", c.ID, c.Status, deleted))
		}
	})
	ctx := bg(t)

	got, err := a.Claim(ctx, Call{ID: "c1", Node: "ignored", Status: "TRYING", Stream: "rtmp://h/app/key", Name: "s1"})
	require.NoError(t, err)
	require.Equal(t, "A", got.Node)
	require.NotZero(t, got.Revision)
	require.NotEmpty(t, got.StreamHash)
	require.NotContains(t, got.StreamHash, "key")

	// B sees it, by id, name and (after a Set) push.
	eventually(t, "B sees c1", func() bool { _, ok := b.Call("c1"); return ok })
	c, ok := b.ByName("s1")
	require.True(t, ok)
	require.Equal(t, "A", c.Node)
	a.Set(Call{ID: "c1", Status: "ESTABLISHED", Pushes: []string{"p1"}, Object: []byte(`{"x":1}`)})
	eventually(t, "B sees c1 established", func() bool { c, _ := b.ByPush("p1"); return c.Status == "ESTABLISHED" })
	c, _ = b.Call("c1")
	require.Equal(t, "s1", c.Name, "the claims stay")
	require.JSONEq(t, `{"x":1}`, string(c.Object))
	// A's own view has its latest state at once.
	a.Set(Call{ID: "c1", Status: "HOLD", Pushes: []string{"p1"}})
	c, _ = a.Call("c1")
	require.Equal(t, "HOLD", c.Status)

	// Uniqueness across the cluster.
	_, err = b.Claim(ctx, Call{ID: "c1"})
	var ce *ClaimError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, KindCallID, ce.Kind)
	require.Equal(t, "A", ce.Node)
	_, err = b.Claim(ctx, Call{ID: "c2", Stream: "rtmp://h/app/key"})
	require.ErrorAs(t, err, &ce)
	require.Equal(t, KindStream, ce.Kind)
	require.Equal(t, "c1", ce.CallID)
	_, err = b.Claim(ctx, Call{ID: "c2", Name: "s1"})
	require.ErrorAs(t, err, &ce)
	require.Equal(t, KindName, ce.Kind)

	// An incoming call: Set without Claim creates it.
	b.Set(Call{ID: "in1", Status: "RINGING", Name: "s2"})
	eventually(t, "A sees in1", func() bool { c, ok := a.ByName("s2"); return ok && c.Node == "B" })

	// Drop frees the keys at once.
	_, err = b.Claim(ctx, Call{ID: "c3", Name: "s3"})
	require.NoError(t, err)
	require.NoError(t, b.Drop(ctx, "c3"))
	_, err = tc.reg.Get(ctx, "c3")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = a.Claim(ctx, Call{ID: "c3", Name: "s3"})
	require.NoError(t, err)
	require.ErrorIs(t, b.Drop(ctx, "c3"), ErrNotFound, "B cannot drop A's call")

	// A final entry lingers, then goes with its claims.
	a.Set(Call{ID: "c1", Status: "FINISH", Final: true})
	eventually(t, "B sees c1 final", func() bool { c, _ := b.Call("c1"); return c.Final })
	eventually(t, "c1 deleted after its linger", func() bool { _, ok := b.Call("c1"); return !ok })
	_, err = b.Claim(ctx, Call{ID: "c1", Stream: "rtmp://h/app/key", Name: "s1"})
	require.NoError(t, err)

	ids := func(cs []Call) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID+"@"+c.Node)
		}
		return out
	}
	eventually(t, "both views agree", func() bool {
		return fmt.Sprint(ids(a.Calls())) == "[c1@B c3@A in1@B]" && fmt.Sprint(ids(b.Calls())) == "[c1@B c3@A in1@B]"
	})
	changesMu.Lock()
	require.Contains(t, changes, "c1 ESTABLISHED false")
	require.Contains(t, changes, "c1 FINISH false")
	require.Contains(t, changes, "c1  true")
	changesMu.Unlock()

	// Close deletes the node's entries and leaves.
	require.NoError(t, b.Close(ctx))
	all, err := tc.reg.List(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"c3@A"}, ids(all))
	nodes, err := tc.reg.Nodes(ctx)
	require.NoError(t, err)
	require.Len(t, nodes, 1)
	require.ErrorIs(t, b.Close(ctx), nil, "Close again gives the first result")
	_, err = b.Claim(ctx, Call{ID: "x"})
	require.ErrorIs(t, err, ErrClosed)
}

func TestMemberRequest(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	a, b := tc.join("A", nil), tc.join("B", nil)
	require.NoError(t, a.Serve(func(ctx context.Context, req []byte) []byte { return append([]byte("A got "), req...) }))
	require.Error(t, a.Serve(func(context.Context, []byte) []byte { return nil }), "served once")
	ans, err := b.Request(bg(t), "A", []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, "A got hello", string(ans))
	_, err = a.Request(bg(t), "B", nil)
	require.ErrorIs(t, err, ErrNoNode)
	require.NoError(t, a.Close(bg(t)))
	_, err = b.Request(bg(t), "A", nil)
	require.ErrorIs(t, err, ErrNoNode, "Close stops serving")
}

// claimCalls claims n calls named prefix+i on m with streams and names.
func claimCalls(t *testing.T, m *Member, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		_, err := m.Claim(bg(t), Call{ID: id, Status: "TRYING", Stream: "rtmp://h/live/" + id, Name: "name-" + id})
		require.NoError(t, err)
		m.Set(Call{ID: id, Status: "ESTABLISHED"})
		ids = append(ids, id)
	}
	return ids
}

// established counts the ESTABLISHED calls in m's view.
func established(m *Member) int {
	k := 0
	for _, c := range m.Calls() {
		if c.Status == "ESTABLISHED" {
			k++
		}
	}
	return k
}

// onNode counts the entries of node in the registry.
func onNode(t *testing.T, reg Registry, node string) int {
	all, err := reg.List(bg(t))
	require.NoError(t, err)
	k := 0
	for _, c := range all {
		if c.Node == node {
			k++
		}
	}
	return k
}

func TestMemberDeadNodeOrphansOnce(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	a := tc.join("A", nil)
	b, c := tc.join("B", nil), tc.join("C", nil)
	ids := claimCalls(t, a, "a", 6)
	cids := claimCalls(t, c, "c", 2)
	a.Set(Call{ID: "a-ended", Status: "FINISH", Final: true}) // a final entry: deleted, not reported
	eventually(t, "A's calls stored", func() bool {
		all, _ := tc.reg.List(bg(t))
		est := 0
		for _, c := range all {
			if c.Status == "ESTABLISHED" || c.Final {
				est++
			}
		}
		return est == 9
	})
	eventually(t, "B and C see A's calls", func() bool { return len(b.Calls()) == 9 && len(c.Calls()) == 9 })

	killed := time.Now()
	a.kill()
	eventually(t, "A's calls reported", func() bool { return tc.orp.count() >= len(ids) })
	took := time.Since(killed)
	eventually(t, "A's entries deleted", func() bool { return onNode(t, tc.reg, "A") == 0 })
	got, by := tc.orp.snapshot()
	require.Len(t, got, len(ids), "one report per call: %v", by)
	for _, id := range ids {
		require.Len(t, by[id], 1, "call %s reported by %v", id, by[id])
	}
	for _, o := range got {
		require.Equal(t, "A", o.Node)
		require.Equal(t, "FAILED", o.Status)
		require.True(t, o.Final)
		require.Equal(t, "node A stopped answering", o.Reason)
	}
	// Within about TTL + a second of the last heartbeat.
	require.Less(t, took, testTTL+1500*time.Millisecond, "reported after %v", took)
	t.Logf("A's %d calls reported %v after its death (TTL %v)", len(ids), took, testTTL)

	// The keys are free: the same callId, stream and name can be claimed.
	for _, id := range ids {
		_, err := b.Claim(bg(t), Call{ID: id, Stream: "rtmp://h/live/" + id, Name: "name-" + id})
		require.NoError(t, err)
	}
	// C's calls live on, and no more reports come after a while
	// (B's next checks see B's own claims, not A's).
	require.Equal(t, 2, onNode(t, tc.reg, "C"))
	for _, id := range cids {
		got, ok := b.Call(id)
		require.True(t, ok)
		require.False(t, got.Final)
	}
	require.Equal(t, len(ids), tc.orp.count())

	var orphaned float64
	for _, m := range []*Member{b, c} {
		orphaned += metricOf(t, m, "sipstream_cluster_orphaned_total")
	}
	require.Equal(t, float64(len(ids)), orphaned)
	eventually(t, "B sees 2 live nodes", func() bool { return len(b.Nodes()) == 2 })
}

// metrics gathers m's metrics: the value of each series by its name
// and labels ("name" or "name{label=value}").
func metrics(t *testing.T, m *Member) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(m))
	families, err := reg.Gather()
	require.NoError(t, err)
	out := make(map[string]float64)
	for _, f := range families {
		for _, s := range f.GetMetric() {
			key := f.GetName()
			for _, l := range s.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			out[key] = value(s)
		}
	}
	return out
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Counter != nil:
		return s.Counter.GetValue()
	}
	return 0
}

// metricOf is one unlabelled metric of m.
func metricOf(t *testing.T, m *Member, name string) float64 {
	t.Helper()
	v, ok := metrics(t, m)[name]
	require.True(t, ok, "no metric %s", name)
	return v
}

func TestMemberRegistryOutageFailsNothing(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	var connMu sync.Mutex
	var conn []bool
	a := tc.join("A", func(c *Config) {
		c.OnConnection = func(ok bool) {
			connMu.Lock()
			conn = append(conn, ok)
			connMu.Unlock()
		}
	})
	b, c := tc.join("B", nil), tc.join("C", nil)
	aids := claimCalls(t, a, "a", 3)
	claimCalls(t, b, "b", 3)
	cids := claimCalls(t, c, "c", 2)
	eventually(t, "every call seen everywhere", func() bool {
		return established(a) == 8 && established(b) == 8 && established(c) == 8
	})

	// The registry goes away for three TTLs: every heartbeat expires.
	tc.reg.Fail(errors.New("nats-server restarting"))
	eventually(t, "A sees the outage", func() bool { return !a.Connected() && !b.Connected() && !c.Connected() })
	// Changes meanwhile are kept: an incoming call, a status, an end.
	a.Set(Call{ID: "a-in", Status: "ESTABLISHED", Name: "incoming"})
	a.Set(Call{ID: aids[0], Status: "HOLD"})
	a.Set(Call{ID: aids[1], Status: "FINISH", Final: true})
	require.Equal(t, 3.0, metricOf(t, a, "sipstream_cluster_pending_writes"))
	require.Equal(t, 0.0, metricOf(t, a, "sipstream_cluster_connected"))
	outage := time.Now()
	eventually(t, "three TTLs", func() bool { return time.Since(outage) > 3*testTTL })
	tc.reg.Fail(nil)

	eventually(t, "everyone back", func() bool { return a.Connected() && b.Connected() && c.Connected() })
	eventually(t, "A's changes stored", func() bool {
		e0, err0 := tc.reg.Get(bg(t), aids[0])
		e1, err1 := tc.reg.Get(bg(t), aids[1])
		in, err2 := tc.reg.Get(bg(t), "a-in")
		return err0 == nil && err1 == nil && err2 == nil && e0.Status == "HOLD" && e1.Final && in.Name == "incoming"
	})
	eventually(t, "B sees them", func() bool {
		c, _ := b.Call(aids[0])
		in, _ := b.ByName("incoming")
		return c.Status == "HOLD" && in.ID == "a-in"
	})
	eventually(t, "nothing pending", func() bool {
		return metricOf(t, a, "sipstream_cluster_pending_writes") == 0
	})

	// Now a real death: once C's calls are reported, the survivors'
	// liveness rule has been running, and it failed nobody else's.
	c.kill()
	eventually(t, "C's calls reported", func() bool { return tc.orp.count() >= len(cids) })
	eventually(t, "C's entries deleted", func() bool { return onNode(t, tc.reg, "C") == 0 })
	got, _ := tc.orp.snapshot()
	require.Len(t, got, len(cids))
	for _, o := range got {
		require.Equal(t, "C", o.Node, "only the dead node's calls fail")
	}
	require.Equal(t, 4, onNode(t, tc.reg, "A"))
	require.Equal(t, 3, onNode(t, tc.reg, "B"))
	connMu.Lock()
	require.Equal(t, []bool{false, true}, conn)
	connMu.Unlock()
	require.Positive(t, metricOf(t, a, "sipstream_cluster_registry_errors_total"))
}

func TestMemberRestartReconciles(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	b := tc.join("B", nil)
	a := tc.join("A", nil)
	ids := claimCalls(t, a, "a", 4)
	a.Set(Call{ID: "a-ended", Status: "FINISH", Final: true})
	eventually(t, "A's calls stored", func() bool { return onNode(t, tc.reg, "A") == 5 })
	eventually(t, "B sees them", func() bool { return len(b.Calls()) == 5 })
	killed := time.Now()
	a.kill()

	// A comes back at once (before its heartbeat expires) and still has
	// a1 live (say its process kept it: a reload).
	a2 := tc.join("A", func(c *Config) { c.Live = func(id string) bool { return id == "a1" } })
	got, by := tc.orp.snapshot()
	require.Len(t, got, 3, "reported by Join: %v", by)
	for _, o := range got {
		require.Equal(t, "node A restarted", o.Reason)
		require.Equal(t, []string{"A"}, by[o.ID])
		require.NotEqual(t, "a1", o.ID)
	}
	all, err := tc.reg.List(bg(t))
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Equal(t, "a1", all[0].ID)
	require.Equal(t, "ESTABLISHED", all[0].Status)
	a2.Set(Call{ID: "a1", Status: "ESTABLISHED"}) // the node holds it again
	eventually(t, "B's view follows", func() bool { return len(b.Calls()) == 1 })
	for _, id := range ids {
		if id != "a1" {
			_, err := b.Claim(bg(t), Call{ID: id, Stream: "rtmp://h/live/" + id})
			require.NoError(t, err, "freed")
		}
	}
	// B saw A alive throughout (same id): nothing more is reported
	// once B's liveness rule has had time to act.
	eventually(t, "a liveness period", func() bool {
		return time.Since(killed) > 2*testTTL && time.Since(b.connectedSince()) > 2*testTTL
	})
	require.Equal(t, 3, tc.orp.count())
}

// connectedSince is when m's present connection began (for tests).
func (m *Member) connectedSince() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.upSince
}

func TestMemberRecreatesEntryDeletedBySurvivor(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	a := tc.join("A", nil)
	claimCalls(t, a, "a", 1)
	eventually(t, "stored", func() bool { c, err := tc.reg.Get(bg(t), "a0"); return err == nil && c.Status == "ESTABLISHED" })
	// A survivor on the other side of a partition took A for dead.
	require.NoError(t, tc.reg.Delete(bg(t), Call{ID: "a0"}))
	eventually(t, "the live call is back", func() bool {
		c, err := tc.reg.Get(bg(t), "a0")
		return err == nil && c.Status == "ESTABLISHED" && c.Name == "name-a0"
	})
	_, err := tc.reg.Create(bg(t), Call{ID: "other", Stream: "rtmp://h/live/a0"})
	require.ErrorIs(t, err, ErrExists, "with its claims")
}

func TestMemberPick(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	info := func(max int, load float64) func(*Config) {
		return func(c *Config) {
			c.Info = func() NodeInfo { return NodeInfo{MaxCalls: max, Load: load, URL: "http://" + c.ID} }
		}
	}
	a := tc.join("A", info(12, 0.5))
	tc.join("B", info(12, 0.2))
	tc.join("C", info(12, 0.9))
	eventually(t, "A sees 3 nodes", func() bool { return len(a.Nodes()) == 3 })

	n, err := a.Pick("")
	require.NoError(t, err)
	require.Equal(t, "B", n.ID, "ties go to the lower load")
	require.Equal(t, "http://B", n.URL)

	// A burst: the view shows none of these calls yet.
	per := map[string]int{"B": 1}
	for range 29 {
		n, err := a.Pick("")
		require.NoError(t, err)
		per[n.ID]++
	}
	require.Equal(t, map[string]int{"A": 10, "B": 10, "C": 10}, per)

	_, err = a.Pick("Z")
	require.ErrorIs(t, err, ErrNotFound)
	n, err = a.Pick("C")
	require.NoError(t, err)
	require.Equal(t, "C", n.ID)
	n, err = a.Pick("C")
	require.NoError(t, err)
	_, err = a.Pick("C")
	require.ErrorIs(t, err, ErrFull)
	require.Contains(t, err.Error(), `node "C" has 12 calls of 12`)
	_, err = a.Pick("")
	require.NoError(t, err)
	_, err = a.Pick("")
	require.NoError(t, err)
	_, err = a.Pick("")
	require.NoError(t, err)
	_, err = a.Pick("")
	require.NoError(t, err)
	_, err = a.Pick("")
	require.ErrorIs(t, err, ErrFull)
}

func TestMemberPickCountsTheView(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	a := tc.join("A", func(c *Config) { c.Info = func() NodeInfo { return NodeInfo{MaxCalls: 3} } })
	b := tc.join("B", func(c *Config) { c.Info = func() NodeInfo { return NodeInfo{MaxCalls: 3} } })
	// B's heartbeat says 0 calls, its entries say 3.
	claimCalls(t, b, "b", 3)
	eventually(t, "A sees B's calls and both nodes", func() bool { return len(a.Calls()) == 3 && len(a.Nodes()) == 2 })
	for range 3 {
		n, err := a.Pick("")
		require.NoError(t, err)
		require.Equal(t, "A", n.ID)
	}
	_, err := a.Pick("")
	require.ErrorIs(t, err, ErrFull)
	_, err = a.Pick("B")
	require.ErrorIs(t, err, ErrFull)

	got := metrics(t, a)
	require.Equal(t, 0.0, got["sipstream_cluster_calls{node=A}"])
	require.Equal(t, 3.0, got["sipstream_cluster_calls{node=B}"])
	require.Equal(t, 2.0, got["sipstream_cluster_nodes"])
	require.Equal(t, 1.0, got["sipstream_cluster_connected"])
	require.Equal(t, 0.0, got["sipstream_cluster_pending_writes"])
	require.Equal(t, 0.0, got["sipstream_cluster_orphaned_total"])
	require.Len(t, got, 7)
}

func TestMemberOrphanCompareAndSet(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	var c *Member
	var e Call
	inner := make(chan struct{})
	b := tc.join("B", func(cfg *Config) {
		cfg.OnOrphan = func(o Call) {
			tc.orp.hook("B")(o)
			// C acts on the same (now stale) entry while B's report is
			// still under way: its compare-and-set must lose.
			c.orphan(bg(t), e, "node A stopped answering")
			close(inner)
		}
	})
	c = tc.join("C", nil)
	var err error
	e, err = tc.reg.Create(bg(t), Call{ID: "x", Node: "A", Status: "ESTABLISHED", Name: "nx"})
	require.NoError(t, err)
	b.orphan(bg(t), e, "node A stopped answering")
	<-inner
	got, by := tc.orp.snapshot()
	require.Len(t, got, 1, "%v", by)
	require.Equal(t, []string{"B"}, by["x"])
	_, err = tc.reg.Get(bg(t), "x")
	require.ErrorIs(t, err, ErrNotFound)
	// A final entry is deleted without a report.
	e, err = tc.reg.Create(bg(t), Call{ID: "y", Node: "A", Status: "FINISH", Final: true})
	require.NoError(t, err)
	c.orphan(bg(t), e, "node A stopped answering")
	_, err = tc.reg.Get(bg(t), "y")
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, 1, tc.orp.count())
}

// flakyBeats fails the heartbeats of one node while hold is set.
type flakyBeats struct {
	Registry
	hold atomic.Bool
}

func (f *flakyBeats) Heartbeat(ctx context.Context, n NodeInfo) error {
	if f.hold.Load() {
		return fmt.Errorf("%w: still reconnecting", ErrUnavailable)
	}
	return f.Registry.Heartbeat(ctx, n)
}

// A node that comes back a little later than the others after an outage
// of the registry (its client reconnects later) keeps its calls: the
// others have not been connected long enough to judge.
func TestMemberSlowReturnAfterOutage(t *testing.T) {
	checkLeaks(t)
	const ttl = 1500 * time.Millisecond
	tc := newTestClusterTTL(t, ttl)
	a := tc.join("A", func(c *Config) { c.Heartbeat = 100 * time.Millisecond })
	slow := &flakyBeats{Registry: tc.reg}
	b := tc.join("B", func(c *Config) { c.Registry, c.Heartbeat = slow, 100*time.Millisecond })
	claimCalls(t, b, "b", 2)
	eventually(t, "A sees B's calls", func() bool { return established(a) == 2 })

	tc.reg.Fail(errors.New("nats-server restarting"))
	eventually(t, "the outage seen", func() bool { return !a.Connected() && !b.Connected() })
	outage := time.Now()
	eventually(t, "B's heartbeat expired", func() bool { return time.Since(outage) > ttl })
	slow.hold.Store(true)
	tc.reg.Fail(nil)
	healed := time.Now()
	eventually(t, "A back", a.Connected)
	// B reconnects 900 ms after the registry came back: A would have
	// judged it dead by then were it not for the liveness rule.
	eventually(t, "B's reconnection delay", func() bool { return time.Since(healed) > 900*time.Millisecond })
	slow.hold.Store(false)
	eventually(t, "B back", b.Connected)
	eventually(t, "A judged for a while", func() bool { return time.Since(a.connectedSince()) > 2*ttl })
	require.Zero(t, tc.orp.count(), "B's live calls were reported")
	require.Equal(t, 2, onNode(t, tc.reg, "B"))
}

// An OnOrphan that takes long (a webhook to a slow server) does not hold
// up the member's heartbeats: it is not taken for dead meanwhile.
func TestMemberSlowOnOrphanKeepsBeating(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	a := tc.join("A", nil)
	var lapses []time.Duration
	var calls atomic.Int32
	tc.join("B", func(c *Config) {
		c.OnOrphan = func(Call) {
			if calls.Add(1) > 1 {
				return
			}
			start := time.Now()
			for time.Since(start) < 3*testTTL {
				nodes, err := tc.reg.Nodes(bg(t))
				if err != nil || len(nodes) != 1 || nodes[0].ID != "B" {
					lapses = append(lapses, time.Since(start))
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	})
	claimCalls(t, a, "a", 2)
	a.kill()
	eventually(t, "both calls reported", func() bool { return calls.Load() == 2 })
	require.Empty(t, lapses, "B's heartbeat lapsed while its OnOrphan ran")
}

// noWatch is a registry whose Watch fails.
type noWatch struct{ Registry }

func (noWatch) Watch(context.Context, func(Call, bool)) error {
	return fmt.Errorf("%w: watch refused", ErrUnavailable)
}

func TestMemberJoinFailsCleanly(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	_, err := Join(bg(t), Config{ID: "A", Registry: noWatch{tc.reg}, Bus: tc.bus})
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorContains(t, err, "watching the registry")
	nodes, err := tc.reg.Nodes(bg(t))
	require.NoError(t, err)
	require.Empty(t, nodes, "the first heartbeat is taken back")
}

func TestMemberCloseWhileRegistryAway(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	a := tc.join("A", nil)
	claimCalls(t, a, "a", 2)
	tc.reg.Fail(errors.New("partition"))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := a.Close(ctx)
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, a.Close(bg(t)), ErrUnavailable, "the first result again")
	tc.reg.Fail(nil)
	// The entries stay (a node that could not leave is a dead node for
	// the others: they report its calls).
	require.Equal(t, 2, onNode(t, tc.reg, "A"))
}

// An incoming call (Set without Claim) whose keys are taken elsewhere:
// a taken name or stream is given up (the call is shared without it), a
// taken callId keeps the call out of the registry.
func TestMemberSetConflicts(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	a, b := tc.join("A", nil), tc.join("B", nil)
	_, err := a.Claim(bg(t), Call{ID: "dup", Status: "ESTABLISHED", Name: "taken", Stream: "rtmp://h/live/taken"})
	require.NoError(t, err)

	b.Set(Call{ID: "in", Status: "RINGING", Name: "taken", Stream: "rtmp://h/live/taken"})
	eventually(t, "in stored without the claims", func() bool {
		c, err := tc.reg.Get(bg(t), "in")
		return err == nil && c.Node == "B" && c.Status == "RINGING"
	})
	c, _ := tc.reg.Get(bg(t), "in")
	require.Empty(t, c.Name)
	require.Empty(t, c.StreamHash)
	got, ok := b.ByName("taken")
	require.True(t, ok)
	require.Equal(t, "dup", got.ID, "the name still leads to its holder")
	b.Set(Call{ID: "in", Status: "ESTABLISHED", Name: "taken"})
	eventually(t, "in updated", func() bool { c, _ := tc.reg.Get(bg(t), "in"); return c.Status == "ESTABLISHED" })
	c, _ = tc.reg.Get(bg(t), "in")
	require.Empty(t, c.Name, "the claims of a stored entry do not change")

	b.Set(Call{ID: "dup", Status: "RINGING"})
	eventually(t, "the conflict counted", func() bool { return metricOf(t, b, "sipstream_cluster_registry_errors_total") >= 1 })
	got, _ = b.Call("dup")
	require.Equal(t, "A", got.Node, "B's view shows the registered call")
	c, _ = tc.reg.Get(bg(t), "dup")
	require.Equal(t, "A", c.Node)
	require.Equal(t, "ESTABLISHED", c.Status)
	b.Set(Call{ID: "dup", Status: "FINISH", Final: true})
	b.mu.Lock()
	_, held := b.owned["dup"]
	b.mu.Unlock()
	require.False(t, held, "forgotten once ended")
}

// A second process joining with a live node's id is refused: the two
// would report each other's calls as stale.
func TestMemberIDInUse(t *testing.T) {
	checkLeaks(t)
	tc := newTestCluster(t)
	a := tc.join("A", nil)
	claimCalls(t, a, "a", 2)
	_, err := Join(bg(t), Config{ID: "A", Registry: tc.reg, Bus: tc.bus, OnOrphan: tc.orp.hook("A2")})
	require.ErrorIs(t, err, ErrIDInUse)
	require.Zero(t, tc.orp.count())
	require.Equal(t, 2, onNode(t, tc.reg, "A"))
	require.True(t, a.Connected())
}
