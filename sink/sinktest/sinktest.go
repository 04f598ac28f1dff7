// Package sinktest provides a recording sink.Sink for tests, in the spirit of
// net/http/httptest: it keeps a copy of every frame it is given, lets a test
// wait for a number of frames, and can be told to be slow or to fail.
package sinktest

import (
	"context"
	"sync"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
)

var _ sink.Sink = (*Recorder)(nil)

// Recorder is a sink.Sink that records copies of the frames written to it.
// Its methods are safe for concurrent use. The zero value is not usable: call
// New.
type Recorder struct {
	mu       sync.Mutex
	frames   []media.Frame
	changed  chan struct{} // closed and replaced on every change
	closed   bool
	closes   int
	failWith error
	failAt   int
	delay    time.Duration
	gate     chan struct{}
}

// New returns an empty Recorder that accepts every frame.
func New() *Recorder {
	return &Recorder{changed: make(chan struct{})}
}

// WriteFrame records a deep copy of f (payload included). It first waits
// while the recorder is held (Hold) and sleeps for the delay set with
// SetDelay. It returns the error set with FailAfter once that many frames
// were recorded. After Close it still records, so a test can detect frames
// written too late by comparing Len before and after.
func (r *Recorder) WriteFrame(f *media.Frame) error {
	r.mu.Lock()
	gate, delay := r.gate, r.delay
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failWith != nil && len(r.frames) >= r.failAt {
		return r.failWith
	}
	cp := *f
	cp.Payload = append([]byte(nil), f.Payload...)
	r.frames = append(r.frames, cp)
	r.notifyLocked()
	return nil
}

// Close marks the recorder closed (Closed reports true) and counts the call.
// It never blocks, never fails (ctx is not used) and may be called more than
// once.
func (r *Recorder) Close(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.closes++
	r.notifyLocked()
	return nil
}

func (r *Recorder) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Closed reports whether Close was called.
func (r *Recorder) Closed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// CloseCount returns how many times Close was called.
func (r *Recorder) CloseCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closes
}

// FailAfter makes WriteFrame return err once n frames have been recorded
// (n = 0: from the next call on). A nil err makes it accept frames again.
func (r *Recorder) FailAfter(n int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failWith, r.failAt = err, n
}

// SetDelay makes every later WriteFrame sleep for d first: a slow sink.
func (r *Recorder) SetDelay(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.delay = d
}

// Hold makes WriteFrame block until the returned release function is called
// (a stuck sink). Calling release more than once is harmless.
func (r *Recorder) Hold() (release func()) {
	gate := make(chan struct{})
	r.mu.Lock()
	r.gate = gate
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			if r.gate == gate {
				r.gate = nil
			}
			r.mu.Unlock()
			close(gate)
		})
	}
}

// Len returns the number of frames recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.frames)
}

// Frames returns the frames recorded so far, in the order they were written.
// The slice is a copy; the payloads are the recorder's copies and must not
// be modified.
func (r *Recorder) Frames() []media.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]media.Frame(nil), r.frames...)
}

// FramesOf returns the recorded frames of kind k, in order.
func (r *Recorder) FramesOf(k media.Kind) []media.Frame {
	r.mu.Lock()
	defer r.mu.Unlock()
	return filter(r.frames, k)
}

func filter(fs []media.Frame, k media.Kind) []media.Frame {
	var out []media.Frame
	for i := range fs {
		if fs[i].Kind() == k {
			out = append(out, fs[i])
		}
	}
	return out
}

// WaitN waits until at least n frames have been recorded and returns all
// frames recorded by then. It returns ctx's error, with the frames recorded
// so far, if ctx ends first.
func (r *Recorder) WaitN(ctx context.Context, n int) ([]media.Frame, error) {
	return r.wait(ctx, func() ([]media.Frame, bool) {
		return append([]media.Frame(nil), r.frames...), len(r.frames) >= n
	})
}

// WaitKind is WaitN counting only frames of kind k; it returns those frames.
func (r *Recorder) WaitKind(ctx context.Context, k media.Kind, n int) ([]media.Frame, error) {
	return r.wait(ctx, func() ([]media.Frame, bool) {
		fs := filter(r.frames, k)
		return fs, len(fs) >= n
	})
}

// WaitClosed waits until Close has been called or ctx ends.
func (r *Recorder) WaitClosed(ctx context.Context) error {
	_, err := r.wait(ctx, func() ([]media.Frame, bool) { return nil, r.closed })
	return err
}

func (r *Recorder) wait(ctx context.Context, done func() ([]media.Frame, bool)) ([]media.Frame, error) {
	for {
		r.mu.Lock()
		fs, ok := done()
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return fs, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fs, ctx.Err()
		}
	}
}
