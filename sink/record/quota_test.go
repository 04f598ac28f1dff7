package record_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/record"
)

type recorder interface {
	sink.Sink
	Stats() record.Stats
}

func newRecorder(t *testing.T, format, path string, cfg record.Config) recorder {
	t.Helper()
	if format == "mkv" {
		r, err := record.NewMKV(path, cfg)
		require.NoError(t, err)
		return r
	}
	r, err := record.NewFLV(path, cfg)
	require.NoError(t, err)
	return r
}

// quotaFrames is 8 s of the clip and a tone.
func quotaFrames() []*media.Frame {
	return interleave(clipFrames(time.Second), clipFrames(5*time.Second),
		toneFrames(media.CodecPCMA, time.Second, 8*time.Second))
}

// recordWithQuota records quotaFrames with a quota of half the unlimited
// file's size, and returns the file, the quota and the index of the frame
// whose write reported the quota.
func recordWithQuota(t *testing.T, format string) (path string, quota int64, stoppedAt int) {
	t.Helper()
	dir := t.TempDir()
	frames := quotaFrames()
	full := filepath.Join(dir, "full."+format)
	r := newRecorder(t, format, full, record.Config{Audio: true, Video: true})
	for _, f := range frames {
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.Close(context.Background()))
	st, err := os.Stat(full)
	require.NoError(t, err)
	quota = st.Size() / 2

	path = filepath.Join(dir, "quota."+format)
	r = newRecorder(t, format, path, record.Config{Audio: true, Video: true, MaxBytes: quota})
	stoppedAt = -1
	for i, f := range frames {
		err := r.WriteFrame(f)
		if stoppedAt < 0 && err != nil {
			require.ErrorIs(t, err, record.ErrQuotaReached)
			stoppedAt = i
		}
		if stoppedAt >= 0 {
			require.ErrorIs(t, err, record.ErrQuotaReached, "frame %d after the quota", i)
		}
	}
	require.GreaterOrEqual(t, stoppedAt, 0, "the quota was never reported")
	// The file is complete before Close: finalized when the quota was hit.
	st, err = os.Stat(path)
	require.NoError(t, err)
	assert.LessOrEqual(t, st.Size(), quota)
	assert.Greater(t, st.Size(), quota/2, "the recording stopped near its quota, not at the start")
	assert.Equal(t, st.Size(), r.Stats().Bytes)
	require.NoError(t, r.Close(context.Background()))
	require.NoError(t, r.Close(context.Background()))
	st2, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, st.Size(), st2.Size(), "Close after the quota writes nothing")
	return path, quota, stoppedAt
}

func TestMKVQuotaStopsAndFinalizes(t *testing.T) {
	path, _, stoppedAt := recordWithQuota(t, "mkv")
	m, blocks := readBack(t, path)
	require.NotEmpty(t, blocks)
	// Finalized: Duration written, Cues present and right.
	last := blocks[len(blocks)-1].ms
	assert.InDelta(t, float64(last), m.Segment.Info.Duration, 100)
	assert.Greater(t, m.Segment.Info.Duration, 2000.0)
	keyframes := 0
	for _, b := range blocks {
		if b.track == 1 && b.keyframe {
			keyframes++
		}
	}
	checkCues(t, path, m, keyframes)
	t.Logf("mkv: quota reached at frame %d, %d blocks, %.0f ms", stoppedAt, len(blocks), m.Segment.Info.Duration)
}

func TestFLVQuotaStopsAndFinalizes(t *testing.T) {
	path, _, stoppedAt := recordWithQuota(t, "flv")
	ha, hv, tags := readFLV(t, path)
	assert.True(t, ha)
	assert.True(t, hv)
	require.Greater(t, len(tags), 50)
	// Whole tags only: the reader met a clean end of file.
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	end := 13 // header and first PreviousTagSize
	for _, tg := range tags {
		end += 11 + len(tg.Data) + 4
	}
	assert.Equal(t, len(b), end, "the file ends after a complete tag")
	t.Logf("flv: quota reached at frame %d, %d tags", stoppedAt, len(tags))
}

// A quota reached only by Close's last write leaves that write out and
// says so.
func TestQuotaAtClose(t *testing.T) {
	for _, format := range []string{"mkv", "flv"} {
		t.Run(format, func(t *testing.T) {
			dir := t.TempDir()
			frames := interleave(clipFrames(time.Second), toneFrames(media.CodecPCMA, time.Second, 4*time.Second))
			path := filepath.Join(dir, "q."+format)
			// Big enough for the header, far too small for the media
			// buffered until Close (FlushInterval of a minute).
			r := newRecorder(t, format, path, record.Config{Audio: true, Video: true, MaxBytes: 600, FlushInterval: time.Minute})
			for _, f := range frames[:20] {
				require.NoError(t, r.WriteFrame(f))
			}
			require.ErrorIs(t, r.Close(context.Background()), record.ErrQuotaReached)
			st, err := os.Stat(path)
			require.NoError(t, err)
			assert.LessOrEqual(t, st.Size(), int64(600))
		})
	}
}
