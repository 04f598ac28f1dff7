package record_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/sink/record"
)

type readTrack struct {
	TrackNumber  uint64 `ebml:"TrackNumber"`
	TrackType    uint64 `ebml:"TrackType"`
	CodecID      string `ebml:"CodecID"`
	CodecPrivate []byte `ebml:"CodecPrivate"`
	Video        struct {
		PixelWidth  uint64 `ebml:"PixelWidth"`
		PixelHeight uint64 `ebml:"PixelHeight"`
	} `ebml:"Video"`
	Audio struct {
		SamplingFrequency float64 `ebml:"SamplingFrequency"`
		Channels          uint64  `ebml:"Channels"`
	} `ebml:"Audio"`
}

type readMKV struct {
	Header struct {
		DocType string `ebml:"EBMLDocType"`
	} `ebml:"EBML"`
	Segment struct {
		Info struct {
			TimecodeScale uint64  `ebml:"TimecodeScale"`
			Duration      float64 `ebml:"Duration"`
		} `ebml:"Info"`
		Tracks struct {
			TrackEntry []readTrack `ebml:"TrackEntry"`
		} `ebml:"Tracks"`
		Cluster []struct {
			Timecode    uint64       `ebml:"Timecode"`
			SimpleBlock []ebml.Block `ebml:"SimpleBlock"`
		} `ebml:"Cluster"`
	} `ebml:"Segment"`
}

type readBlock struct {
	track    uint64
	ms       int64
	keyframe bool
	data     []byte
}

func readBack(t *testing.T, path string) (readMKV, []readBlock) {
	return readBackOpt(t, path, false)
}

// readBackOpt reads a recording; with truncatedOK a file cut in the middle
// of an element (a kill during a write) yields what precedes the cut.
func readBackOpt(t *testing.T, path string, truncatedOK bool) (readMKV, []readBlock) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var m readMKV
	err = ebml.Unmarshal(bytes.NewReader(b), &m)
	if !(truncatedOK && errors.Is(err, io.ErrUnexpectedEOF)) {
		require.NoError(t, err)
	}
	var blocks []readBlock
	for _, c := range m.Segment.Cluster {
		for _, sb := range c.SimpleBlock {
			require.Len(t, sb.Data, 1)
			blocks = append(blocks, readBlock{sb.TrackNumber, int64(c.Timecode) + int64(sb.Timecode), sb.Keyframe, sb.Data[0]})
		}
	}
	return m, blocks
}

func TestMKVH264AndPCMA(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.mkv")
	r, err := record.NewMKV(path, record.Config{Audio: true, Video: true})
	require.NoError(t, err)
	start := 5 * time.Second
	// The clip starts 0.5 s after the audio: audio waits for the first keyframe.
	frames := interleave(clipFrames(start+500*time.Millisecond), toneFrames(media.CodecPCMA, start, 4*time.Second))
	for _, f := range frames {
		require.NoError(t, r.WriteFrame(f))
	}
	st := r.Stats()
	assert.Equal(t, uint64(300), st.FramesWritten)
	require.NoError(t, r.Close())
	require.NoError(t, r.Close())
	require.ErrorIs(t, r.WriteFrame(frames[0]), record.ErrClosed)

	m, blocks := readBack(t, path)
	assert.Equal(t, "matroska", m.Header.DocType)
	assert.Equal(t, uint64(1000000), m.Segment.Info.TimecodeScale)
	assert.InDelta(t, 4500, m.Segment.Info.Duration, 1)
	tr := m.Segment.Tracks.TrackEntry
	require.Len(t, tr, 2)
	assert.Equal(t, "V_MPEG4/ISO/AVC", tr[0].CodecID)
	assert.Equal(t, uint64(320), tr[0].Video.PixelWidth)
	assert.Equal(t, uint64(240), tr[0].Video.PixelHeight)
	assert.Equal(t, byte(1), tr[0].CodecPrivate[0])
	assert.Equal(t, "A_MS/ACM", tr[1].CodecID)
	assert.Equal(t, 8000.0, tr[1].Audio.SamplingFrequency)
	assert.Equal(t, []byte{6, 0, 1, 0}, tr[1].CodecPrivate[:4])

	var video, audio []readBlock
	for _, b := range blocks {
		if b.track == 1 {
			video = append(video, b)
		} else {
			audio = append(audio, b)
		}
	}
	require.Len(t, video, 100)
	require.Len(t, audio, 200)
	vf := clipFrames(0)
	for i, b := range video {
		assert.Equal(t, int64(500+i*40), b.ms, "video %d", i)
		assert.Equal(t, vf[i].Keyframe, b.keyframe)
		assert.Equal(t, vf[i].Payload, b.data)
	}
	var pcm []int16
	for i, b := range audio {
		assert.Equal(t, int64(i*20), b.ms)
		pcm = g711.DecodeALaw(pcm, b.data)
	}
	assert.Greater(t, testmedia.Goertzel(pcm[:4000], 8000, 1000), 0.9)
	assert.Greater(t, len(m.Segment.Cluster), 4, "about one cluster a second")
}

func TestMKVVideoBeforeKeyframeIgnored(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.mkv")
	r, err := record.NewMKV(path, record.Config{Video: true})
	require.NoError(t, err)
	vf := clipFrames(0)
	for _, f := range vf[10:] { // join mid-GOP
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.WriteFrame(toneFrames(media.CodecPCMA, 0, 20*time.Millisecond)[0]))
	assert.Equal(t, uint64(15+1), r.Stats().FramesIgnored)
	require.NoError(t, r.Close())
	_, blocks := readBack(t, path)
	require.Len(t, blocks, 75)
	assert.True(t, blocks[0].keyframe)
	assert.Equal(t, int64(0), blocks[0].ms)
}

func TestMKVAudioOnlyWhenVideoNeverComes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.mkv")
	r, err := record.NewMKV(path, record.Config{Audio: true, Video: true, StartWait: 2 * time.Second})
	require.NoError(t, err)
	for _, f := range toneFrames(media.CodecPCMU, 0, 3*time.Second) {
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.Close())
	m, blocks := readBack(t, path)
	require.Len(t, m.Segment.Tracks.TrackEntry, 1)
	assert.Equal(t, []byte{7, 0}, m.Segment.Tracks.TrackEntry[0].CodecPrivate[:2])
	assert.Len(t, blocks, 150)
}

func TestMKVNoTracks(t *testing.T) {
	_, err := record.NewMKV(filepath.Join(t.TempDir(), "x.mkv"), record.Config{})
	require.ErrorIs(t, err, record.ErrNoTracks)
}
