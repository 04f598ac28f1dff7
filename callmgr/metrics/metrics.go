// Package metrics exports a callmgr.Manager's calls as Prometheus metrics:
// calls and RTMP legs by status, calls ended, RTP packets, bytes and losses
// received, jitter and round-trip time per live call, loss repair (NACKs,
// keyframe requests, freezes), sink queue drops, RTMP connections lost,
// recordings stopped by their quota, admission control's CPU share,
// incoming INVITEs by result and registrations (accounts and the bindings of
// the Manager's registrar) by state.
//
// A Collector is read at scrape time; the counters it keeps across calls
// (ended calls, lost connections) come from the Manager's events, which it
// needs to see:
//
//	relay := new(callmgr.Relay)
//	m, err := callmgr.New(callmgr.Config{OnEvent: relay.OnEvent})
//	...
//	c := metrics.New(m)
//	relay.Subscribe(c.OnEvent)
//	reg.MustRegister(c)
package metrics

import (
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/callmgr"
)

// Collector is a prometheus.Collector over a Manager. Its metrics are named
// sipstream_*; their names and labels are listed by Describe.
type Collector struct {
	m     *callmgr.Manager
	media *mediaMetrics
	// Counters of what the events told.
	callsEnded  *prometheus.CounterVec // by final status
	rtmpLost    prometheus.Counter     // RTMP legs and pushes that lost their connection
	recordQuota prometheus.Counter     // recordings stopped by their quota
}

// New returns a Collector over m. Give OnEvent every event of m.
func New(m *callmgr.Manager) *Collector {
	return &Collector{
		m:     m,
		media: newMediaMetrics(m),
		callsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "sipstream", Name: "calls_ended_total",
			Help: "Calls that ended, by final status (FINISH, FAILED, BUSY).",
		}, []string{"status"}),
		rtmpLost: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sipstream", Name: "rtmp_connection_lost_total",
			Help: "Times an RTMP leg or push lost its connection (each is retried with backoff).",
		}),
		recordQuota: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "sipstream", Name: "recordings_quota_reached_total",
			Help: "Recordings stopped because they reached -record-quota (their calls went on).",
		}),
	}
}

// OnEvent counts what ev tells (a call ended, an RTMP connection lost, a
// recording stopped by its quota). It is a callmgr.Config.OnEvent (or a
// Relay subscriber): it runs on the call's event goroutine and does not
// block.
func (c *Collector) OnEvent(ev callmgr.Event) {
	switch {
	case ev.Type == callmgr.EventCallStatus && ev.Status.Final():
		c.callsEnded.WithLabelValues(string(ev.Status)).Inc()
		c.media.callEnded(ev.CallID)
	case ev.Type == callmgr.EventSinkStatus && ev.Sink.Status == callmgr.SinkLost && !ev.Removed:
		c.rtmpLost.Inc()
	case ev.Type == callmgr.EventSinkStatus && ev.Sink.Kind == callmgr.SinkKindRecord && !ev.Removed &&
		ev.Sink.Status == callmgr.SinkFailed && ev.Sink.Reason == callmgr.ReasonRecordQuota:
		c.recordQuota.Inc()
	}
}

var (
	callsDesc    = prometheus.NewDesc("sipstream_calls", "Calls the server knows, by status.", []string{"status"}, nil)
	rtmpDesc     = prometheus.NewDesc("sipstream_rtmp_legs", "RTMP legs of calls, by status (wait, active, lost, failed).", []string{"status"}, nil)
	incomingDesc = prometheus.NewDesc("sipstream_incoming_calls_total",
		"Incoming INVITEs, by result (answered, rejected, unauthorized, forbidden, cancelled, overloaded).", []string{"result"}, nil)
	regsDesc = prometheus.NewDesc("sipstream_registrations",
		"Registrations: the accounts the server keeps registered and the bindings of its registrar (inbound), by state.", []string{"state", "inbound"}, nil)
	accountDesc = prometheus.NewDesc("sipstream_account_registration",
		"1 for each account's current registration state (REGISTERING, REGISTERED, FAILED, UNREGISTERED).", []string{"account", "state"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- callsDesc
	ch <- rtmpDesc
	ch <- incomingDesc
	ch <- regsDesc
	ch <- accountDesc
	c.callsEnded.Describe(ch)
	c.rtmpLost.Describe(ch)
	c.recordQuota.Describe(ch)
	c.media.Describe(ch)
}

// stateLabel is the status label of a sink state: wait, active, lost or
// failed; "" for no sink.
func stateLabel(st callmgr.SinkStatus) string {
	switch st {
	case callmgr.SinkWait:
		return "wait"
	case callmgr.SinkActive:
		return "active"
	case callmgr.SinkLost:
		return "lost"
	case callmgr.SinkFailed:
		return "failed"
	}
	return ""
}

// Collect implements prometheus.Collector: the calls by status are read from
// the Manager now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	calls := map[string]int{}
	rtmp := map[string]int{}
	for _, ci := range c.m.FindAll() {
		calls[string(ci.Status)]++
		if st := stateLabel(ci.RTMPStatus); st != "" {
			rtmp[st]++
		}
	}
	for st, n := range calls {
		ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.GaugeValue, float64(n), st)
	}
	for st, n := range rtmp {
		ch <- prometheus.MustNewConstMetric(rtmpDesc, prometheus.GaugeValue, float64(n), st)
	}
	for r, n := range c.m.IncomingCounts() {
		ch <- prometheus.MustNewConstMetric(incomingDesc, prometheus.CounterValue, float64(n), string(r))
	}
	type regKey struct {
		state   callmgr.RegState
		inbound bool
	}
	regs := map[regKey]int{}
	for _, ri := range c.m.Registrations() {
		regs[regKey{ri.State, ri.Inbound}]++
		if !ri.Inbound {
			ch <- prometheus.MustNewConstMetric(accountDesc, prometheus.GaugeValue, 1, ri.Account, string(ri.State))
		}
	}
	for k, n := range regs {
		ch <- prometheus.MustNewConstMetric(regsDesc, prometheus.GaugeValue, float64(n), string(k.state), strconv.FormatBool(k.inbound))
	}
	c.callsEnded.Collect(ch)
	c.rtmpLost.Collect(ch)
	c.recordQuota.Collect(ch)
	c.media.Collect(ch)
}

// mediaMetrics exports the calls' media counters (callmgr.Call.Stats) as
// Prometheus counters that keep growing across calls: the totals of the
// calls that are gone plus the current counters of the calls the manager
// still knows. It is read at scrape time; a call's last counters are also
// taken when it ends, so that what it did after the last scrape is kept.
type mediaMetrics struct {
	calls func() []callmgr.CallInfo
	call  func(id string) (*callmgr.Call, bool)
	load  func() callmgr.Load

	mu    sync.Mutex
	last  map[*callmgr.Call]callmgr.CallStats // calls still known, as last seen (a callId may be reused)
	ended mediaTotals                         // calls forgotten by the manager
}

type mediaTotals struct {
	packets, bytes, lost [2]uint64 // [0] audio, [1] video
	socketDrops          [2]uint64
	videoDropped         uint64
	sinkDropped          uint64
	// video loss recovery
	nacks, recovered, keyReqs, keyframes, freezes uint64
	frozen                                        float64 // seconds
}

func (t *mediaTotals) add(s callmgr.CallStats) {
	for i, m := range [2]callmgr.MediaStats{s.Audio, s.Video} {
		t.packets[i] += m.PacketsReceived
		t.bytes[i] += m.BytesReceived
		t.lost[i] += m.PacketsLost
		t.socketDrops[i] += m.SocketDrops
	}
	t.videoDropped += s.Video.FramesDropped
	v := s.Video
	t.nacks += v.NACKsSent
	t.recovered += v.PacketsRecovered
	t.keyReqs += v.KeyframeRequests
	t.keyframes += v.KeyframesReceived
	t.freezes += v.Freezes
	t.frozen += v.FrozenTime.Seconds()
	for _, k := range s.Sinks {
		t.sinkDropped += k.FramesDropped
	}
}

func newMediaMetrics(m *callmgr.Manager) *mediaMetrics {
	return &mediaMetrics{calls: m.FindAll, call: m.Call, load: m.Load, last: make(map[*callmgr.Call]callmgr.CallStats)}
}

// merge records s as c's latest counters. A call's sinks are gone once it
// ended; their counters are kept from before.
func (mm *mediaMetrics) merge(c *callmgr.Call, s callmgr.CallStats) {
	if old, ok := mm.last[c]; ok && len(s.Sinks) == 0 {
		s.Sinks = old.Sinks
	}
	mm.last[c] = s
}

// callEnded takes the last counters of a call that ended.
func (mm *mediaMetrics) callEnded(callID string) {
	c, ok := mm.call(callID)
	if !ok {
		return
	}
	s := c.Stats()
	mm.mu.Lock()
	mm.merge(c, s)
	mm.mu.Unlock()
}

var (
	rtpPacketsDesc   = prometheus.NewDesc("sipstream_rtp_packets_received_total", "RTP packets received from SIP peers.", []string{"kind"}, nil)
	rtpBytesDesc     = prometheus.NewDesc("sipstream_rtp_bytes_received_total", "RTP bytes received from SIP peers.", []string{"kind"}, nil)
	rtpLostDesc      = prometheus.NewDesc("sipstream_rtp_packets_lost_total", "RTP packets declared lost by the jitter buffers.", []string{"kind"}, nil)
	videoDroppedDesc = prometheus.NewDesc("sipstream_video_frames_dropped_total", "Received video frames dropped (holes, waiting for a keyframe).", nil, nil)
	sinkDroppedDesc  = prometheus.NewDesc("sipstream_sink_frames_dropped_total", "Frames dropped because a sink's queue was full (RTMP, recording, WebRTC).", nil, nil)
	rtpJitterDesc    = prometheus.NewDesc("sipstream_rtp_jitter_seconds", "Interarrival jitter of each live call's received streams.", []string{"call_id", "kind"}, nil)
	nacksDesc        = prometheus.NewDesc("sipstream_rtcp_nacks_sent_total", "RTCP generic NACKs sent to SIP peers for lost video packets.", nil, nil)
	recoveredDesc    = prometheus.NewDesc("sipstream_rtp_packets_recovered_total", "Lost video packets asked for with NACK that arrived afterwards.", nil, nil)
	keyReqDesc       = prometheus.NewDesc("sipstream_keyframe_requests_total", "Keyframe requests sent to SIP peers (PLI, FIR, SIP INFO).", nil, nil)
	keyframesDesc    = prometheus.NewDesc("sipstream_keyframes_received_total", "Video keyframes received from SIP peers.", nil, nil)
	freezesDesc      = prometheus.NewDesc("sipstream_video_freezes_total", "Times a call's video froze after a loss until a keyframe.", nil, nil)
	frozenDesc       = prometheus.NewDesc("sipstream_video_frozen_seconds_total", "Time calls' video stood still because frames were dropped after a loss.", nil, nil)
	socketDropsDesc  = prometheus.NewDesc("sipstream_rtp_socket_drops_total", "Datagrams from SIP peers the kernel dropped because a socket's receive buffer was full (the process did not keep up).", []string{"kind"}, nil)
	refusedDesc      = prometheus.NewDesc("sipstream_calls_refused_overload_total", "Calls refused by admission control (-max-cpu) because the server had no headroom left.", nil, nil)
	cpuShareDesc     = prometheus.NewDesc("sipstream_cpu_share", "The process's CPU use over admission control's last window, as a share of the CPUs Go may use (0-1; 0 while no call is live or with -max-cpu 0).", nil, nil)
	rttDesc          = prometheus.NewDesc("sipstream_rtt_seconds", "Round-trip time to each live call's SIP peer, from RTCP.", []string{"call_id"}, nil)
)

// Describe implements prometheus.Collector.
func (mm *mediaMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{rtpPacketsDesc, rtpBytesDesc, rtpLostDesc, videoDroppedDesc, sinkDroppedDesc, rtpJitterDesc,
		nacksDesc, recoveredDesc, keyReqDesc, keyframesDesc, freezesDesc, frozenDesc, rttDesc, socketDropsDesc, refusedDesc, cpuShareDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (mm *mediaMetrics) Collect(ch chan<- prometheus.Metric) {
	infos := mm.calls()
	type live struct {
		id    string
		final bool
		call  *callmgr.Call
		stats callmgr.CallStats
	}
	now := make([]live, 0, len(infos))
	for _, ci := range infos {
		if c, ok := mm.call(ci.CallID); ok {
			now = append(now, live{id: ci.CallID, final: ci.Status.Final(), call: c, stats: c.Stats()})
		}
	}

	mm.mu.Lock()
	known := make(map[*callmgr.Call]bool, len(now))
	for _, l := range now {
		known[l.call] = true
		mm.merge(l.call, l.stats)
	}
	for c, s := range mm.last {
		if !known[c] {
			mm.ended.add(s)
			delete(mm.last, c)
		}
	}
	total := mm.ended
	for _, s := range mm.last {
		total.add(s)
	}
	mm.mu.Unlock()

	for i, kind := range []string{"audio", "video"} {
		ch <- prometheus.MustNewConstMetric(rtpPacketsDesc, prometheus.CounterValue, float64(total.packets[i]), kind)
		ch <- prometheus.MustNewConstMetric(rtpBytesDesc, prometheus.CounterValue, float64(total.bytes[i]), kind)
		ch <- prometheus.MustNewConstMetric(rtpLostDesc, prometheus.CounterValue, float64(total.lost[i]), kind)
		ch <- prometheus.MustNewConstMetric(socketDropsDesc, prometheus.CounterValue, float64(total.socketDrops[i]), kind)
	}
	load := mm.load()
	ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(load.Refused))
	ch <- prometheus.MustNewConstMetric(cpuShareDesc, prometheus.GaugeValue, load.CPU)
	ch <- prometheus.MustNewConstMetric(videoDroppedDesc, prometheus.CounterValue, float64(total.videoDropped))
	ch <- prometheus.MustNewConstMetric(sinkDroppedDesc, prometheus.CounterValue, float64(total.sinkDropped))
	for _, c := range []struct {
		d *prometheus.Desc
		v uint64
	}{{nacksDesc, total.nacks}, {recoveredDesc, total.recovered}, {keyReqDesc, total.keyReqs}, {keyframesDesc, total.keyframes}, {freezesDesc, total.freezes}} {
		ch <- prometheus.MustNewConstMetric(c.d, prometheus.CounterValue, float64(c.v))
	}
	ch <- prometheus.MustNewConstMetric(frozenDesc, prometheus.CounterValue, total.frozen)
	for _, l := range now {
		if l.final {
			continue
		}
		for kind, m := range map[string]callmgr.MediaStats{"audio": l.stats.Audio, "video": l.stats.Video} {
			if m.PacketsReceived > 0 {
				ch <- prometheus.MustNewConstMetric(rtpJitterDesc, prometheus.GaugeValue, m.Jitter.Seconds(), l.id, kind)
			}
		}
		if rtt := max(l.stats.Audio.RTT, l.stats.Video.RTT); rtt > 0 {
			ch <- prometheus.MustNewConstMetric(rttDesc, prometheus.GaugeValue, rtt.Seconds(), l.id)
		}
	}
}
