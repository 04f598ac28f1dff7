package record

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

// countingFile counts Sync calls on the recorder's file.
type countingFile struct {
	recFile
	mu    sync.Mutex
	syncs int
}

func (c *countingFile) Sync() error {
	c.mu.Lock()
	c.syncs++
	c.mu.Unlock()
	return c.recFile.Sync()
}

func (c *countingFile) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.syncs
}

// fakeClock is advanced by the test.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

type testRecorder interface {
	WriteFrame(*media.Frame) error
	Close(context.Context) error
}

// instrument swaps the recorder's file for a counting one and its clock for
// a fake one.
func instrument(t *testing.T, rec testRecorder) (*countingFile, *fakeClock) {
	clk := &fakeClock{t: time.Unix(1000, 0)}
	var r *recorder
	switch rec := rec.(type) {
	case *FLV:
		r = &rec.recorder
	case *MKV:
		r = &rec.recorder
	case *MP4:
		r = &rec.recorder
	default:
		t.Fatalf("unknown recorder %T", rec)
	}
	cf := &countingFile{recFile: r.f}
	r.f, r.sy.now, r.sy.last = cf, clk.now, clk.t
	return cf, clk
}

func pcma(ts time.Duration) *media.Frame {
	return &media.Frame{Codec: media.CodecPCMA, PTS: ts, DTS: ts, Keyframe: true, ClockRate: 8000, Channels: 1,
		Duration: 20 * time.Millisecond, Payload: make([]byte, 160)}
}

// TestSyncInterval: recordings were fsynced only at Close, so a power loss
// could lose the whole recording. Now at least every SyncInterval of
// wall-clock time while frames come in.
func TestSyncInterval(t *testing.T) {
	for _, kind := range []string{"flv", "mkv"} {
		t.Run(kind, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "rec."+kind)
			cfg := Config{Audio: true, FlushInterval: 500 * time.Millisecond, SyncInterval: 2 * time.Second}
			var rec testRecorder
			var err error
			if kind == "flv" {
				rec, err = NewFLV(path, cfg)
			} else {
				rec, err = NewMKV(path, cfg)
			}
			require.NoError(t, err)
			cf, clk := instrument(t, rec)
			// 20 s of audio arriving in real time (fake clock): flushes every
			// 500 ms, a sync due every 2 s.
			for ts := time.Duration(0); ts < 20*time.Second; ts += 20 * time.Millisecond {
				require.NoError(t, rec.WriteFrame(pcma(ts)))
				clk.t = clk.t.Add(20 * time.Millisecond)
			}
			n := cf.count()
			t.Logf("%s: %d syncs for 20 s", kind, n)
			assert.GreaterOrEqual(t, n, 9)
			assert.LessOrEqual(t, n, 11, "synced more often than asked")
			require.NoError(t, rec.Close(context.Background()))
		})
	}
}

// TestSyncAfterFramesStop: data written just before the frames stop is
// synced by a timer, not left until the next frame or Close.
func TestSyncAfterFramesStop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec.flv")
	rec, err := NewFLV(path, Config{Audio: true, FlushInterval: 100 * time.Millisecond, SyncInterval: 200 * time.Millisecond})
	require.NoError(t, err)
	cf := &countingFile{recFile: rec.f}
	rec.mu.Lock()
	rec.f = cf
	rec.mu.Unlock()
	for ts := time.Duration(0); ts < 300*time.Millisecond; ts += 20 * time.Millisecond {
		require.NoError(t, rec.WriteFrame(pcma(ts)))
	}
	require.Equal(t, 0, cf.count(), "synced before the interval")
	deadline := time.Now().Add(5 * time.Second)
	for cf.count() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.Equal(t, 1, cf.count())
	require.NoError(t, rec.Close(context.Background()))
}

// TestFileModes: recordings were created 0666 & umask (world-readable with
// the usual 022). Now 0640, directories 0750, whatever the umask.
func TestFileModes(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	for _, kind := range []string{"flv", "mkv"} {
		dir := filepath.Join(t.TempDir(), "calls", "2026")
		path := filepath.Join(dir, "rec."+kind)
		var rec testRecorder
		var err error
		if kind == "flv" {
			rec, err = NewFLV(path, Config{Audio: true})
		} else {
			rec, err = NewMKV(path, Config{Audio: true})
		}
		require.NoError(t, err)
		require.NoError(t, rec.Close(context.Background()))
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm(), kind)
		for _, d := range []string{dir, filepath.Dir(dir)} {
			fi, err := os.Stat(d)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o750), fi.Mode().Perm(), d)
		}
	}
	// An existing file is truncated and gets mode 0640 too.
	path := filepath.Join(t.TempDir(), "old.flv")
	require.NoError(t, os.WriteFile(path, []byte("old"), 0o666))
	rec, err := NewFLV(path, Config{Audio: true})
	require.NoError(t, err)
	require.NoError(t, rec.Close(context.Background()))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())
	assert.Zero(t, fi.Size())
}
