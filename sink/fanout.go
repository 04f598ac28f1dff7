package sink

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/sipstream/sipstream/media"
)

// Errors returned by Fanout.
var (
	// ErrClosed is returned by a Fanout's methods after Close.
	ErrClosed = errors.New("sink: fanout closed")
	// ErrDuplicateName is returned by Add when a sink of that name is attached.
	ErrDuplicateName = errors.New("sink: duplicate sink name")
	// ErrNotFound is returned by Remove when no sink of that name is attached
	// (never added, removed, or already detached after an error).
	ErrNotFound = errors.New("sink: no such sink")
)

// DefaultQueue is the queue length, in frames, used when Add is given a
// queue length of zero or less: about 2.5 s of 25 fps video plus 50 pps audio.
const DefaultQueue = 200

// DefaultQueueBytes is the payload bytes a sink's queue may hold when
// FanoutConfig.MaxQueueBytes is zero. Frame counts alone do not bound memory:
// a peer may send H.264 access units of several megabytes (rtph264 accepts up
// to 8 MiB), and 200 of them queued for one slow sink would be gigabytes.
const DefaultQueueBytes = 64 << 20

// FanoutConfig configures a Fanout. The zero value is usable.
type FanoutConfig struct {
	// OnDetach is called once for every sink the fanout detaches because its
	// WriteFrame returned an error; err is that error. The sink has already
	// been closed (its Close error, if any, is joined to err). Calls come
	// from one goroutine owned by the fanout, in the order the failures
	// happened, never concurrently. OnDetach must not block for long and
	// must not call Close (Close waits for it); it may call Add and Remove.
	// Nil means failures are only visible in Stats (as a missing sink).
	OnDetach func(name string, err error)

	// OnKeyframeNeeded is called when a sink waits for a video keyframe: when
	// a sink is added, and when a sink that dropped video (its queue was
	// full) has room again, once per such episode, so that a sink that stays
	// stuck does not make the call ask the peer for keyframes over and over
	// (every other sink would get them too). It is called from the goroutine
	// calling Add or WriteFrame, after the fanout's lock is released, so it
	// must not block (a media session's RequestKeyframe, which is rate
	// limited, fits). Nil means no request.
	OnKeyframeNeeded func()

	// MaxQueueBytes bounds the payload bytes queued for each sink, besides
	// the queue's length in frames: a frame that would exceed it is dropped
	// as if the queue were full. Zero means DefaultQueueBytes; negative
	// means no byte limit.
	MaxQueueBytes int
}

// SinkStats are one attached sink's counters.
type SinkStats struct {
	// Name is the name the sink was added with.
	Name string
	// FramesWritten counts frames the sink's WriteFrame accepted.
	FramesWritten uint64
	// FramesDropped counts frames dropped because the sink's queue was full.
	FramesDropped uint64
	// FramesSkipped counts video frames not queued while the sink waited for
	// a keyframe (after being added or after a drop), so that it never sees
	// a broken group of pictures.
	FramesSkipped uint64
	// Queued is the number of frames waiting in the queue now.
	Queued int
	// QueueCap is the queue's capacity.
	QueueCap int
	// QueuedBytes is the payload bytes of the frames waiting in the queue
	// (bounded by FanoutConfig.MaxQueueBytes).
	QueuedBytes int64
}

// Fanout feeds one call's frames to many sinks. Each sink has its own bounded
// queue and goroutine, so a slow sink drops frames (and counts them) instead
// of slowing down the caller or the other sinks, and a sink whose WriteFrame
// fails is detached, closed and reported through FanoutConfig.OnDetach.
// A sink that never blocks (Inline) is called directly instead, and one
// that writes batches cheaper (BatchWriter) gets what its queue holds at
// once.
//
// Fanout itself implements Sink. All methods are safe for concurrent use.
type Fanout struct {
	onDetach func(name string, err error)
	onKey    func()
	maxBytes int64 // per sink; 0: no limit

	mu     sync.Mutex
	sinks  map[string]*entry
	closed bool

	wg sync.WaitGroup // sink goroutines

	evMu      sync.Mutex
	evQueue   []detachEvent
	evRunning bool           // a deliverEvents goroutine runs; under evMu
	evWG      sync.WaitGroup // deliverEvents goroutines
	closeOnce sync.Once
	closeErr  error
	// abandoned: Close returned when its context ended, before every
	// sink was closed; OnDetach is no longer called.
	abandoned atomic.Bool
}

type detachEvent struct {
	e   *entry
	err error // what WriteFrame returned
}

type entry struct {
	name string
	s    Sink
	ch   chan *media.Frame // nil for an inline sink
	// inline: the sink implements Inline; WriteFrame is called under the
	// fanout's mutex, and there is no queue and no goroutine.
	inline bool

	// waitKey and keyAsked are owned by the fanout's mutex: skip video
	// until a keyframe; keyAsked says OnKeyframeNeeded was called for this
	// wait (at Add, or once the queue had room again after a drop).
	waitKey  bool
	keyAsked bool

	written atomic.Uint64
	dropped atomic.Uint64
	skipped atomic.Uint64
	bytes   atomic.Int64 // payload bytes queued

	// removed is set (under the fanout's mutex) when the entry left the map,
	// by Remove, Close or its own failure.
	removed  bool
	done     chan struct{}
	closeErr error // set by the goroutine before done is closed
	// closeCtx is the context of the Remove or Close that detached the
	// entry (nil after a failure: then the sink's Close gets
	// context.Background()). Once it is done the queue is dropped rather
	// than written, and the sink's Close gets it.
	closeCtx atomic.Pointer[context.Context]
}

// NewFanout returns an empty Fanout. It starts no goroutine: sinks get
// theirs from Add (none for Inline sinks), and OnDetach calls run on a
// goroutine that lives only while failures are being reported, so a call
// whose sinks all work costs no parked goroutine for them.
func NewFanout(cfg FanoutConfig) *Fanout {
	f := &Fanout{
		onDetach: cfg.OnDetach,
		onKey:    cfg.OnKeyframeNeeded,
		maxBytes: DefaultQueueBytes,
		sinks:    make(map[string]*entry),
	}
	switch {
	case cfg.MaxQueueBytes > 0:
		f.maxBytes = int64(cfg.MaxQueueBytes)
	case cfg.MaxQueueBytes < 0:
		f.maxBytes = 0
	}
	return f
}

// Add attaches s under name with a queue of queue frames (DefaultQueue when
// queue <= 0) and starts its goroutine; a sink that implements Inline (and
// reports true) gets neither: its WriteFrame is called directly. The new
// sink receives audio at once and video from the next keyframe on
// (OnKeyframeNeeded is called to hurry one). From now on the fanout owns s:
// it closes it on Remove, Close or failure. When Add fails, s is left
// untouched and still the caller's.
func (f *Fanout) Add(name string, s Sink, queue int) error {
	if s == nil {
		return errors.New("sink: Add with nil sink")
	}
	if queue <= 0 {
		queue = DefaultQueue
	}
	e := &entry{
		name:     name,
		s:        s,
		waitKey:  true,
		keyAsked: true, // Add asks below
		done:     make(chan struct{}),
	}
	if in, ok := s.(Inline); ok && in.Inline() {
		e.inline = true
	} else {
		e.ch = make(chan *media.Frame, queue)
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	if _, ok := f.sinks[name]; ok {
		f.mu.Unlock()
		return fmt.Errorf("%w: %q", ErrDuplicateName, name)
	}
	f.sinks[name] = e
	if !e.inline {
		f.wg.Add(1)
	}
	f.mu.Unlock()
	if !e.inline {
		go f.run(e)
	}
	if f.onKey != nil {
		f.onKey()
	}
	return nil
}

// Remove detaches the sink called name, lets it write the frames already in
// its queue, closes it with ctx and returns its Close error. It returns
// ErrNotFound if no such sink is attached. OnDetach is not called for a
// removed sink.
//
// When ctx is done first, the frames still queued are dropped, the sink's
// Close gets ctx, and Remove returns ctx's error without waiting further:
// the sink's goroutine ends once its current WriteFrame and its Close
// return.
func (f *Fanout) Remove(ctx context.Context, name string) error {
	f.mu.Lock()
	e, ok := f.sinks[name]
	if !ok {
		f.mu.Unlock()
		if f.isClosed() {
			return ErrClosed
		}
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	f.detachLocked(e, ctx)
	f.mu.Unlock()
	if e.inline {
		// Detached under the mutex: no WriteFrame runs or will run.
		e.closeSink()
	}
	select {
	case <-e.done:
		return e.closeErr
	case <-ctx.Done():
		return fmt.Errorf("sink %q: %w", name, ctx.Err())
	}
}

// closeSink closes the sink with the detaching context and marks the
// entry done.
func (e *entry) closeSink() {
	ctx := context.Background()
	if c := e.closeCtx.Load(); c != nil {
		ctx = *c
	}
	e.closeErr = e.s.Close(ctx)
	close(e.done)
}

// abandoning reports whether the context that detached e is done: the
// frames left in its queue are dropped.
func (e *entry) abandoning() bool {
	c := e.closeCtx.Load()
	return c != nil && (*c).Err() != nil
}

func (f *Fanout) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// detachLocked takes e out of the map and closes its queue, so no sender can
// reach it any more; ctx (nil after a failure) is what the sink's Close
// gets. f.mu must be held.
func (f *Fanout) detachLocked(e *entry, ctx context.Context) {
	if e.removed {
		return
	}
	e.removed = true
	if ctx != nil {
		e.closeCtx.Store(&ctx)
	}
	delete(f.sinks, e.name)
	if e.ch != nil {
		close(e.ch)
	}
}

// WriteFrame copies fr (its payload once, shared by every sink) and queues it
// for every attached sink without blocking: a sink whose queue is full drops
// the frame and, for video, skips further video until the next keyframe.
// Inline sinks get it at once, on the calling goroutine.
// fr is borrowed: the fanout does not retain it or its payload. With no sink
// attached nothing is copied. It returns ErrClosed after Close.
//
// The copy is a fresh allocation, not a pooled buffer: sinks may retain the
// frames they get (a recorder holds a cluster's worth), so the fanout cannot
// know when a buffer could be reused.
func (f *Fanout) WriteFrame(fr *media.Frame) error {
	video := fr.Kind() == media.KindVideo
	needKey := false

	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	if len(f.sinks) == 0 {
		f.mu.Unlock()
		return nil
	}
	cp := new(media.Frame)
	*cp = *fr
	if fr.Payload != nil {
		cp.Payload = append(make([]byte, 0, len(fr.Payload)), fr.Payload...)
	}
	for _, e := range f.sinks {
		if video && e.waitKey {
			if !cp.Keyframe {
				e.skipped.Add(1)
				if !e.keyAsked && f.hasRoom(e) {
					// The sink recovered from a drop: now a keyframe helps.
					e.keyAsked = true
					needKey = true
				}
				continue
			}
			e.waitKey = false
		}
		if e.inline {
			if err := e.s.WriteFrame(cp); err != nil {
				f.detachLocked(e, nil)
				f.queueEvent(e, err)
				continue
			}
			e.written.Add(1)
			continue
		}
		size := int64(len(cp.Payload))
		if f.maxBytes > 0 && e.bytes.Load()+size > f.maxBytes && len(e.ch) > 0 {
			// Over the byte budget (a lone frame larger than the budget
			// still goes through an empty queue).
			e.dropped.Add(1)
			if video {
				e.waitKey, e.keyAsked = true, false
			}
			continue
		}
		select {
		case e.ch <- cp:
			e.bytes.Add(size)
		default:
			e.dropped.Add(1)
			if video {
				e.waitKey, e.keyAsked = true, false
			}
		}
	}
	f.mu.Unlock()
	if needKey && f.onKey != nil {
		f.onKey()
	}
	return nil
}

// hasRoom reports whether a sink that dropped frames has drained enough to
// take a new group of pictures: its queue at most half full, in frames and
// in bytes.
func (f *Fanout) hasRoom(e *entry) bool {
	if len(e.ch) > cap(e.ch)/2 {
		return false
	}
	return f.maxBytes <= 0 || e.bytes.Load() <= f.maxBytes/2
}

// run is the goroutine of one sink: it writes queued frames until the queue
// is closed (Remove, Close) or WriteFrame fails (detach), then closes the
// sink. A BatchWriter gets every frame already queued at once.
func (f *Fanout) run(e *entry) {
	defer f.wg.Done()
	bw, _ := e.s.(BatchWriter)
	var batch []*media.Frame
	if bw != nil {
		batch = make([]*media.Frame, 0, MaxBatch)
	}
	failed := false
	for fr := range e.ch {
		e.bytes.Add(-int64(len(fr.Payload)))
		if failed {
			continue // drain what was queued before the detach took effect
		}
		if e.abandoning() {
			e.dropped.Add(1) // Remove or Close ran out of time
			continue
		}
		if bw == nil {
			if err := e.s.WriteFrame(fr); err != nil {
				failed = true
				f.fail(e, err)
				continue
			}
			e.written.Add(1)
			continue
		}
		batch = append(batch[:0], fr)
	more:
		for len(batch) < MaxBatch {
			select {
			case next, ok := <-e.ch:
				if !ok {
					break more
				}
				e.bytes.Add(-int64(len(next.Payload)))
				batch = append(batch, next)
			default:
				break more
			}
		}
		n, err := bw.WriteFrames(batch)
		e.written.Add(uint64(max(min(n, len(batch)), 0)))
		clear(batch) // retain no frame
		if err != nil {
			failed = true
			f.fail(e, err)
		}
	}
	e.closeSink()
}

// fail detaches e after its WriteFrame returned err.
func (f *Fanout) fail(e *entry, err error) {
	f.mu.Lock()
	f.detachLocked(e, nil)
	f.queueEvent(e, err)
	f.mu.Unlock()
}

// queueEvent queues the detach event of e now, so events keep the order of
// the failures; it is delivered once the sink is closed.
func (f *Fanout) queueEvent(e *entry, err error) {
	f.evMu.Lock()
	f.evQueue = append(f.evQueue, detachEvent{e: e, err: err})
	if !f.evRunning {
		// Close waits for it; no event is queued once Close has waited
		// for the sinks' goroutines (WriteFrame and Remove then fail).
		f.evRunning = true
		f.evWG.Add(1)
		go f.deliverEvents()
	}
	f.evMu.Unlock()
}

// deliverEvents calls OnDetach for queued events, in order, and ends when
// the queue is empty. At most one runs at a time.
func (f *Fanout) deliverEvents() {
	defer f.evWG.Done()
	for {
		f.evMu.Lock()
		if len(f.evQueue) == 0 {
			f.evQueue = nil
			f.evRunning = false
			f.evMu.Unlock()
			return
		}
		ev := f.evQueue[0]
		f.evQueue[0] = detachEvent{}
		f.evQueue = f.evQueue[1:]
		f.evMu.Unlock()
		if ev.e.inline {
			// Failed inside Fanout.WriteFrame, which must not block on
			// Close: the sink is closed here.
			ev.e.closeSink()
		}
		<-ev.e.done // the sink is closed
		err := ev.err
		if ev.e.closeErr != nil {
			err = errors.Join(err, ev.e.closeErr)
		}
		if f.onDetach != nil && !f.abandoned.Load() {
			f.onDetach(ev.e.name, err)
		}
	}
}

// Stats returns the counters of every attached sink, sorted by name.
func (f *Fanout) Stats() []SinkStats {
	f.mu.Lock()
	out := make([]SinkStats, 0, len(f.sinks))
	for _, e := range f.sinks {
		out = append(out, SinkStats{
			Name:          e.name,
			FramesWritten: e.written.Load(),
			FramesDropped: e.dropped.Load(),
			FramesSkipped: e.skipped.Load(),
			Queued:        len(e.ch),
			QueueCap:      cap(e.ch),
			QueuedBytes:   max(e.bytes.Load(), 0),
		})
	}
	f.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Len returns the number of attached sinks.
func (f *Fanout) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sinks)
}

// Close detaches every sink, lets each write the frames already queued,
// closes them with ctx, waits for every goroutine of the fanout (pending
// OnDetach calls included) and returns the sinks' Close errors joined.
// Later calls return nil.
//
// When ctx is done first, the frames still queued are dropped, the sinks'
// Close get ctx, OnDetach is no longer called, and Close returns ctx's
// error (with the errors of the sinks closed by then) without waiting
// further: each sink's goroutine ends once its current WriteFrame and its
// Close return.
func (f *Fanout) Close(ctx context.Context) error {
	first := false
	f.closeOnce.Do(func() {
		first = true
		f.mu.Lock()
		f.closed = true
		entries := make([]*entry, 0, len(f.sinks))
		for _, e := range f.sinks {
			entries = append(entries, e)
		}
		for _, e := range entries {
			f.detachLocked(e, ctx)
		}
		f.mu.Unlock()
		for _, e := range entries {
			if e.inline {
				e.closeSink()
			}
		}
		waited := make(chan struct{})
		go func() {
			f.wg.Wait()
			f.evWG.Wait()
			close(waited)
		}()
		var errs []error
		select {
		case <-waited:
		case <-ctx.Done():
			f.abandoned.Store(true)
			errs = append(errs, fmt.Errorf("sink: fanout close: %w", ctx.Err()))
		}
		sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
		for _, e := range entries {
			select {
			case <-e.done:
			default:
				continue // still closing: its error is not known
			}
			if e.closeErr != nil {
				errs = append(errs, fmt.Errorf("sink %q: %w", e.name, e.closeErr))
			}
		}
		f.closeErr = errors.Join(errs...)
	})
	if !first {
		return nil
	}
	return f.closeErr
}
