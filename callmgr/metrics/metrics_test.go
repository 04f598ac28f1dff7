package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/metrics"
	"github.com/sipstream/sipstream/sip/siptest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// value is the metric name{label=value} in reg (-1 when absent); label ""
// matches a metric without labels.
func value(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && (len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() != label) {
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
