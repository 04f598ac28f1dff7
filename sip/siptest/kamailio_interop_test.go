//go:build interop

package siptest

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
)

// startKamailio starts kamailio as a registrar and record-routing proxy
// without authentication or database and returns its address.
func startKamailio(t *testing.T) string {
	t.Helper()
	return testenv.StartKamailio(t, testenv.KamailioConfig{}).Addr
}

// TestInteropKamailioRouting registers a peer with kamailio, calls it
// through kamailio (which record-routes), and has the peer hang up: its BYE
// must follow the route set back through kamailio to the caller.
func TestInteropKamailioRouting(t *testing.T) {
	kam := startKamailio(t)
	callee := newPeer(t, Config{User: "carol", Script: Script{Audio: true}})
	ctx := testCtx(t)
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err = callee.Register(rctx, RegisterRequest{Registrar: kam, Expires: time.Minute})
		cancel()
		if err == nil {
			break
		}
	}
	require.NoError(t, err, "kamailio did not accept the REGISTER")

	u := newUAC(t, "udp")
	d, err := u.call(ctx, "sip:carol@"+kam, u.offer(false).Marshal(), sipgo.AnswerOptions{})
	require.NoError(t, err)
	c, err := callee.WaitCall(ctx)
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	assert.Contains(t, c.Header("Record-Route"), kam)
	readRTP(t, u.audio.rtp, 3) // media flows directly

	require.NoError(t, c.Hangup(ctx))
	select {
	case id := <-u.byes:
		assert.Equal(t, d.InviteRequest.CallID().Value(), id)
	case <-ctx.Done():
		t.Fatal("the BYE did not come back through kamailio")
	}
	assert.NotEmpty(t, callee.Requests("ACK"), "the ACK reached the peer through kamailio")
}
