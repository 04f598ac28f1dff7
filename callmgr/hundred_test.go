package callmgr

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/sip/siptest"
)

// TestHundredRealCalls places 100 calls through the real stack (SIP user
// agent, SDP, media sessions, fan-out, RTMP sinks) to a siptest peer and
// ends them every way there is. Afterwards every port is back in the pool,
// nothing is left in the Manager, and goleak (TestMain) finds no goroutine.
func TestHundredRealCalls(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	_, rtmpURL := rtmpServer(t)
	// An RTMP URL nobody listens on: the sink gives up (RTMPGiveUpAfter).
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	deadURL := "rtmp://" + l.Addr().String() + "/live"
	require.NoError(t, l.Close())

	scripts := map[string]siptest.Script{
		"answer": {},
		"busy":   {Reject: 486},
		"reject": {Reject: 503},
		"ring":   {RingForever: true},
		"hangup": {HangupAfter: 200 * time.Millisecond},
	}
	peer, err := siptest.NewPeer(siptest.Config{ScriptFor: func(inv *siptest.Request) siptest.Script {
		user := strings.TrimPrefix(inv.URI, "sip:")
		user, _, _ = strings.Cut(user, "@")
		return scripts[user]
	}})
	require.NoError(t, err)
	defer peer.Close()
	host := strings.TrimPrefix(peer.URI(), "sip:peer@")

	m, err := New(Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 24000, RTPPortMax: 24999, RingTimeout: 20 * time.Second,
		RTMPGiveUpAfter: 500 * time.Millisecond})
	require.NoError(t, err)
	pool := m.be.media.(sessionFactory).pool
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	ways := []struct {
		way, user, rtmp string
		want            Status
		ringTimeout     time.Duration
	}{
		{"we hang up", "answer", rtmpURL, StatusFinish, 0},
		{"peer hangs up", "hangup", "", StatusFinish, 0},
		{"busy", "busy", "", StatusBusy, 0},
		{"rejected", "reject", "", StatusFailed, 0},
		{"cancelled", "ring", "", StatusFinish, 0},
		{"timed out", "ring", "", StatusFailed, 300 * time.Millisecond},
		{"rtmp failed", "answer", deadURL, StatusFailed, 0},
	}
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 100; i++ {
		w := ways[i%len(ways)]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("real-%03d", i)
			c, err := m.StartCall(ctx, CallParams{CallID: id, Callee: "sip:" + w.user + "@" + host, RTMPURL: w.rtmp,
				RTMPStream: id, HasAudio: true, HasVideo: true, RingTimeout: w.ringTimeout})
			if err != nil {
				errs <- fmt.Errorf("%s: %w", id, err)
				return
			}
			switch w.way {
			case "we hang up":
				if err := c.WaitEstablished(ctx); err != nil {
					errs <- fmt.Errorf("%s: %w", id, err)
				}
				_ = c.Terminate(ctx)
			case "cancelled":
				for c.Info().Status != StatusRing && ctx.Err() == nil {
					time.Sleep(5 * time.Millisecond)
				}
				_ = c.Terminate(ctx)
			}
			select {
			case <-c.Done():
			case <-ctx.Done():
				errs <- fmt.Errorf("%s (%s) did not end", id, w.way)
				return
			}
			if st := c.Info().Status; st != w.want {
				errs <- fmt.Errorf("%s (%s): status %s, want %s (err %v)", id, w.way, st, w.want, c.Err())
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Empty(t, m.FindAll())
	assert.Zero(t, pool.InUse(), "RTP ports returned")
	require.NoError(t, m.Close(ctx))
	assert.Len(t, peer.Calls(), 100)
}
