package callmgr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sink"
)

// SinkSpec describes a sink to add to a live call: an RTMP target (the REST
// API's /push/startup) or any sink.Sink (a WebRTC sink, a custom one).
type SinkSpec struct {
	// ID is the sink's ID (the REST API's mediaSessionId). Empty means
	// generated. Unique across the Manager.
	ID string
	// RTMPURL ("rtmp://host/app", "rtmps://...") and RTMPStream (the publish
	// name; empty means the last path element of RTMPURL, which is then cut
	// off the URL: the "full URL" form) describe an RTMP target. Ignored when
	// Sink is set.
	RTMPURL    string
	RTMPStream string
	// Sink is a ready sink to attach instead of an RTMP target. The call
	// closes it when it is removed or the call ends. Frames are shared:
	// WriteFrame must not modify them.
	Sink sink.Sink
	// Muted starts the sink muted (see Manager.MuteSink).
	Muted bool
}

// sinkEntry is one sink in the run loop's table.
type sinkEntry struct {
	info  SinkInfo
	s     *guardSink
	sound sound.Source // playing in the sink (SetSinkSound)
}

// guardSink wraps every sink the fan-out feeds: it implements mute and
// reports the first frame written (for sinks that do not report statuses
// themselves).
type guardSink struct {
	inner   sink.Sink
	muted   atomic.Bool
	started atomic.Bool
	onFirst func() // nil: no report

	// bytes counts the payload bytes the sink accepted while not idle;
	// reconnects the times its connection came back (RTMP: lost, then
	// active again). idle is true while an RTMP sink is not connected
	// (waiting, lost): what it takes then is not published.
	bytes      atomic.Uint64
	reconnects atomic.Uint64
	idle       atomic.Bool

	silenceMu sync.Mutex
	silence   map[media.Codec][]byte // shared, never modified
}

func (g *guardSink) WriteFrame(f *media.Frame) error {
	if g.onFirst != nil && !g.started.Load() && g.started.CompareAndSwap(false, true) {
		g.onFirst()
	}
	if g.muted.Load() && f.Kind() == media.KindAudio {
		var fill byte
		switch f.Codec {
		case media.CodecPCMA:
			fill = 0xD5 // A-law zero
		case media.CodecPCMU:
			fill = 0xFF // µ-law zero
		default:
			return nil // withheld while muted
		}
		cp := *f
		cp.Payload = g.silenceFor(f.Codec, fill, len(f.Payload))
		return g.count(g.inner.WriteFrame(&cp), len(f.Payload))
	}
	return g.count(g.inner.WriteFrame(f), len(f.Payload))
}

// count adds n bytes when err is nil; it returns err.
func (g *guardSink) count(err error, n int) error {
	if err == nil && !g.idle.Load() {
		g.bytes.Add(uint64(n))
	}
	return err
}

func (g *guardSink) silenceFor(c media.Codec, fill byte, n int) []byte {
	g.silenceMu.Lock()
	defer g.silenceMu.Unlock()
	if g.silence == nil {
		g.silence = make(map[media.Codec][]byte)
	}
	b := g.silence[c]
	if len(b) < n {
		b = make([]byte, n)
		for i := range b {
			b[i] = fill
		}
		g.silence[c] = b // frames already handed out keep the old slice
	}
	return b[:n:n]
}

func (g *guardSink) Close(ctx context.Context) error { return g.inner.Close(ctx) }

// Inline passes on the wrapped sink's sink.Inline: a sink that never
// blocks (a WebRTC sink) is called on the media goroutine, without a
// queue and a goroutine of its own. Mute and the first-frame report are
// cheap and never block either.
func (g *guardSink) Inline() bool {
	in, ok := g.inner.(sink.Inline)
	return ok && in.Inline()
}

// WriteFrames implements sink.BatchWriter: what the fan-out's queue holds
// goes to the wrapped sink at once when it writes batches (the RTMP sink:
// one network write), else, and while muted or before the first frame was
// reported, frame by frame.
func (g *guardSink) WriteFrames(fs []*media.Frame) (int, error) {
	bw, ok := g.inner.(sink.BatchWriter)
	if !ok || g.muted.Load() || (g.onFirst != nil && !g.started.Load()) {
		for i, f := range fs {
			if err := g.WriteFrame(f); err != nil {
				return i, err
			}
		}
		return len(fs), nil
	}
	n, err := bw.WriteFrames(fs)
	if g.idle.Load() {
		return n, err
	}
	var b int
	for _, f := range fs[:max(0, min(n, len(fs)))] {
		b += len(f.Payload)
	}
	g.bytes.Add(uint64(b))
	return n, err
}

// splitFullURL turns "rtmp://host/app/stream" into ("rtmp://host/app",
// "stream").
func splitFullURL(u string) (string, string, error) {
	u = strings.TrimRight(u, "/")
	i := strings.LastIndexByte(u, '/')
	if i < 0 || strings.HasSuffix(u[:i], "/") || !strings.Contains(u[:i], "://") {
		return "", "", paramErr(FieldRTMPURL, "has no stream name: give rtmpStream or rtmp://host/app/stream")
	}
	return u[:i], u[i+1:], nil
}

// AddSink adds a sink to the call. It can be added at any time before the
// call ends; frames flow once the call is answered. The sink's statuses are
// reported as EventSinkStatus events and in Info().Sinks.
func (c *Call) AddSink(ctx context.Context, spec SinkSpec) (SinkInfo, error) {
	si := SinkInfo{ID: spec.ID, CallID: c.id, ToStream: c.p.ToStream, Muted: spec.Muted, Status: SinkWait}
	if si.ID == "" {
		si.ID = newID()
	} else if len(si.ID) > 256 || hasControl(si.ID) {
		return SinkInfo{}, paramErr("mediaSessionId", "longer than 256 bytes or has control characters")
	}
	if spec.Sink != nil {
		si.Kind = SinkKindCustom
	} else {
		si.Kind = SinkKindRTMP
		if err := validRTMPURL(spec.RTMPURL); err != nil {
			return SinkInfo{}, err
		}
		si.RTMPURL, si.RTMPStream = spec.RTMPURL, spec.RTMPStream
		if si.RTMPStream == "" {
			var err error
			if si.RTMPURL, si.RTMPStream, err = splitFullURL(spec.RTMPURL); err != nil {
				return SinkInfo{}, err
			}
		}
		if si.RTMPStream == "" || len(si.RTMPStream) > maxField || hasControl(si.RTMPStream) || strings.ContainsFunc(si.RTMPStream, func(r rune) bool { return r == ' ' }) {
			return SinkInfo{}, paramErr(FieldRTMPStream, "empty, too long, or has spaces or control characters")
		}
	}
	if err := c.m.reserveSinkID(si.ID, c); err != nil {
		return SinkInfo{}, err
	}
	var out SinkInfo
	err := c.do(ctx, func() error {
		if c.ending {
			return ErrCallEnded
		}
		var err error
		out, err = c.attach(si, spec.Sink)
		return err
	})
	if err != nil {
		c.m.releaseSinkID(si.ID, c)
		return SinkInfo{}, err
	}
	return out, nil
}

// attach adds a sink to the table; run loop only. A ready sink (s) is
// attached to the fan-out at once; an RTMP sink is created when the call is
// answered (it needs to know whether the call has audio and video) or at
// once if it is.
func (c *Call) attach(si SinkInfo, s sink.Sink) (SinkInfo, error) {
	e := &sinkEntry{info: si}
	if s != nil || c.specs != nil {
		if err := c.activate(e, s); err != nil {
			return si, err
		}
	}
	c.sinks[si.ID] = e
	c.syncSinkInfo()
	c.emitSink(si, false)
	c.logSinkAdded(si)
	return si, nil
}

// activate creates (for RTMP) the sink of e and attaches it to the fan-out;
// run loop only.
func (c *Call) activate(e *sinkEntry, s sink.Sink) error {
	id := e.info.ID
	g := &guardSink{}
	g.muted.Store(e.info.Muted)
	if s == nil {
		g.idle.Store(e.info.Status != SinkActive)
		audio, video := c.receives()
		var err error
		s, err = c.m.be.sinks.NewRTMP(rtmpConfig{
			URL:             e.info.RTMPURL,
			Stream:          e.info.RTMPStream,
			Audio:           audio,
			Video:           video,
			GiveUpAfter:     c.m.cfg.RTMPGiveUpAfter,
			RequestKeyframe: func() { c.askKeyframe("RTMP output " + id + " (re)connected") },
			OnStatus: func(st SinkStatus, reason string) {
				c.inbox.push(func() { c.onSinkStatus(id, st, reason) })
			},
			OnSoundEnd: func(src sound.Source) {
				c.inbox.push(func() { c.onSinkSoundEnd(id, src) })
			},
		})
		if err != nil {
			return fmt.Errorf("callmgr: RTMP sink: %w", err)
		}
	} else {
		g.onFirst = func() {
			c.inbox.push(func() { c.onSinkStatus(id, SinkActive, "") })
		}
	}
	g.inner = s
	if err := c.fan.Add(id, g, c.m.cfg.SinkQueue); err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.m.cfg.TeardownTimeout)
		_ = s.Close(ctx)
		cancel()
		return fmt.Errorf("callmgr: attach sink: %w", err)
	}
	e.s = g
	c.op.addGuard(id, g)
	return nil
}

// receives says which kinds of media the call receives (negotiated).
func (c *Call) receives() (audio, video bool) {
	for _, sp := range c.specs {
		if sp.Direction.Receives() || sp.Direction == media.Inactive {
			audio = audio || sp.Kind == media.KindAudio
			video = video || sp.Kind == media.KindVideo
		}
	}
	return audio, video
}

// activatePending creates the RTMP sinks added before the answer; run loop
// only.
func (c *Call) activatePending() {
	for _, e := range c.sinks {
		if e.s != nil {
			continue
		}
		if err := c.activate(e, nil); err != nil {
			c.onSinkStatus(e.info.ID, SinkFailed, err.Error())
		}
	}
}

// startPrimarySinks creates the call's own RTMP leg and recording when the
// call is answered.
func (c *Call) startPrimarySinks() {
	if c.p.RTMPURL != "" {
		si := SinkInfo{ID: c.rtmpSinkID(), CallID: c.id, ToStream: c.p.ToStream, Kind: SinkKindRTMP,
			RTMPURL: c.p.RTMPURL, RTMPStream: c.p.RTMPStream, Status: SinkWait, Primary: true}
		if _, err := c.attach(si, nil); err != nil {
			c.failPrimaryRTMP(err.Error())
		}
	}
	if c.p.Record {
		si := SinkInfo{ID: c.recordSinkID(), CallID: c.id, ToStream: c.p.ToStream, Kind: SinkKindRecord,
			Status: SinkWait, Primary: true}
		c.mu.Lock()
		si.Path = c.info.RecordPath // named when the call was established
		c.mu.Unlock()
		s, err := c.newRecorder(si.Path)
		if err == nil {
			_, err = c.attach(si, s)
		}
		if err != nil {
			c.mu.Lock()
			c.info.RecordPath = "" // no recording after all
			c.mu.Unlock()
			si.Status, si.Reason = SinkFailed, err.Error()
			c.emitSink(si, true)
		}
	}
}

// recordName is "<stream>-<UTC time>.<ext>" with anything outside
// [A-Za-z0-9._-] in the stream name replaced by '_'.
func recordName(stream string, t time.Time, ext string) string {
	b := []byte(stream)
	for i, ch := range b {
		if !isAlnum(ch) && ch != '.' && ch != '-' && ch != '_' {
			b[i] = '_'
		}
	}
	name := strings.TrimLeft(string(b), ".")
	if len(name) > 100 {
		name = name[:100]
	}
	if name == "" {
		name = "call"
	}
	return fmt.Sprintf("%s-%s.%s", name, t.UTC().Format("20060102T150405.000Z"), ext)
}

// onSinkStatus records a sink status reported by the sink or by the
// fan-out; run loop only.
func (c *Call) onSinkStatus(id string, st SinkStatus, reason string) {
	e := c.sinks[id]
	if e == nil || e.info.Status == st && e.info.Reason == reason {
		return
	}
	if e.info.Status == SinkFailed { // final
		return
	}
	if st == SinkActive && e.info.Status == SinkLost && e.s != nil {
		e.s.reconnects.Add(1)
	}
	if e.s != nil && e.info.Kind == SinkKindRTMP {
		e.s.idle.Store(st != SinkActive)
	}
	c.logSink(e.info, st, reason)
	e.info.Status, e.info.Reason = st, reason
	c.syncSinkInfo()
	c.emitSink(e.info, false)
	if st == SinkFailed && e.s != nil {
		c.detachAsync(id, e)
	}
	if st == SinkFailed {
		if e.info.Primary && e.info.Kind == SinkKindRTMP {
			c.failPrimaryRTMP(reason)
		}
	}
}

func (c *Call) failPrimaryRTMP(reason string) {
	c.mu.Lock()
	c.info.RTMPStatus, c.info.RTMPReason = SinkFailed, reason
	c.mu.Unlock()
	if c.m.cfg.KeepCallOnRTMPFailure || c.ending {
		return
	}
	cur := c.Info()
	c.end(StatusFailed, cur.SIPStatus, cur.SIPReason, fmt.Errorf("%w: %s", ErrRTMPFailed, reason))
}

// onDetach is the fan-out's report of a sink it detached after an error
// (fan-out goroutines).
func (c *Call) onDetach(name string, err error) {
	reason := "detached"
	switch {
	case errors.Is(err, errRecordQuota):
		reason = ReasonRecordQuota
		c.m.cfg.Logger.Warn("recording stopped: quota reached; the call goes on",
			"callID", c.id, "sink", name, "quota", c.m.cfg.RecordQuota)
	case err != nil:
		reason = err.Error()
	}
	c.inbox.push(func() { c.onSinkStatus(name, SinkFailed, reason) })
}

// syncSinkInfo copies the sink table into the snapshot; run loop only.
func (c *Call) syncSinkInfo() {
	list := make([]SinkInfo, 0, len(c.sinks))
	for _, e := range c.sinks {
		list = append(list, e.info)
	}
	sortSinks(list)
	c.mu.Lock()
	c.info.Sinks = list
	if e := c.sinks[c.rtmpSinkID()]; e != nil && e.info.Primary {
		c.info.RTMPStatus, c.info.RTMPReason = e.info.Status, e.info.Reason
	}
	c.mu.Unlock()
}

func sortSinks(l []SinkInfo) {
	for i := 1; i < len(l); i++ {
		for j := i; j > 0 && l[j].ID < l[j-1].ID; j-- {
			l[j], l[j-1] = l[j-1], l[j]
		}
	}
}

// detachAsync removes a sink from the fan-out and closes it on a helper
// goroutine: closing flushes (network, disk), which the run loop must not
// wait for. Teardown waits for it; Config.TeardownTimeout bounds it.
func (c *Call) detachAsync(id string, e *sinkEntry) {
	c.ops.Add(1)
	go func() {
		defer c.ops.Done()
		ctx, cancel := context.WithTimeout(context.Background(), c.m.cfg.TeardownTimeout)
		defer cancel()
		c.fan.Remove(ctx, id)
		_ = e.s.Close(ctx)
		c.op.dropGuard(id, e.s)
	}()
}

// RemoveSink detaches the sink and closes it in the background (a recording
// is finalized, an RTMP stream unpublished before the call ends).
func (c *Call) RemoveSink(ctx context.Context, id string) error {
	return c.do(ctx, func() error {
		e := c.sinks[id]
		if e == nil {
			return ErrSinkNotFound
		}
		if c.ending {
			return ErrCallEnded
		}
		delete(c.sinks, id)
		if e.s != nil {
			c.detachAsync(id, e)
		}
		c.m.releaseSinkID(id, c)
		c.syncSinkInfo()
		if e.info.Primary && e.info.Kind == SinkKindRTMP {
			c.mu.Lock()
			c.info.RTMPStatus, c.info.RTMPReason = sink.StateNone, "removed"
			c.mu.Unlock()
		}
		c.emitSink(e.info, true)
		if e.info.Kind != SinkKindTap {
			c.logf(LogOutput, LogInfo, "%s output %s removed", e.info.Kind, id)
		}
		return nil
	})
}

// MuteSink mutes or unmutes the audio one sink receives (see
// Manager.MuteSink).
func (c *Call) MuteSink(ctx context.Context, id string, muted bool) error {
	return c.do(ctx, func() error {
		e := c.sinks[id]
		if e == nil {
			return ErrSinkNotFound
		}
		if e.info.Muted == muted {
			return nil
		}
		if e.s != nil {
			e.s.muted.Store(muted)
		}
		e.info.Muted = muted
		c.syncSinkInfo()
		c.emitSink(e.info, false)
		return nil
	})
}
