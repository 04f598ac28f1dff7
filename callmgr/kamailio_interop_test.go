//go:build interop

package callmgr

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip/siptest"
)

// startAuthKamailio starts kamailio as a registrar that demands digest
// authentication on REGISTER (passwords kept in the config: no database)
// and a record-routing proxy. INVITEs are not challenged: an INVITE with
// our SDP offer and an Authorization header outgrows sipgo's UDP size
// limit (reported to SIPUA).
func startAuthKamailio(t *testing.T) string {
	t.Helper()
	return testenv.StartKamailio(t, testenv.KamailioConfig{
		Users: map[string]string{"alice-auth": "alice-secret", "bob": "bob-secret"},
	}).Addr
}

// TestInteropKamailio: the REST API's SIP fields against a real registrar
// and proxy. The callee (a siptest peer, "bob") registers with kamailio;
// the Manager registers "alice" (login alice, authentication name
// alice-auth, digest password) with sipRegisterRequired, then calls "bob"
// at the SIP domain through kamailio as outbound proxy. A wrong password
// fails the call with the registrar's status.
func TestInteropKamailio(t *testing.T) {
	kam := startAuthKamailio(t)
	bob, err := siptest.NewPeer(siptest.Config{User: "bob", Script: siptest.Script{Audio: true, Video: true}})
	require.NoError(t, err)
	defer bob.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		err = bob.Register(rctx, siptest.RegisterRequest{Registrar: kam, Password: "bob-secret", Expires: time.Minute})
		rcancel()
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	require.NoError(t, err, "kamailio did not accept bob")

	log := newEventLog()
	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 26000, RTPPortMax: 26999, OnEvent: log.add})
	require.NoError(t, err)
	defer m.Close(context.Background())
	host, port, _ := strings.Cut(kam, ":")
	p, _ := strconv.Atoi(port)
	params := CallParams{CallID: "kam-1", Callee: "bob", SIPLogin: "alice", SIPAuthName: "alice-auth", SIPPassword: "alice-secret",
		SIPDomain: host, SIPPort: p, SIPOutboundProxy: kam, SIPRegisterRequired: true, VisibleName: "Alice", HasAudio: true}
	c, err := m.StartCall(ctx, params)
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx), "status %v", c.Info())
	pc, err := bob.WaitCall(ctx)
	require.NoError(t, err)
	assert.Contains(t, pc.FromURI(), "alice@")
	assert.Equal(t, "Alice", pc.FromDisplayName())
	assert.Contains(t, pc.Header("Record-Route"), kam, "routed through kamailio")
	require.NoError(t, pc.WaitRTP(ctx, media.KindAudio, 10), "silence RTP from our sendrecv audio reaches bob")

	// BYE from the peer comes back through the proxy's route set.
	require.NoError(t, pc.Hangup(ctx))
	waitDone(t, c)
	assert.Equal(t, StatusFinish, c.Info().Status)
	assert.ErrorIs(t, c.Err(), ErrRemoteHangup)

	// A wrong password: REGISTER refused, call FAILED with the status.
	params.CallID, params.SIPPassword = "kam-2", "wrong"
	c, err = m.StartCall(ctx, params)
	require.NoError(t, err)
	waitDone(t, c)
	assert.Equal(t, StatusFailed, c.Info().Status)
	assert.Contains(t, []int{401, 403}, c.Info().SIPStatus, fmt.Sprint(c.Err()))
	assert.NotContains(t, fmt.Sprint(c.Err()), "wrong")
}
