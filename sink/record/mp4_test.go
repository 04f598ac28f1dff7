package record_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/record"
)

// mp4Sample is a sample read back from an MP4 recording.
type mp4Sample struct {
	dts   uint64
	sync  bool
	first bool // first sample of its track in a fragment
}

// readMP4 parses a fragmented MP4 file with mediacommon: its init (track
// ID → time scale) and the samples of every complete fragment, by track ID.
func readMP4(t *testing.T, path string) (map[int]uint32, map[int][]mp4Sample) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var initEnd int
	var frags [][]byte
	for pos := 0; pos+8 <= len(b); {
		size := int(binary.BigEndian.Uint32(b[pos:]))
		typ := string(b[pos+4 : pos+8])
		require.GreaterOrEqual(t, size, 8)
		if pos+size > len(b) {
			break // cut short
		}
		switch typ {
		case "ftyp", "moov":
			initEnd = pos + size
		case "moof":
			frags = append(frags, b[pos:pos+size])
		case "mdat":
			frags[len(frags)-1] = b[pos-len(frags[len(frags)-1]) : pos+size]
		}
		pos += size
	}
	var ini fmp4.Init
	require.NoError(t, ini.Unmarshal(bytes.NewReader(b[:initEnd])))
	scales := map[int]uint32{}
	for _, tr := range ini.Tracks {
		scales[tr.ID] = tr.TimeScale
	}
	samples := map[int][]mp4Sample{}
	for _, fb := range frags {
		var parts fmp4.Parts
		require.NoError(t, parts.Unmarshal(fb))
		for _, p := range parts {
			for _, tr := range p.Tracks {
				dts := tr.BaseTime
				for i, s := range tr.Samples {
					samples[tr.ID] = append(samples[tr.ID], mp4Sample{dts: dts, sync: !s.IsNonSyncSample, first: i == 0})
					dts += uint64(s.Duration)
				}
			}
		}
	}
	return scales, samples
}

func TestMP4Recording(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rec", "call.mp4")
	r, err := record.NewMP4(path, record.Config{Audio: true, Video: true})
	require.NoError(t, err)
	// The first video frames are not keyframes: held back until one.
	frames := interleave(clipFrames(time.Second)[20:], toneFrames(media.CodecPCMA, time.Second, 4*time.Second))
	// A duplicate and a late frame must not break the timeline.
	i := 0
	for frames[i].Codec != media.CodecH264 || frames[i].PTS < 2500*time.Millisecond {
		i++
	}
	dup := *frames[i]
	frames = append(frames[:i+1], append([]*media.Frame{&dup}, frames[i+1:]...)...)
	for _, f := range frames {
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.Close(context.Background()))
	require.NoError(t, r.Close(context.Background()))
	require.ErrorIs(t, r.WriteFrame(frames[0]), record.ErrClosed)
	st := r.Stats()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fi.Size(), st.Bytes)
	assert.Equal(t, os.FileMode(0o640), fi.Mode().Perm())

	scales, samples := readMP4(t, path)
	require.Equal(t, map[int]uint32{1: 90000, 2: 48000}, scales)
	video, audio := samples[1], samples[2]
	require.Len(t, video, 75+1) // from the IDR at frame 25, plus the duplicate
	require.True(t, video[0].sync)
	assert.InDelta(t, 4.0*48000/1024, len(audio), 3) // from 1 s (the recording starts with the audio)
	for id, tr := range samples {
		for i := 1; i < len(tr); i++ {
			require.Greater(t, tr[i].dts, tr[i-1].dts, "track %d sample %d", id, i)
		}
	}
	// Fragments about a second long; video fragments start with a
	// keyframe.
	frags := 0
	for _, s := range video {
		if s.first {
			frags++
			assert.True(t, s.sync)
		}
	}
	assert.Equal(t, 3, frags)
}

func TestMP4NoTracks(t *testing.T) {
	_, err := record.NewMP4(filepath.Join(t.TempDir(), "x.mp4"), record.Config{})
	require.ErrorIs(t, err, record.ErrNoTracks)
}

// An audio-only Opus call, and a video track whose codec MP4 cannot hold.
func TestMP4OpusAndVP8(t *testing.T) {
	path := filepath.Join(t.TempDir(), "opus.mp4")
	r, err := record.NewMP4(path, record.Config{Audio: true, Video: true, StartWait: time.Second})
	require.NoError(t, err)
	for i := 0; i < 100; i++ {
		ts := time.Duration(i) * 20 * time.Millisecond
		require.NoError(t, r.WriteFrame(&media.Frame{Codec: media.CodecOpus, PTS: ts, DTS: ts, Keyframe: true,
			ClockRate: 48000, Channels: 2, Duration: 20 * time.Millisecond, Payload: []byte{0xfc, 0xff, 0xfe}}))
		if i == 10 {
			require.NoError(t, r.WriteFrame(&media.Frame{Codec: media.CodecVP8, PTS: ts, DTS: ts, Keyframe: true,
				ClockRate: 90000, Payload: []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}}))
		}
	}
	require.NoError(t, r.Close(context.Background()))
	scales, samples := readMP4(t, path)
	require.Equal(t, map[int]uint32{1: 48000}, scales)
	assert.Len(t, samples[1], 100)
	assert.Equal(t, uint64(960), samples[1][1].dts-samples[1][0].dts)
}

func TestMP4SurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path, lastMs := killedRecording(t, "mp4", 3500)
	scales, samples := readMP4(t, path)
	require.NotEmpty(t, samples[1])
	last := samples[1][len(samples[1])-1].dts
	// The child records from PTS 0; fragments start 0.
	end := int64(last * 1000 / uint64(scales[1]))
	require.GreaterOrEqual(t, end, lastMs-1100, "more than ~1 s lost (last written %d ms)", lastMs)
	t.Logf("killed after %d ms written; file plays to %d ms", lastMs, end)
}
