package record

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// File and directory modes of recordings, whatever the process umask:
// recordings may hold private conversations.
const (
	fileMode = 0o640
	dirMode  = 0o750
)

// recFile is what a recorder needs of its file (an *os.File; tests wrap it
// to count Sync calls).
type recFile interface {
	io.Writer
	io.WriterAt
	Sync() error
	Close() error
}

// createFile creates (or truncates) path with mode 0640, and its missing
// parent directories with mode 0750, regardless of the umask.
func createFile(path string) (*os.File, error) {
	if err := mkdirAll(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, fileMode)
	if err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	// The umask applies at creation (and an existing file keeps its mode):
	// set the mode itself.
	if err := f.Chmod(fileMode); err != nil {
		f.Close()
		return nil, fmt.Errorf("record: %w", err)
	}
	return f, nil
}

// mkdirAll creates dir and its missing parents with dirMode, regardless of
// the umask. Existing directories are left as they are.
func mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %s: not a directory", dir)
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, dirMode); err != nil && !os.IsExist(err) {
		return err
	}
	return os.Chmod(dir, dirMode)
}

// syncer fsyncs a recorder's file at least every SyncInterval of wall-clock
// time while data is being written: after a write when the interval has
// passed, else from a timer armed for the rest of it, so data written just
// before the media stops is synced too. Methods are called with the
// recorder's lock held; the timer takes it through lock.
type syncer struct {
	every time.Duration // <= 0: only at Close
	now   func() time.Time
	lock  sync.Locker
	file  func() recFile // the recorder's current file

	last  time.Time   // of the last sync (or creation)
	dirty bool        // written since the last sync
	timer *time.Timer // armed while dirty and not yet due
	dead  bool        // closed: the timer does nothing
	err   error       // first Sync error, reported by the next write
}

func newSyncer(every time.Duration, lock sync.Locker, file func() recFile) *syncer {
	return &syncer{every: every, now: time.Now, lock: lock, file: file, last: time.Now()}
}

// wrote records that data was written, and syncs when due.
func (s *syncer) wrote() error {
	if s.err != nil {
		return s.err
	}
	if s.every <= 0 {
		return nil
	}
	s.dirty = true
	wait := s.every - s.now().Sub(s.last)
	if wait <= 0 {
		return s.syncLocked()
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(wait, s.fire)
	}
	return nil
}

func (s *syncer) fire() {
	s.lock.Lock()
	defer s.lock.Unlock()
	s.timer = nil
	if s.dead || !s.dirty {
		return
	}
	if err := s.syncLocked(); err != nil && s.err == nil {
		s.err = err
	}
}

func (s *syncer) syncLocked() error {
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.dirty = false
	s.last = s.now()
	if err := s.file().Sync(); err != nil {
		return fmt.Errorf("record: sync: %w", err)
	}
	return nil
}

// stop disarms the timer (Close syncs itself).
func (s *syncer) stop() {
	s.dead = true
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
}
