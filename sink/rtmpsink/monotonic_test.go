package rtmpsink_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/rtmp/flv"
	"github.com/sipstream/sipstream/sink/rtmpsink"
)

// randomFrames interleaves the test clip's video and a PCMA tone with
// timestamps that misbehave the ways a lossy network and a restarting peer
// make them: duplicates, backward steps (before the broadcast's start
// too), big forward jumps, sub-millisecond gaps. The first frames are a
// keyframe and audio at the same time, where the broadcast starts.
func randomFrames(rng *rand.Rand, n int, audio, video bool) []*media.Frame {
	aus := testmedia.ClipAccessUnits()
	var out []*media.Frame
	clk := [2]time.Duration{5 * time.Second, 5 * time.Second}
	vi := 0
	for i := range n {
		k := rng.Intn(2)
		op := rng.Intn(8)
		if i < 2 {
			k, op = 1-i, 0
		}
		if !audio {
			k = 1
		} else if !video {
			k = 0
		}
		switch op {
		case 0: // duplicate
		case 1:
			clk[k] -= time.Duration(rng.Intn(400)) * time.Millisecond
		case 2:
			clk[k] += time.Duration(rng.Intn(3000)) * time.Millisecond
		case 3:
			clk[k] += time.Duration(rng.Intn(1000)) * time.Microsecond
		default:
			clk[k] += 20 * time.Millisecond
		}
		ts := clk[k]
		if k == 1 {
			au := aus[vi%len(aus)]
			vi++
			var p []byte
			for _, n := range au.NALUs {
				p = binary.BigEndian.AppendUint32(p, uint32(len(n)))
				p = append(p, n...)
			}
			out = append(out, &media.Frame{Codec: media.CodecH264, PTS: ts, DTS: ts, Keyframe: au.Keyframe, ClockRate: 90000, Payload: p})
			continue
		}
		pcm := testmedia.Tone(1000, 8000, i*160, 160, 0.5)
		out = append(out, &media.Frame{Codec: media.CodecPCMA, PTS: ts, DTS: ts, Keyframe: true, ClockRate: 8000, Channels: 1,
			Duration: 20 * time.Millisecond, Payload: g711.EncodeALaw(nil, pcm)})
	}
	return out
}

// TestPublishedTimestampsMonotonic publishes random schedules to a real
// server, with audio transcoded to AAC, the silent AAC track of a
// video-only call and the generated video of an audio-only call, and reads
// back what a player gets: per track, strictly increasing timestamps and a
// non-negative composition time.
func TestPublishedTimestampsMonotonic(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0")
	for _, tc := range []struct {
		name         string
		audio, video bool
		mode         rtmpsink.AudioMode
	}{
		{"aac", true, true, rtmpsink.AudioAAC},
		{"passthrough", true, true, rtmpsink.AudioPassthrough},
		{"video-only", false, true, rtmpsink.AudioAAC},
		{"audio-only", true, false, rtmpsink.AudioAAC},
	} {
		for seed := int64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s/%d", tc.name, seed), func(t *testing.T) {
				key := fmt.Sprintf("mono-%s-%d", tc.name, seed)
				sub := srv.srv.Subscribe("live", key, 1<<15)
				defer sub.Close()
				st := newStatuses()
				s, err := rtmpsink.New(rtmpsink.Config{
					URL: "rtmp://" + srv.addr + "/live", StreamName: key,
					Audio: tc.audio, Video: tc.video, AudioMode: tc.mode, OnStatus: st.on,
				})
				require.NoError(t, err)
				require.Eventually(t, func() bool { return s.Status() == rtmpsink.StatusActive },
					20*time.Second, 5*time.Millisecond)
				frames := randomFrames(rand.New(rand.NewSource(seed)), 500, tc.audio, tc.video)
				for _, f := range frames {
					require.NoError(t, s.WriteFrame(f))
				}
				stats := s.Stats()
				require.NoError(t, s.Close(context.Background()))

				ctx := testCtx(t)
				last := map[uint8]int64{flv.TagAudio: -1, flv.TagVideo: -1}
				count := map[uint8]int{}
				for {
					tag, err := sub.ReadTag(ctx)
					if errors.Is(err, io.EOF) {
						break
					}
					require.NoError(t, err)
					switch tag.Type {
					case flv.TagVideo:
						v, err := flv.ParseVideo(tag.Data)
						require.NoError(t, err)
						if v.SequenceHeader() {
							continue
						}
						require.GreaterOrEqual(t, v.CompositionTime, int32(0))
					case flv.TagAudio:
						a, err := flv.ParseAudio(tag.Data)
						require.NoError(t, err)
						if a.SequenceHeader() {
							continue
						}
					default:
						continue
					}
					require.Greater(t, int64(tag.Timestamp), last[tag.Type], "track %d, tag %d", tag.Type, count[tag.Type])
					last[tag.Type] = int64(tag.Timestamp)
					count[tag.Type]++
				}
				require.Greater(t, count[flv.TagVideo], 50, "video frames published (stats %+v)", stats)
				require.Greater(t, count[flv.TagAudio], 50, "audio frames published (stats %+v)", stats)
			})
		}
	}
}
