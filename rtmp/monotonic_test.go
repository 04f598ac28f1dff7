package rtmp

import (
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/rtmp/flv"
)

// schedEvent is one frame of a random schedule.
type schedEvent struct {
	video    bool
	pts, dts time.Duration
}

// randomSchedule interleaves an audio and a video track whose timestamps
// misbehave the ways a lossy network and a restarting peer make them:
// equal timestamps, backward steps, big forward jumps, sub-millisecond
// gaps, negative times, composition offsets.
func randomSchedule(rng *rand.Rand, n int) []schedEvent {
	var out []schedEvent
	var clk [2]time.Duration
	for range n {
		v := rng.Intn(3) == 0
		k := 0
		if v {
			k = 1
		}
		switch rng.Intn(8) {
		case 0: // duplicate
		case 1:
			clk[k] -= time.Duration(rng.Intn(300)) * time.Millisecond
		case 2:
			clk[k] += time.Duration(rng.Intn(5000)) * time.Millisecond
		case 3:
			clk[k] += time.Duration(rng.Intn(1000)) * time.Microsecond
		default:
			clk[k] += 20 * time.Millisecond
		}
		e := schedEvent{video: v, dts: clk[k], pts: clk[k]}
		if v && rng.Intn(4) == 0 {
			e.pts += time.Duration(rng.Intn(100)-20) * time.Millisecond // may be < dts
		}
		out = append(out, e)
	}
	return out
}

// TestMonotonicTimestamps publishes random schedules through a real
// server and checks what a player receives: per track, media message
// timestamps strictly increase and the composition time is never negative.
func TestMonotonicTimestamps(t *testing.T) {
	s, addr := startServer(t, ServerConfig{})
	frames := clipFrames()
	for seed := int64(1); seed <= 8; seed++ {
		rng := rand.New(rand.NewSource(seed))
		ctx := testCtx(t)
		sub := s.Subscribe("live", "mono", 8192)
		c, err := Dial(ctx, "rtmp://"+addr+"/live/mono", ClientConfig{})
		require.NoError(t, err)
		require.NoError(t, c.WriteAACConfig([]byte{0x11, 0x90}))
		vi := 0
		sched := randomSchedule(rng, 600)
		for i, e := range sched {
			switch {
			case e.video:
				f := frames[vi%len(frames)]
				if vi == 0 {
					f = frames[0]
				}
				vi++
				require.NoError(t, c.WriteH264(e.pts, e.dts, f.avcc, f.key))
			case i%2 == 0:
				require.NoError(t, c.WriteAAC(e.pts, []byte{0x21, 0x10, 0x04}))
			default:
				// Audio codecs share the audio track's clock.
				require.NoError(t, c.WriteG711(e.pts, true, []byte{0xd5, 0xd5}))
			}
		}
		require.NoError(t, c.Close())
		tags := readTags(t, ctx, sub)
		sub.Close()
		last := map[uint8]int64{flv.TagAudio: -1, flv.TagVideo: -1}
		n := 0
		for _, tag := range tags {
			switch tag.Type {
			case flv.TagVideo:
				v, err := flv.ParseVideo(tag.Data)
				require.NoError(t, err)
				if v.SequenceHeader() {
					continue
				}
				require.GreaterOrEqual(t, v.CompositionTime, int32(0), "seed %d", seed)
			case flv.TagAudio:
				a, err := flv.ParseAudio(tag.Data)
				require.NoError(t, err)
				if a.SequenceHeader() {
					continue
				}
			default:
				continue
			}
			require.Greater(t, int64(tag.Timestamp), last[tag.Type], "seed %d: track %d, tag %d", seed, tag.Type, n)
			last[tag.Type] = int64(tag.Timestamp)
			n++
		}
		require.Equal(t, len(sched), n, "seed %d: every frame arrives", seed)
	}
}
