package callmgr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/session"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sink"
)

// Audio toward the peer. A call sends silence on a sending audio stream so
// that phones do not hang up; InjectSound and InjectStream replace it with
// a sound file or another call's live audio (both at once are mixed).

// ErrNoAudio: the call sends no audio (hasAudio false, or its audio stream
// does not send).
var ErrNoAudio = errors.New("callmgr: the call sends no audio")

// ErrAudioCodec: the call's audio codec is one sipstream cannot encode
// (only G.711 can be: no pure-Go Opus or Speex encoder exists).
var ErrAudioCodec = errors.New("callmgr: sipstream cannot encode the call's audio codec (only PCMA and PCMU)")

// endWatch passes a Source through and calls onEnd once, from the reading
// goroutine, when it ends.
type endWatch struct {
	sound.Source
	once  sync.Once
	onEnd func()
}

func (e *endWatch) Read(p []int16) (int, error) {
	n, err := e.Source.Read(p)
	if errors.Is(err, io.EOF) {
		e.once.Do(e.onEnd)
	}
	return n, err
}

// InjectSound plays src to the peer in place of the silence the call sends
// (mixed with an injected stream, if any), replacing a sound injected
// before; nil stops it. src may have any sample rate (1 to 384 kHz): the
// media session resamples it to the call's audio clock. When src ends the call goes back to silence and
// reports an EventAudio event. The call must be answered (or in early
// media) and send audio; the audio codec must be one sipstream can encode
// (G.711: there is no pure-Go Opus encoder).
func (c *Call) InjectSound(ctx context.Context, src sound.Source, name string) error {
	return c.do(ctx, func() error {
		if err := c.canInject(); err != nil {
			return err
		}
		c.soundSeq++
		seq := c.soundSeq
		var w sound.Source
		if src != nil {
			w = &endWatch{Source: src, onEnd: func() {
				c.inbox.push(func() { c.onSoundEnd(seq) })
			}}
		}
		prev, prevName := c.sound, c.soundName
		c.sound, c.soundName = w, name
		if err := c.applyAudio(); err != nil {
			c.sound, c.soundName = prev, prevName
			return err
		}
		c.emitAudio()
		return nil
	})
}

func (c *Call) onSoundEnd(seq uint64) {
	if seq != c.soundSeq || c.ending || c.sound == nil {
		return
	}
	c.sound, c.soundName = nil, ""
	if err := c.applyAudio(); err != nil {
		c.m.cfg.Logger.Info("audio source", "callID", c.id, "err", err)
	}
	c.emitAudio()
}

// canInject checks that the call can take audio; run loop only.
func (c *Call) canInject() error {
	switch {
	case c.ending:
		return ErrCallEnded
	case c.specs == nil:
		return ErrNotEstablished
	case !c.p.HasAudio:
		return ErrNoAudio
	}
	return nil
}

// audioRate is the clock rate of the audio the call sends (0: none).
func (c *Call) audioRate() int {
	for _, s := range c.specs {
		if s.Kind == media.KindAudio && len(s.Formats) > 0 {
			return int(s.Formats[0].ClockRate)
		}
	}
	return 0
}

// applyAudio hands the session the mix of the injected sources; run loop
// only.
func (c *Call) applyAudio() error {
	var srcs []sound.Source
	if c.sound != nil {
		srcs = append(srcs, c.sound)
	}
	if c.live != nil {
		srcs = append(srcs, c.live)
	}
	if len(srcs) == 0 {
		return c.sess.SetAudioSource(nil)
	}
	if c.audioRate() == 0 {
		return ErrNoAudio
	}
	src := srcs[0] // the session resamples it to the call's clock
	if len(srcs) > 1 {
		var err error
		if src, err = sound.Mix(srcs...); err != nil {
			return err
		}
	}
	if err := c.sess.SetAudioSource(src); err != nil {
		if errors.Is(err, session.ErrCannotEncode) {
			return fmt.Errorf("%w: %w", ErrAudioCodec, err)
		}
		return fmt.Errorf("callmgr: inject audio: %w", err)
	}
	return nil
}

func (c *Call) emitAudio() {
	c.mu.Lock()
	was := c.info
	c.info.InjectedSound, c.info.InjectedStream = c.soundName, c.liveFrom
	c.mu.Unlock()
	switch {
	case c.soundName != was.InjectedSound && c.soundName != "":
		c.logf(LogMedia, LogInfo, "sound %s injected toward the peer", c.soundName)
	case c.soundName != was.InjectedSound:
		c.logf(LogMedia, LogInfo, "sound %s stopped", was.InjectedSound)
	}
	switch {
	case c.liveFrom != was.InjectedStream && c.liveFrom != "":
		c.logf(LogMedia, LogInfo, "stream %s injected toward the peer", c.liveFrom)
	case c.liveFrom != was.InjectedStream:
		c.logf(LogMedia, LogInfo, "stream %s stopped", was.InjectedStream)
	}
	c.events.push(c.newEvent(EventAudio))
}

// StreamSource is a source of live streams besides the Manager's own calls
// (a WebRTC ingest such as media/whip's Server), which InjectStream can send
// to a call.
type StreamSource interface {
	// Subscribe delivers the audio frames of the stream named name to
	// onFrame (borrowed: valid during the call only; it must not block)
	// until cancel is called or the stream ends, when onEnd is called once
	// (unless cancel came first). An error means no such stream.
	Subscribe(name string, onFrame func(*media.Frame), onEnd func()) (cancel func(), err error)
}

// AddStreamSource lets InjectStream take the streams of src when no live
// call publishes the name asked for (sources are asked in the order they
// were added). Call it before the calls that need it are started.
func (m *Manager) AddStreamSource(src StreamSource) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources = append(m.sources, src)
}

// InjectStream sends the live audio of a stream to this call's peer: the
// ToStream of another call of the Manager (a one-way bridge), else a stream
// of a StreamSource (AddStreamSource). An empty stream stops it. It is
// mixed with an injected sound. The audio is decoded (G.711, Opus) and
// re-encoded for this call; it lags the source by a jitter buffer's worth
// (tens of milliseconds). When the stream ends the call goes back to
// silence and reports an EventAudio event.
func (c *Call) InjectStream(ctx context.Context, stream string) error {
	var from *Call
	var sources []StreamSource
	if stream != "" {
		for _, o := range c.m.liveCalls() {
			if o.p.ToStream == stream && o != c {
				from = o
				break
			}
		}
		c.m.mu.Lock()
		sources = append(sources, c.m.sources...)
		c.m.mu.Unlock()
		if from == nil && len(sources) == 0 {
			return fmt.Errorf("%w: no live call publishes stream %q", ErrStreamNotFound, stream)
		}
	}
	var (
		id      string
		live    *sound.Live
		oldStop func()
	)
	err := c.do(ctx, func() error {
		if err := c.canInject(); err != nil {
			return err
		}
		oldStop = c.liveStop
		c.dropLive()
		if stream != "" {
			var err error
			if live, err = sound.NewLive(c.audioRate()); err != nil {
				return fmt.Errorf("callmgr: inject stream: %w", err)
			}
			id = c.id + "/inject/" + newID()
			c.live, c.liveFrom, c.liveID = live, stream, id
		}
		if err := c.applyAudio(); err != nil {
			c.dropLive()
			_ = c.applyAudio()
			return err
		}
		c.emitAudio()
		return nil
	})
	if oldStop != nil {
		oldStop()
	}
	if err != nil || stream == "" {
		return err
	}
	ended := func() { c.inbox.push(func() { c.liveEnded(id) }) }
	stop, err := c.subscribe(ctx, from, sources, stream, id, live, ended)
	if err != nil {
		_ = c.do(context.Background(), func() error { c.liveEnded(id); return nil })
		return err
	}
	kept := false
	err = c.do(context.Background(), func() error {
		// Not when the stream ended, another replaced it, or the call ends
		// meanwhile: then the feed stops here.
		kept = c.liveID == id && !c.ending
		if kept {
			c.liveStop = stop
		}
		return nil
	})
	if !kept {
		stop()
	}
	return err
}

// subscribe feeds live with the audio of stream: a tap sink on the call
// from, else the first source that has it. stop ends the feed (it may
// block briefly: run it off the run loop). ended is called when the stream
// ends by itself.
func (c *Call) subscribe(ctx context.Context, from *Call, sources []StreamSource, stream, id string, live *sound.Live, ended func()) (stop func(), err error) {
	if from != nil {
		tap := &liveTap{live: live, onClose: ended}
		if _, err := from.addTap(ctx, id, tap); err != nil {
			return nil, fmt.Errorf("callmgr: inject stream %q: %w", stream, err)
		}
		return func() { _ = from.RemoveSink(context.Background(), id) }, nil // best effort: that call may have ended
	}
	for _, src := range sources {
		cancel, err := src.Subscribe(stream, func(f *media.Frame) { _ = live.WriteFrame(f) }, ended)
		if err == nil {
			return cancel, nil
		}
	}
	return nil, fmt.Errorf("%w: no live call or stream source publishes %q", ErrStreamNotFound, stream)
}

// dropLive forgets the injected stream (stopping its feed is the caller's
// job: c.liveStop, off the run loop); run loop only.
func (c *Call) dropLive() {
	if c.live != nil {
		_ = c.live.Close()
	}
	c.live, c.liveFrom, c.liveID, c.liveStop = nil, "", "", nil
}

// liveEnded returns the call to what it sent before the stream id, if that
// stream is still the one injected; run loop only.
func (c *Call) liveEnded(id string) {
	if c.liveID != id || c.ending {
		return
	}
	stop := c.liveStop
	c.dropLive()
	if stop != nil {
		go stop()
	}
	if err := c.applyAudio(); err != nil {
		c.m.cfg.Logger.Info("audio source", "callID", c.id, "err", err)
	}
	c.emitAudio()
}

// addTap adds an internal sink (not reserved in the Manager's sink IDs: it
// is removed with the call, or by the injecting call).
func (c *Call) addTap(ctx context.Context, id string, s sink.Sink) (SinkInfo, error) {
	si := SinkInfo{ID: id, CallID: c.id, ToStream: c.p.ToStream, Kind: SinkKindTap, Status: SinkWait}
	var out SinkInfo
	err := c.do(ctx, func() error {
		if c.ending {
			return ErrCallEnded
		}
		var err error
		out, err = c.attach(si, s)
		return err
	})
	return out, err
}

// liveTap feeds a call's audio frames to a sound.Live; video is ignored.
// onClose tells the injecting call that the tap is gone.
type liveTap struct {
	live    *sound.Live
	onClose func()
	once    sync.Once
}

func (t *liveTap) WriteFrame(f *media.Frame) error {
	if f.Kind() != media.KindAudio {
		return nil
	}
	// A frame it cannot decode is skipped: a tap never detaches itself,
	// and never disturbs the call it listens to.
	_ = t.live.WriteFrame(f)
	return nil
}

func (t *liveTap) Close(context.Context) error {
	t.once.Do(t.onClose)
	return nil
}

// InjectSound plays src to a live call's peer (see Call.InjectSound).
func (m *Manager) InjectSound(ctx context.Context, callID string, src sound.Source, name string) error {
	c, err := m.call(callID)
	if err != nil {
		return err
	}
	return c.InjectSound(ctx, src, name)
}

// InjectStream sends the audio of the call publishing stream to a live
// call's peer; "" stops it (see Call.InjectStream).
func (m *Manager) InjectStream(ctx context.Context, callID, stream string) error {
	c, err := m.call(callID)
	if err != nil {
		return err
	}
	return c.InjectStream(ctx, stream)
}

// onSinkSoundEnd clears a sink's sound that played to its end; run loop
// only.
func (c *Call) onSinkSoundEnd(id string, src sound.Source) {
	e := c.sinks[id]
	if e == nil || e.sound != src || e.info.Sound == "" {
		return
	}
	e.sound, e.info.Sound = nil, ""
	c.syncSinkInfo()
	c.emitSink(e.info, false)
}

// soundSink is what an RTMP sink offers for /push/sound_on.
type soundSink interface {
	SetSound(src sound.Source) error
}

// SetSinkSound mixes src into the audio one sink publishes (the REST API's
// /push/sound_on; nil is /push/sound_off). Only RTMP sinks that transcode
// to AAC can mix; others answer an error.
func (m *Manager) SetSinkSound(ctx context.Context, sinkID string, src sound.Source, name string) error {
	c, err := m.sinkOwner(sinkID)
	if err != nil {
		return err
	}
	return c.do(ctx, func() error {
		e := c.sinks[sinkID]
		if e == nil {
			return ErrSinkNotFound
		}
		if e.s == nil {
			return ErrNotEstablished
		}
		ss, ok := e.s.inner.(soundSink)
		if !ok {
			return fmt.Errorf("%w: sink %q cannot mix sound", ErrNotConfigured, sinkID)
		}
		if err := ss.SetSound(src); err != nil {
			return fmt.Errorf("%w: sink %q cannot mix this sound: %w", ErrNotConfigured, sinkID, err)
		}
		e.sound, e.info.Sound = src, name
		if src == nil {
			e.info.Sound = ""
		}
		c.syncSinkInfo()
		c.emitSink(e.info, false)
		return nil
	})
}
