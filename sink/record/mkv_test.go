package record_test

import (
	"bytes"
	"context"
	"encoding/binary"
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
		SeekHead struct {
			Seek []struct {
				SeekID       []byte `ebml:"SeekID"`
				SeekPosition uint64 `ebml:"SeekPosition"`
			} `ebml:"Seek"`
		} `ebml:"SeekHead"`
		Cues struct {
			CuePoint []struct {
				CueTime           uint64 `ebml:"CueTime"`
				CueTrackPositions []struct {
					CueTrack           uint64 `ebml:"CueTrack"`
					CueClusterPosition uint64 `ebml:"CueClusterPosition"`
				} `ebml:"CueTrackPositions"`
			} `ebml:"CuePoint"`
		} `ebml:"Cues"`
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
	require.NoError(t, r.Close(context.Background()))
	require.NoError(t, r.Close(context.Background()))
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
	checkCues(t, path, m, 4)
}

// checkCues checks that the SeekHead points at the Cues and that every cue
// point points at a Cluster starting at its time.
func checkCues(t *testing.T, path string, m readMKV, keyframes int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	seg := bytes.Index(b, []byte{0x18, 0x53, 0x80, 0x67})
	require.Positive(t, seg)
	dataStart := seg + 12
	require.Len(t, m.Segment.SeekHead.Seek, 1)
	assert.Equal(t, []byte{0x1c, 0x53, 0xbb, 0x6b}, m.Segment.SeekHead.Seek[0].SeekID)
	cuesAt := dataStart + int(m.Segment.SeekHead.Seek[0].SeekPosition)
	require.Less(t, cuesAt+4, len(b))
	assert.Equal(t, []byte{0x1c, 0x53, 0xbb, 0x6b}, b[cuesAt:cuesAt+4], "SeekHead points at the Cues")
	require.Len(t, m.Segment.Cues.CuePoint, keyframes)
	for _, cp := range m.Segment.Cues.CuePoint {
		require.Len(t, cp.CueTrackPositions, 1)
		at := dataStart + int(cp.CueTrackPositions[0].CueClusterPosition)
		require.Less(t, at+4, len(b))
		assert.Equal(t, []byte{0x1f, 0x43, 0xb6, 0x75}, b[at:at+4], "cue at %d ms points at a Cluster", cp.CueTime)
		var c struct {
			Cluster struct {
				Timecode uint64 `ebml:"Timecode"`
			} `ebml:"Cluster"`
		}
		require.NoError(t, ebml.Unmarshal(bytes.NewReader(b[at:at+elementLen(t, b[at:])]), &c))
		assert.Equal(t, cp.CueTime, c.Cluster.Timecode)
	}
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
	require.NoError(t, r.Close(context.Background()))
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
	require.NoError(t, r.Close(context.Background()))
	m, blocks := readBack(t, path)
	require.Len(t, m.Segment.Tracks.TrackEntry, 1)
	assert.Equal(t, []byte{7, 0}, m.Segment.Tracks.TrackEntry[0].CodecPrivate[:2])
	assert.Len(t, blocks, 150)
	checkCues(t, path, m, len(m.Segment.Cluster)) // audio only: every cluster is a cue
}

func TestMKVNoTracks(t *testing.T) {
	_, err := record.NewMKV(filepath.Join(t.TempDir(), "x.mkv"), record.Config{})
	require.ErrorIs(t, err, record.ErrNoTracks)
}

// elementLen returns the length of the EBML element (ID of 4 bytes, as
// Cluster's, size, data) at the start of b.
func elementLen(t *testing.T, b []byte) int {
	t.Helper()
	require.Greater(t, len(b), 5)
	first := b[4]
	n := 1
	for mask := byte(0x80); mask != 0 && first&mask == 0; mask >>= 1 {
		n++
	}
	require.LessOrEqual(t, n, 8)
	size := uint64(first & (0xff >> n))
	for i := 1; i < n; i++ {
		size = size<<8 | uint64(b[4+i])
	}
	return 4 + n + int(size)
}

// Frames held while a track's first frame is awaited are bounded in bytes:
// big video keyframes with timestamps standing still (StartWait is media
// time) and no audio start the recording once 64 MiB are held, instead of
// piling up to 2000 frames.
func TestMKVStartWaitBoundedInBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big.mkv")
	r, err := record.NewMKV(path, record.Config{Audio: true, Video: true})
	require.NoError(t, err)
	key := clipFrames(0)[0]
	require.True(t, key.Keyframe)
	for i := 0; i < 20; i++ {
		f := *key
		filler := make([]byte, 4<<20) // a filler NAL unit (type 12) of 4 MiB
		filler[0] = 12
		f.Payload = binary.BigEndian.AppendUint32(append([]byte(nil), key.Payload...), uint32(len(filler)))
		f.Payload = append(f.Payload, filler...)
		require.NoError(t, r.WriteFrame(&f))
	}
	assert.Equal(t, uint64(20), r.Stats().FramesWritten, "started at 64 MiB held, then written as they come")
	require.NoError(t, r.Close(context.Background()))
}

// A call shorter than StartWait whose video never came (a phone that
// negotiates video with its camera off): Close writes the audio it holds
// instead of leaving an empty file.
func TestMKVShortCallWithoutVideoKeepsAudio(t *testing.T) {
	path := filepath.Join(t.TempDir(), "short.mkv")
	r, err := record.NewMKV(path, record.Config{Audio: true, Video: true})
	require.NoError(t, err)
	for _, f := range toneFrames(media.CodecPCMA, 0, 3*time.Second) {
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.Close(context.Background()))
	m, blocks := readBack(t, path)
	require.Len(t, m.Segment.Tracks.TrackEntry, 1)
	assert.Len(t, blocks, 150)
	assert.Equal(t, uint64(150), r.Stats().FramesWritten)
}
