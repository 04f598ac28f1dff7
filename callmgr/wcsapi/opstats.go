package wcsapi

import (
	"encoding/json"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/sipstream/sipstream/callmgr"
)

// The operator's live statistics (issue 19): every second, for every live
// call of this node, a "stats" event on GET /events and the same object
// from POST /rest-api/call/stats {callId}. Rates are over the last second
// (deltas of the call's counters).

// CallStats is one call's statistics over the last second.
type CallStats struct {
	CallID string `json:"callId"`
	NodeID string `json:"nodeId,omitempty"`
	// T is when they were sampled (unix ms).
	T     int64           `json:"t"`
	Audio StreamRates     `json:"audio"`
	Video VideoStreamRate `json:"video"`
	// AVOffsetMs is how far the video runs ahead of (+) or behind (-) the
	// audio at the sinks' input: the PTS of the last video frame the
	// fan-out was given minus that of the last audio frame (0 until both
	// came). It shows the interleaving the outputs get, not lip sync in a
	// player.
	AVOffsetMs int64 `json:"avOffsetMs"`
	// Outputs are the call's RTMP pushes (kind "rtmp") and recordings
	// (kind "record").
	Outputs []OutputRates `json:"outputs"`
}

// StreamRates is one received stream's rates and counters.
type StreamRates struct {
	// Kbps is the RTP received in the last second (packets with their
	// RTP headers: G.711 at 50 packets/s is 68.8).
	Kbps            float64 `json:"kbps"`
	PacketsReceived uint64  `json:"packetsReceived"`
	PacketsLost     uint64  `json:"packetsLost"`
	// LossPct is lost/(received+lost) in the last second, in percent (0
	// when nothing came).
	LossPct  float64 `json:"lossPct"`
	JitterMs int64   `json:"jitterMs"`
	RTTMs    int64   `json:"rttMs"`
}

// VideoStreamRate is the video stream's rates and counters.
type VideoStreamRate struct {
	StreamRates
	// Fps is the frames handed to the sinks in the last second.
	Fps      float64 `json:"fps"`
	Freezes  uint64  `json:"freezes"`
	FrozenMs int64   `json:"frozenMs"`
	// KeyframeIntervalMs is the time between the last two keyframes (0
	// until two came).
	KeyframeIntervalMs int64  `json:"keyframeIntervalMs"`
	KeyframeRequests   uint64 `json:"keyframeRequests"`
	NACKsSent          uint64 `json:"nacksSent"`
	PacketsRecovered   uint64 `json:"packetsRecovered"`
}

// OutputRates is one output's rate and queue.
type OutputRates struct {
	MediaSessionID string `json:"mediaSessionId"`
	Kind           string `json:"kind"`
	Primary        bool   `json:"primary"`
	Status         string `json:"status"`
	// Kbps is the payload the output accepted in the last second.
	Kbps float64 `json:"kbps"`
	// Queued is the frames waiting in its queue now, Dropped those dropped
	// because it was full, Reconnects the times its connection came back.
	Queued     int    `json:"queued"`
	Dropped    uint64 `json:"dropped"`
	Reconnects uint64 `json:"reconnects"`
}

// statsSample is what the next second's rates are computed from.
type statsSample struct {
	at                    time.Time
	aBytes, vBytes        uint64
	aRecv, aLost          uint64
	vRecv, vLost, vFrames uint64
	sinkBytes             map[string]uint64
	last                  CallStats
	seen                  bool // still live at the last tick
}

// opStats samples the Manager's calls every second.
type opStats struct {
	srv    *server
	svc    *managerService
	m      *callmgr.Manager
	nodeID string
	now    func() time.Time

	mu      sync.Mutex
	samples map[string]*statsSample

	stopLog func()
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// statsInterval is how often the stats events are sent.
const statsInterval = time.Second

// startOpStats starts sampling svc's calls for srv's "stats" events and
// passes the calls' log entries on as "log" events.
func startOpStats(srv *server, svc *managerService) *opStats {
	o := &opStats{srv: srv, svc: svc, m: svc.m, nodeID: svc.nodeID, now: svc.now,
		samples: make(map[string]*statsSample), stop: make(chan struct{}), done: make(chan struct{})}
	srv.ops = o
	o.stopLog = svc.m.WatchLog(srv.publishLog)
	go o.run()
	return o
}

// close stops sampling and waits for it.
func (o *opStats) close() {
	o.once.Do(func() {
		o.stopLog()
		close(o.stop)
	})
	<-o.done
}

func (o *opStats) run() {
	defer close(o.done)
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			o.tick()
		}
	}
}

// tick samples every live call and publishes its stats.
func (o *opStats) tick() {
	infos := o.m.FindAll()
	publish := o.srv.hub.subscribers() > 0
	o.mu.Lock()
	for _, s := range o.samples {
		s.seen = false
	}
	o.mu.Unlock()
	for _, ci := range infos {
		if ci.Status.Final() {
			continue
		}
		st, ok := o.sample(ci)
		if !ok || !publish {
			continue
		}
		if b, err := json.Marshal(st); err == nil {
			o.srv.hub.publish(sseMessage("stats", b))
		}
	}
	o.mu.Lock()
	for id, s := range o.samples {
		if !s.seen {
			delete(o.samples, id)
		}
	}
	o.mu.Unlock()
}

// sample computes ci's stats against its previous sample and keeps them.
func (o *opStats) sample(ci callmgr.CallInfo) (CallStats, bool) {
	c, ok := o.m.Call(ci.CallID)
	if !ok {
		return CallStats{}, false
	}
	cs := c.Stats()
	now := o.now()
	o.mu.Lock()
	defer o.mu.Unlock()
	prev := o.samples[ci.CallID]
	next := &statsSample{at: now, aBytes: cs.Audio.BytesReceived, vBytes: cs.Video.BytesReceived,
		aRecv: cs.Audio.PacketsReceived, aLost: cs.Audio.PacketsLost, vRecv: cs.Video.PacketsReceived,
		vLost: cs.Video.PacketsLost, vFrames: cs.Video.Frames, sinkBytes: make(map[string]uint64, len(cs.Sinks)), seen: true}
	for _, s := range cs.Sinks {
		next.sinkBytes[s.ID] = s.BytesWritten
	}
	next.last = statsOf(ci, cs, prev, next, o.nodeID)
	o.samples[ci.CallID] = next
	return next.last, true
}

// statsOf builds the stats object; prev may be nil (no rates yet).
func statsOf(ci callmgr.CallInfo, cs callmgr.CallStats, prev, next *statsSample, nodeID string) CallStats {
	var dt float64
	if prev != nil {
		dt = next.at.Sub(prev.at).Seconds()
	}
	rate := func(cur, old uint64) float64 { // per second
		if dt <= 0 || cur < old {
			return 0
		}
		return float64(cur-old) / dt
	}
	kbps := func(cur, old uint64) float64 { return round1(rate(cur, old) * 8 / 1000) }
	loss := func(recv, lost, oldRecv, oldLost uint64) float64 {
		if prev == nil || recv < oldRecv || lost < oldLost {
			return 0
		}
		r, l := recv-oldRecv, lost-oldLost
		if r+l == 0 {
			return 0
		}
		return round1(100 * float64(l) / float64(r+l))
	}
	var p statsSample
	if prev != nil {
		p = *prev
	}
	out := CallStats{
		CallID: ci.CallID,
		NodeID: nodeID,
		T:      next.at.UnixMilli(),
		Audio: StreamRates{
			Kbps: kbps(next.aBytes, p.aBytes), PacketsReceived: cs.Audio.PacketsReceived, PacketsLost: cs.Audio.PacketsLost,
			LossPct:  loss(next.aRecv, next.aLost, p.aRecv, p.aLost),
			JitterMs: cs.Audio.Jitter.Milliseconds(), RTTMs: cs.Audio.RTT.Milliseconds(),
		},
		Video: VideoStreamRate{
			StreamRates: StreamRates{
				Kbps: kbps(next.vBytes, p.vBytes), PacketsReceived: cs.Video.PacketsReceived, PacketsLost: cs.Video.PacketsLost,
				LossPct:  loss(next.vRecv, next.vLost, p.vRecv, p.vLost),
				JitterMs: cs.Video.Jitter.Milliseconds(), RTTMs: cs.Video.RTT.Milliseconds(),
			},
			Fps:                round1(rate(next.vFrames, p.vFrames)),
			Freezes:            cs.Video.Freezes,
			FrozenMs:           cs.Video.FrozenTime.Milliseconds(),
			KeyframeIntervalMs: cs.Video.KeyframeInterval.Milliseconds(),
			KeyframeRequests:   cs.Video.KeyframeRequests,
			NACKsSent:          cs.Video.NACKsSent,
			PacketsRecovered:   cs.Video.PacketsRecovered,
		},
		AVOffsetMs: cs.AVOffset.Milliseconds(),
		Outputs:    []OutputRates{},
	}
	byID := make(map[string]callmgr.SinkStats, len(cs.Sinks))
	for _, s := range cs.Sinks {
		byID[s.ID] = s
	}
	for _, si := range ci.Sinks {
		if si.Kind != callmgr.SinkKindRTMP && si.Kind != callmgr.SinkKindRecord {
			continue
		}
		s := byID[si.ID]
		out.Outputs = append(out.Outputs, OutputRates{
			MediaSessionID: si.ID, Kind: string(si.Kind), Primary: si.Primary, Status: rtmpStatus(si.Status),
			Kbps: kbps(s.BytesWritten, p.sinkBytes[si.ID]), Queued: s.Queued, Dropped: s.FramesDropped, Reconnects: s.Reconnects,
		})
	}
	return out
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// callStats serves POST /rest-api/call/stats {callId}: the live call's
// last stats (taken now when the sampler has not seen it yet); 404 for a
// call that is not live on this node.
func (s *server) callStats(w http.ResponseWriter, r *http.Request) error {
	id, err := s.callIDOnly(w, r)
	if err != nil {
		return err
	}
	if s.ops == nil {
		return errStatus(http.StatusNotFound, "call statistics are not available here")
	}
	st, ok := s.ops.get(id)
	if !ok {
		return errStatus(http.StatusNotFound, "no live call "+truncate(id, 64))
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// get returns the call's last stats, sampling it if it has none.
func (o *opStats) get(callID string) (CallStats, bool) {
	c, ok := o.m.Call(callID)
	if !ok {
		return CallStats{}, false
	}
	ci := c.Info()
	if ci.Status.Final() {
		return CallStats{}, false
	}
	o.mu.Lock()
	s := o.samples[callID]
	o.mu.Unlock()
	if s != nil {
		return s.last, true
	}
	return o.sample(ci)
}

// subscribers is the number of event stream subscribers.
func (h *hub) subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}
