//go:build interop

package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
)

// TestInteropMemberNATS runs three Members, each on its own connection to
// a real nats-server: the shared view, uniqueness and requests across
// connections; a restart of nats-server (every heartbeat expires
// meanwhile) fails no call and loses no write; then a node dies and its
// calls are reported once, within TTL + about a second, with their keys
// freed.
func TestInteropMemberNATS(t *testing.T) {
	checkLeaks(t)
	const ttl = 1500 * time.Millisecond
	srv := testenv.StartNATS(t, testenv.NATSConfig{})
	tc := &testCluster{t: t}
	join := func(id string) *Member {
		n := newNATSReg(t, srv.URL(), "members", ttl)
		return tc.join(id, func(c *Config) { c.Registry, c.Bus = n, n })
	}
	a, b, c := join("A"), join("B"), join("C")
	require.NoError(t, a.Serve(func(_ context.Context, req []byte) []byte { return append([]byte("A: "), req...) }))
	aids := claimCalls(t, a, "a", 3)
	claimCalls(t, b, "b", 2)
	eventually(t, "every view has the 5 calls established", func() bool {
		return established(a) == 5 && established(b) == 5 && established(c) == 5
	})
	_, err := c.Claim(bg(t), Call{ID: "c-dup", Stream: "rtmp://h/live/" + aids[0]})
	var ce *ClaimError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, ClaimError{Kind: KindStream, CallID: aids[0], Node: "A"}, *ce)
	ans, err := c.Request(bg(t), "A", []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, "A: hello", string(ans))

	// nats-server goes away for longer than the TTL, then comes back on
	// the same port and store.
	srv.Stop()
	eventually(t, "the members see the outage", func() bool { return !a.Connected() && !b.Connected() && !c.Connected() })
	a.Set(Call{ID: aids[0], Status: "HOLD"})
	a.Set(Call{ID: "a-in", Status: "ESTABLISHED", Name: "incoming"})
	down := time.Now()
	eventually(t, "more than a TTL", func() bool { return time.Since(down) > ttl+500*time.Millisecond })
	srv.Restart(t)
	eventually(t, "everyone back", func() bool { return a.Connected() && b.Connected() && c.Connected() })
	eventually(t, "A's changes stored and seen by C", func() bool {
		e, _ := c.Call(aids[0])
		in, _ := c.ByName("incoming")
		return e.Status == "HOLD" && in.Node == "A"
	})

	// A dies; B and C have been connected long enough to judge.
	eventually(t, "the survivors' liveness rule is active", func() bool {
		return time.Since(b.connectedSince()) > ttl+time.Second && time.Since(c.connectedSince()) > ttl+time.Second
	})
	require.Zero(t, tc.orp.count(), "the restart failed calls")
	killed := time.Now()
	a.kill()
	eventually(t, "A's calls reported", func() bool { return tc.orp.count() >= 4 })
	took := time.Since(killed)
	eventually(t, "A's entries deleted", func() bool { return onNode(t, b.reg, "A") == 0 })
	got, by := tc.orp.snapshot()
	require.Len(t, got, 4, "%v", by)
	for _, o := range got {
		require.Len(t, by[o.ID], 1)
		require.Equal(t, "A", o.Node)
		require.Equal(t, "node A stopped answering", o.Reason)
	}
	t.Logf("A's 4 calls reported %v after its death (TTL %v), by %v", took, ttl, by)
	require.Less(t, took, ttl+2*time.Second)
	for _, id := range aids {
		_, err := c.Claim(bg(t), Call{ID: id, Stream: "rtmp://h/live/" + id, Name: "name-" + id})
		require.NoError(t, err, "the keys are free")
	}
	_, err = b.Request(bg(t), "A", nil)
	require.True(t, errors.Is(err, ErrNoNode) || errors.Is(err, ErrTimeout), "%v", err)
	require.Equal(t, 2, onNode(t, b.reg, "B"))
	t.Logf("B's metrics: %v", metrics(t, b))

	// Close deletes the node's entries and its heartbeat (here, before
	// the cleanups: the restarted nats-server is stopped first).
	require.NoError(t, b.Close(bg(t)))
	require.NoError(t, c.Close(bg(t)))
	all, err := a.reg.List(bg(t))
	require.NoError(t, err)
	require.Empty(t, all)
	nodes, err := a.reg.Nodes(bg(t))
	require.NoError(t, err)
	require.Empty(t, nodes)
}
