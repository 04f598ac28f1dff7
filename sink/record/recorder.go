package record

import (
	"context"
	"errors"
	"sync"

	"github.com/sipstream/sipstream/media"
)

// recorder is what the FLV, Matroska and MP4 recorders share: the file and
// its syncing, the start of the tracks, the counters, the sticky error and
// the life cycle (WriteFrame, Stats, Close). Each format embeds it and
// gives it its own steps (see format); the steps run with mu held.
type recorder struct {
	mu  sync.Mutex
	f   recFile
	sy  *syncer
	cfg Config
	st  starter

	size    int64  // bytes written to f
	written uint64 // frames written
	err     error  // sticky write error
	closed  bool
	// ended: the quota was reached and the file finalized and closed.
	ended bool

	fmt format
}

// format is a recording format's part of the work, called with the
// recorder's mutex held.
type format interface {
	// writeLocked writes one frame of a started recording.
	writeLocked(f *media.Frame) error
	// atQuota makes what was written a complete file, synced, once the
	// quota is reached (the file is closed after it).
	atQuota() error
	// closeLocked writes what is still held at Close (the error so far is
	// in recorder.err), syncs, and returns the errors to report; the file
	// is closed after it.
	closeLocked() []error
}

// open creates the file at path for cfg's format fm.
func (r *recorder) open(path string, cfg Config, fm format) error {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return err
	}
	f, err := createFile(path)
	if err != nil {
		return err
	}
	r.f, r.cfg, r.st, r.fmt = f, cfg, starter{cfg: cfg}, fm
	r.sy = newSyncer(cfg.SyncInterval, &r.mu, func() recFile { return r.f })
	return nil
}

// writeFrame adds f to the recording (see the formats' WriteFrame).
func (r *recorder) writeFrame(f *media.Frame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	if r.err != nil {
		return r.err
	}
	for _, fr := range r.st.push(f) {
		if err := r.fmt.writeLocked(fr); err != nil {
			r.err = err
			if errors.Is(err, ErrQuotaReached) {
				r.ended = true
				r.sy.stop()
				_ = r.fmt.atQuota()
				_ = r.f.Close()
			}
			return err
		}
	}
	return nil
}

// stats returns the counters.
func (r *recorder) stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Stats{FramesWritten: r.written, FramesIgnored: r.st.ignored, Bytes: r.size}
}

// closeCtx is close bounded by ctx: when ctx can end, the file is
// finished on a goroutine of its own, which outlives Close if ctx ends
// first (a disk write cannot be interrupted; the goroutine ends with it).
func (r *recorder) closeCtx(ctx context.Context) error {
	if ctx.Done() == nil {
		return r.close()
	}
	if err := ctx.Err(); err != nil {
		go func() { _ = r.close() }()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- r.close() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close ends the recording (see the formats' Close).
func (r *recorder) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.ended {
		return nil
	}
	r.sy.stop()
	var errs []error
	// A call that ended before every configured track showed up (and
	// before StartWait) is written with what it has.
	for _, fr := range r.st.startNow() {
		if r.err != nil {
			break
		}
		if err := r.fmt.writeLocked(fr); err != nil {
			r.err = err
			errs = append(errs, err)
		}
	}
	errs = append(errs, r.fmt.closeLocked()...)
	errs = append(errs, r.f.Close())
	return errors.Join(errs...)
}
