package record_test

import (
	"context"
	"math/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/rtmp/flv"
	"github.com/sipstream/sipstream/sink/record"
)

// randomSchedule interleaves the test clip's video and PCMA audio with
// timestamps that misbehave the ways a lossy network and a restarting peer
// make them: duplicates, backward steps (before the recording's start
// too), big forward jumps, sub-millisecond gaps; withCTS adds composition
// offsets to video, some negative.
func randomSchedule(rng *rand.Rand, n int, withCTS bool) []*media.Frame {
	video := clipFrames(0)
	audio := toneFrames(media.CodecPCMA, 0, 2*time.Second)
	var out []*media.Frame
	clk := [2]time.Duration{time.Second, time.Second}
	vi := 0
	for i := range n {
		k := rng.Intn(2)
		op := rng.Intn(8)
		if i < 2 { // both tracks first, so that the recording starts with both
			k, op = i, 0
		}
		switch op {
		case 0: // duplicate
		case 1:
			clk[k] -= time.Duration(rng.Intn(1500)) * time.Millisecond
		case 2:
			clk[k] += time.Duration(rng.Intn(40000)) * time.Millisecond
		case 3:
			clk[k] += time.Duration(rng.Intn(1000)) * time.Microsecond
		default:
			clk[k] += 20 * time.Millisecond
		}
		var f media.Frame
		if k == 1 {
			f = *video[vi%len(video)]
			vi++
			f.PTS = clk[k]
			if withCTS {
				f.PTS += time.Duration(rng.Intn(60)-20) * time.Millisecond
			}
		} else {
			f = *audio[i%len(audio)]
			f.PTS = clk[k]
		}
		f.DTS = clk[k]
		out = append(out, &f)
	}
	return out
}

func TestFLVMonotonicTimestamps(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		path := filepath.Join(t.TempDir(), "x.flv")
		r, err := record.NewFLV(path, record.Config{Audio: true, Video: true})
		require.NoError(t, err)
		sched := randomSchedule(rng, 800, true)
		for _, f := range sched {
			require.NoError(t, r.WriteFrame(f))
		}
		written := r.Stats().FramesWritten
		require.NoError(t, r.Close(context.Background()))
		_, _, tags := readFLV(t, path)
		last := map[uint8]int64{flv.TagAudio: -1, flv.TagVideo: -1}
		n := uint64(0)
		for i, tag := range tags {
			switch tag.Type {
			case flv.TagVideo:
				v, err := flv.ParseVideo(tag.Data)
				require.NoError(t, err)
				if v.SequenceHeader() {
					continue
				}
				require.GreaterOrEqual(t, v.CompositionTime, int32(0), "seed %d tag %d", seed, i)
			case flv.TagAudio:
			default:
				continue
			}
			require.Greater(t, int64(tag.Timestamp), last[tag.Type], "seed %d tag %d (type %d)", seed, i, tag.Type)
			last[tag.Type] = int64(tag.Timestamp)
			n++
		}
		require.Equal(t, written, n, "seed %d", seed)
		require.Greater(t, n, uint64(700), "seed %d", seed)
		require.Equal(t, uint64(len(sched)), written+r.Stats().FramesIgnored, "seed %d", seed)
	}
}

func TestMKVMonotonicTimestamps(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		path := filepath.Join(t.TempDir(), "x.mkv")
		r, err := record.NewMKV(path, record.Config{Audio: true, Video: true})
		require.NoError(t, err)
		sched := randomSchedule(rng, 800, true)
		for _, f := range sched {
			require.NoError(t, r.WriteFrame(f))
		}
		written := r.Stats().FramesWritten
		require.NoError(t, r.Close(context.Background()))
		_, blocks := readBack(t, path)
		require.EqualValues(t, written, len(blocks), "seed %d", seed)
		require.Greater(t, len(blocks), 700, "seed %d", seed)
		last := map[uint64]int64{}
		for i, b := range blocks {
			if l, ok := last[b.track]; ok {
				require.Greater(t, b.ms, l, "seed %d block %d (track %d)", seed, i, b.track)
			}
			last[b.track] = b.ms
		}
	}
}
