package callmgr

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCallRequestKeyframe(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	ring, err := e.m.StartCall(ctx, CallParams{CallID: "ringing", Callee: "ring@h"})
	require.NoError(t, err)
	e.log.waitStatus(t, "ringing", StatusRing)
	ring.RequestKeyframe() // before the answer: nothing to ask yet, and no block

	c, err := e.m.StartCall(ctx, CallParams{CallID: "kf", Callee: "answer@h", HasVideo: true})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	sess := e.w.session(c.ID())
	count := func() int {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return sess.kf
	}
	before := count()
	c.RequestKeyframe()
	require.True(t, waitFor(func() bool { return count() > before }), "the session was asked for a keyframe")

	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
	after := count()
	c.RequestKeyframe() // after the end: no request, no panic, no block
	assert.Equal(t, after, count())
	rs := e.w.session(ring.ID())
	rs.mu.Lock()
	assert.Zero(t, rs.kf, "no request before the answer")
	rs.mu.Unlock()
}
