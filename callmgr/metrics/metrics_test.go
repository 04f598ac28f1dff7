package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/metrics"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/sip/siptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// value is the metric name{label=value} in reg (-1 when absent); label ""
// matches a metric without labels.
func value(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	return find(t, reg, name, func(_ map[string]string, first string) bool {
		return label == "" || first == label
	})
}

// labelled is the value of name with every label in want (-1 when absent).
func labelled(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	return find(t, reg, name, func(got map[string]string, _ string) bool {
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	})
}

// find is the value of the first metric name in reg whose labels match
// (all of them by name, and the first one's value).
func find(t *testing.T, reg *prometheus.Registry, name string, match func(labels map[string]string, first string) bool) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels, first := map[string]string{}, ""
			for i, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
				if i == 0 {
					first = l.GetValue()
				}
			}
			if !match(labels, first) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// A call counts in sipstream_calls while the manager knows it, its media
// in the received counters (kept after it ends), and its end in
// sipstream_calls_ended_total.
func TestCollector(t *testing.T) {
	peer, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", Script: siptest.Script{Audio: true}})
	require.NoError(t, err)
	defer peer.Close()
	relay := new(callmgr.Relay)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 26000, RTPPortMax: 26099, OnEvent: relay.OnEvent})
	require.NoError(t, err)
	defer m.Close(context.Background())
	c := metrics.New(m)
	relay.Subscribe(c.OnEvent)
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	call, err := m.StartCall(ctx, callmgr.CallParams{CallID: "m1", Callee: peer.URI(), HasAudio: true})
	require.NoError(t, err)
	require.NoError(t, call.WaitEstablished(ctx))
	require.Equal(t, 1.0, value(t, reg, "sipstream_calls", "ESTABLISHED"))
	require.Eventually(t, func() bool { return value(t, reg, "sipstream_rtp_jitter_seconds", "") >= 0 },
		10*time.Second, 50*time.Millisecond, "the call's audio arrives")

	require.NoError(t, call.Terminate(ctx))
	<-call.Done()
	require.Eventually(t, func() bool { return value(t, reg, "sipstream_calls_ended_total", "FINISH") == 1 },
		5*time.Second, 20*time.Millisecond)
	require.Positive(t, value(t, reg, "sipstream_rtp_packets_received_total", "audio"), "kept after the call ended")
	require.Equal(t, 0.0, value(t, reg, "sipstream_rtmp_connection_lost_total", ""))
}

// Incoming INVITEs count by result; accounts show by state.
func TestCollectorIncomingAndRegistrations(t *testing.T) {
	caller, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	defer caller.Close()
	closed := testenv.FreePort(t, "tcp") // nobody listens: the registration fails
	m, err := callmgr.New(callmgr.Config{
		ListenAddr: "127.0.0.1:0", RTPPortMin: 26600, RTPPortMax: 26699,
		OnIncoming: func(ctx context.Context, in callmgr.IncomingCall) (callmgr.Decision, error) {
			return callmgr.RejectWith(486, "Busy Here"), nil
		},
		Inbound:  callmgr.InboundConfig{Users: map[string]string{"trunk": "pw"}},
		Accounts: []callmgr.Account{{Name: "acct", User: "1001", Domain: "127.0.0.1", Port: closed, Transport: "tcp"}},
	})
	require.NoError(t, err)
	defer m.Close(context.Background())
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(metrics.New(m)))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	target := fmt.Sprintf("sip:room@127.0.0.1:%d", m.ListenPort("udp"))
	_, err = caller.Call(ctx, target, siptest.CallOptions{})
	require.Error(t, err)
	_, err = caller.Call(ctx, target, siptest.CallOptions{User: "trunk", Password: "pw"})
	require.Error(t, err)
	require.Eventually(t, func() bool {
		// Two challenges: the first INVITE of each caller.
		return labelled(t, reg, "sipstream_incoming_calls_total", map[string]string{"result": "unauthorized"}) == 2 &&
			labelled(t, reg, "sipstream_incoming_calls_total", map[string]string{"result": "rejected"}) == 1
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, 0.0, labelled(t, reg, "sipstream_incoming_calls_total", map[string]string{"result": "answered"}))
	require.Eventually(t, func() bool {
		return labelled(t, reg, "sipstream_account_registration", map[string]string{"account": "acct", "state": "FAILED"}) == 1 &&
			labelled(t, reg, "sipstream_registrations", map[string]string{"state": "FAILED", "inbound": "false"}) == 1
	}, 10*time.Second, 20*time.Millisecond)
}
