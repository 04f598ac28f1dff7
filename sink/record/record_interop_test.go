//go:build interop

package record_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/record"
)

type probeStream struct {
	CodecName  string `json:"codec_name"`
	CodecType  string `json:"codec_type"`
	SampleRate string `json:"sample_rate"`
	Channels   int    `json:"channels"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	ReadFrames string `json:"nb_read_frames"`
}

type probeResult struct {
	Streams []probeStream `json:"streams"`
	Format  struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

// probe runs ffprobe -count_frames on file.
func probe(t *testing.T, file string) probeResult {
	t.Helper()
	ffprobe := testenv.LookPath(t, "ffprobe")
	out, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-show_streams", "-show_format",
		"-of", "json", file).Output()
	require.NoError(t, err)
	var p probeResult
	require.NoError(t, json.Unmarshal(out, &p))
	return p
}

// decodeClean has ffmpeg decode every stream of file: any message at all
// fails.
func decodeClean(t *testing.T, file string) {
	t.Helper()
	require.Empty(t, testenv.DecodeErrors(t, file), "ffmpeg reported errors")
}

// lastPacketMs returns the largest packet PTS (ms) ffprobe finds in file.
func lastPacketMs(t *testing.T, file string) int64 {
	t.Helper()
	ffprobe := testenv.LookPath(t, "ffprobe")
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0", file).Output()
	require.NoError(t, err)
	var last float64
	for _, l := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64)
		if err == nil && v > last {
			last = v
		}
	}
	return int64(last * 1000)
}

func TestInteropMKVH264PCMA(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.mkv")
	r, err := record.NewMKV(path, record.Config{Audio: true, Video: true})
	require.NoError(t, err)
	for _, f := range interleave(clipFrames(time.Second), toneFrames(media.CodecPCMA, time.Second, 4*time.Second)) {
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.Close(context.Background()))
	decodeClean(t, path)
	p := probe(t, path)
	require.Len(t, p.Streams, 2)
	assert.Equal(t, "h264", p.Streams[0].CodecName)
	assert.Equal(t, 320, p.Streams[0].Width)
	assert.Equal(t, 240, p.Streams[0].Height)
	assert.Equal(t, "100", p.Streams[0].ReadFrames)
	assert.Equal(t, "pcm_alaw", p.Streams[1].CodecName)
	assert.Equal(t, "8000", p.Streams[1].SampleRate)
	assert.Equal(t, "200", p.Streams[1].ReadFrames)
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	require.NoError(t, err)
	assert.InDelta(t, 4.0, d, 0.05)

	// Seeking to 2.5 s (through the Cues) lands on the keyframe before, at 2 s,
	// and decodes.
	ffprobe := testenv.LookPath(t, "ffprobe")
	out, err := exec.Command(ffprobe, "-v", "error", "-read_intervals", "2.5%+#1", "-select_streams", "v:0",
		"-show_entries", "packet=pts_time,flags", "-of", "csv=p=0", path).Output()
	require.NoError(t, err)
	assert.Equal(t, "2.000000,K_", strings.TrimSpace(string(out)))
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	msg, err := exec.Command(ffmpeg, "-nostdin", "-v", "error", "-xerror", "-ss", "2.5", "-i", path,
		"-frames:v", "5", "-f", "null", "-").CombinedOutput()
	require.NoError(t, err, "%s", msg)
	assert.Empty(t, strings.TrimSpace(string(msg)))
}

func TestInteropMKVSIGKILLPlays(t *testing.T) {
	path, lastMs := killedRecording(t, "mkv", 3500)
	decodeClean(t, path)
	end := lastPacketMs(t, path)
	require.GreaterOrEqual(t, end, lastMs-1100, "killed after %d ms written, file plays to %d ms", lastMs, end)
	p := probe(t, path)
	require.Len(t, p.Streams, 2)
	assert.Equal(t, "h264", p.Streams[0].CodecName)
	assert.Equal(t, "pcm_alaw", p.Streams[1].CodecName)
}

// srcTrack and srcMKV read files ffmpeg made, to feed their packets to the
// recorders as a call's frames would come.
type srcTrack struct {
	TrackNumber  uint64 `ebml:"TrackNumber"`
	CodecID      string `ebml:"CodecID"`
	CodecPrivate []byte `ebml:"CodecPrivate"`
	Audio        struct {
		SamplingFrequency float64 `ebml:"SamplingFrequency"`
		Channels          uint64  `ebml:"Channels"`
	} `ebml:"Audio"`
}

type srcMKV struct {
	Segment struct {
		Tracks struct {
			TrackEntry []srcTrack `ebml:"TrackEntry"`
		} `ebml:"Tracks"`
		Cluster []struct {
			Timecode    uint64       `ebml:"Timecode"`
			SimpleBlock []ebml.Block `ebml:"SimpleBlock"`
			BlockGroup  []struct {
				Block ebml.Block `ebml:"Block"`
			} `ebml:"BlockGroup"`
		} `ebml:"Cluster"`
	} `ebml:"Segment"`
}

// ffmpegFrames makes a 3 s file with ffmpeg (args are its codec options)
// and returns its packets as frames plus the audio track's CodecPrivate.
func ffmpegFrames(t *testing.T, ext string, args ...string) ([]*media.Frame, []byte) {
	t.Helper()
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	src := filepath.Join(t.TempDir(), "src."+ext)
	cmdArgs := append([]string{"-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000", "-t", "3", "-g", "25"}, args...)
	cmdArgs = append(cmdArgs, src)
	msg, err := exec.Command(ffmpeg, cmdArgs...).CombinedOutput()
	require.NoError(t, err, "%s", msg)
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	var m srcMKV
	require.NoError(t, ebml.Unmarshal(bytes.NewReader(b), &m))
	codecs := map[uint64]srcTrack{}
	var asc []byte
	for _, tr := range m.Segment.Tracks.TrackEntry {
		codecs[tr.TrackNumber] = tr
		if strings.HasPrefix(tr.CodecID, "A_") {
			asc = tr.CodecPrivate
		}
	}
	var frames []*media.Frame
	add := func(tc uint64, b ebml.Block, key bool) {
		tr := codecs[b.TrackNumber]
		ts := time.Duration(int64(tc)+int64(b.Timecode)) * time.Millisecond
		f := &media.Frame{PTS: ts, DTS: ts, Keyframe: key, Payload: b.Data[0]}
		switch tr.CodecID {
		case "V_VP8":
			f.Codec, f.ClockRate = media.CodecVP8, 90000
		case "V_MPEG4/ISO/AVC":
			f.Codec, f.ClockRate = media.CodecH264, 90000
		case "A_OPUS":
			f.Codec, f.ClockRate, f.Channels, f.Keyframe = media.CodecOpus, 48000, uint8(tr.Audio.Channels), true
		case "A_AAC":
			f.Codec, f.ClockRate, f.Channels, f.Keyframe = media.CodecAAC, uint32(tr.Audio.SamplingFrequency), uint8(tr.Audio.Channels), true
		default:
			t.Fatalf("unexpected codec %s", tr.CodecID)
		}
		frames = append(frames, f)
	}
	for _, c := range m.Segment.Cluster {
		for _, b := range c.SimpleBlock {
			add(c.Timecode, b, b.Keyframe)
		}
		for _, g := range c.BlockGroup {
			add(c.Timecode, g.Block, false)
		}
	}
	sort.SliceStable(frames, func(i, j int) bool { return frames[i].DTS < frames[j].DTS })
	return frames, asc
}

func TestInteropWebMVP8Opus(t *testing.T) {
	frames, _ := ffmpegFrames(t, "webm", "-c:v", "libvpx", "-b:v", "300k", "-c:a", "libopus", "-ac", "1")
	path := filepath.Join(t.TempDir(), "call.webm")
	r, err := record.NewMKV(path, record.Config{Audio: true, Video: true})
	require.NoError(t, err)
	for _, f := range frames {
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.Close(context.Background()))
	decodeClean(t, path)
	p := probe(t, path)
	assert.Contains(t, p.Format.FormatName, "webm")
	require.Len(t, p.Streams, 2)
	assert.Equal(t, "vp8", p.Streams[0].CodecName)
	assert.Equal(t, "75", p.Streams[0].ReadFrames)
	assert.Equal(t, "opus", p.Streams[1].CodecName)
	assert.Equal(t, "48000", p.Streams[1].SampleRate)
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	require.NoError(t, err)
	assert.InDelta(t, 3.0, d, 0.1)
}

func TestInteropMKVH264AAC(t *testing.T) {
	frames, asc := ffmpegFrames(t, "mkv", "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-x264-params", "repeat-headers=1",
		"-c:a", "aac", "-ac", "1", "-b:a", "64k")
	require.NotEmpty(t, asc)
	path := filepath.Join(t.TempDir(), "call.mkv")
	r, err := record.NewMKV(path, record.Config{Audio: true, Video: true, AudioSpecificConfig: asc})
	require.NoError(t, err)
	for _, f := range frames {
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.Close(context.Background()))
	decodeClean(t, path)
	p := probe(t, path)
	require.Len(t, p.Streams, 2)
	assert.Equal(t, "h264", p.Streams[0].CodecName)
	assert.Equal(t, "75", p.Streams[0].ReadFrames)
	assert.Equal(t, "aac", p.Streams[1].CodecName)
	assert.Equal(t, "48000", p.Streams[1].SampleRate)
	assert.Equal(t, 1, p.Streams[1].Channels)
}

func TestInteropFLVH264PCMA(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.flv")
	r, err := record.NewFLV(path, record.Config{Audio: true, Video: true})
	require.NoError(t, err)
	for _, f := range interleave(clipFrames(time.Second), toneFrames(media.CodecPCMA, time.Second, 4*time.Second)) {
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.Close(context.Background()))
	decodeClean(t, path)
	p := probe(t, path)
	require.Len(t, p.Streams, 2)
	byType := map[string]probeStream{}
	for _, s := range p.Streams {
		byType[s.CodecType] = s
	}
	assert.Equal(t, "h264", byType["video"].CodecName)
	assert.Equal(t, 320, byType["video"].Width)
	assert.Equal(t, "100", byType["video"].ReadFrames)
	assert.Equal(t, "pcm_alaw", byType["audio"].CodecName)
	assert.Equal(t, "8000", byType["audio"].SampleRate)
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	require.NoError(t, err)
	assert.InDelta(t, 4.0, d, 0.05)
}

func TestInteropFLVH264AAC(t *testing.T) {
	frames, asc := ffmpegFrames(t, "mkv", "-c:v", "libx264", "-profile:v", "baseline", "-bf", "0", "-x264-params", "repeat-headers=1",
		"-c:a", "aac", "-ac", "1", "-b:a", "64k")
	path := filepath.Join(t.TempDir(), "call.flv")
	r, err := record.NewFLV(path, record.Config{Audio: true, Video: true, AudioSpecificConfig: asc})
	require.NoError(t, err)
	for _, f := range frames {
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.Close(context.Background()))
	decodeClean(t, path)
	p := probe(t, path)
	require.Len(t, p.Streams, 2)
	byType := map[string]probeStream{}
	for _, s := range p.Streams {
		byType[s.CodecType] = s
	}
	assert.Equal(t, "h264", byType["video"].CodecName)
	assert.Equal(t, "75", byType["video"].ReadFrames)
	assert.Equal(t, "aac", byType["audio"].CodecName)
	assert.Equal(t, "48000", byType["audio"].SampleRate)
}

func TestInteropFLVSIGKILLPlays(t *testing.T) {
	path, lastMs := killedRecording(t, "flv", 3500)
	decodeClean(t, path)
	end := lastPacketMs(t, path)
	require.GreaterOrEqual(t, end, lastMs-1100, "killed after %d ms written, file plays to %d ms", lastMs, end)
}

// A recording stopped by its quota plays to its end in ffmpeg.
func TestInteropQuotaRecordingPlays(t *testing.T) {
	for _, format := range []string{"mkv", "flv"} {
		t.Run(format, func(t *testing.T) {
			path, _, _ := recordWithQuota(t, format)
			decodeClean(t, path)
			p := probe(t, path)
			require.Len(t, p.Streams, 2)
			for _, s := range p.Streams {
				n, err := strconv.Atoi(s.ReadFrames)
				require.NoError(t, err)
				assert.Positive(t, n, "%s frames", s.CodecType)
			}
			assert.Greater(t, lastPacketMs(t, path), int64(2500))
		})
	}
}
