package testenv

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// The ffprobe and ffmpeg checks tests run on what was recorded or
// published. Each finds its program with LookPath and fails the test when
// the program fails.

// ProbedStream is one stream as ffprobe -show_streams reports it.
type ProbedStream struct {
	Index      int    `json:"index"`
	CodecType  string `json:"codec_type"` // "audio", "video"
	CodecName  string `json:"codec_name"` // "h264", "aac", "pcm_alaw", ...
	Profile    string `json:"profile"`
	SampleRate string `json:"sample_rate"` // audio, in Hz, as ffprobe prints it ("48000")
	Channels   int    `json:"channels"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
}

// ProbeStreams returns the streams of file by codec type ("audio",
// "video"; the last of each type when there are several). file may be a
// live stream's URL (rtmp://...): ffprobe then fails after 20 s without
// data rather than waiting for ever.
func ProbeStreams(t testing.TB, file string) map[string]ProbedStream {
	t.Helper()
	args := []string{"-v", "error"}
	if strings.Contains(file, "://") {
		args = append(args, "-rw_timeout", "20000000")
	}
	out, err := exec.Command(LookPath(t, "ffprobe"), append(args, "-show_streams", "-of", "json", file)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("ffprobe -show_streams %s: %v\n%s", file, err, stderr)
	}
	var v struct {
		Streams []ProbedStream `json:"streams"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("ffprobe -show_streams %s: %v", file, err)
	}
	m := map[string]ProbedStream{}
	for _, s := range v.Streams {
		m[s.CodecType] = s
	}
	return m
}

// Duration returns the duration of file (ffprobe's format=duration) in
// seconds.
func Duration(t testing.TB, file string) float64 {
	t.Helper()
	out, err := exec.Command(LookPath(t, "ffprobe"), "-v", "error", "-show_entries", "format=duration",
		"-of", "csv=p=0", file).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe format=duration %s: %v: %s", file, err, out)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe format=duration %s: %q", file, out)
	}
	return d
}

// PacketTimes returns the pts (seconds) of the packets of stream (an
// ffprobe stream specifier: "a", "v", "a:0", "v:0") in file, in file
// order, as ffprobe reads them without decoding.
func PacketTimes(t testing.TB, file, stream string) []float64 {
	t.Helper()
	out, err := exec.Command(LookPath(t, "ffprobe"), "-v", "error", "-select_streams", stream,
		"-show_entries", "packet=pts_time", "-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe -show_packets %s: %v", file, err)
	}
	var ts []float64
	for _, l := range strings.Fields(string(out)) {
		v, err := strconv.ParseFloat(strings.TrimSuffix(l, ","), 64)
		if err != nil {
			t.Fatalf("ffprobe packet time %q in %s", l, file)
		}
		ts = append(ts, v)
	}
	return ts
}

// ProbedFrame is one video frame ffprobe decoded.
type ProbedFrame struct {
	PTS      float64 // seconds (ffprobe's best effort when the frame has none)
	Keyframe bool
}

// VideoFrames decodes the first video track of file with ffprobe
// -show_frames and returns every frame's presentation time and key flag,
// in order.
func VideoFrames(t testing.TB, file string) []ProbedFrame {
	t.Helper()
	out, err := exec.Command(LookPath(t, "ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_frames",
		"-show_entries", "frame=pts_time,best_effort_timestamp_time,key_frame", "-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe -show_frames %s: %v", file, err)
	}
	var v struct {
		Frames []struct {
			KeyFrame int    `json:"key_frame"`
			PTS      string `json:"pts_time"`
			BestPTS  string `json:"best_effort_timestamp_time"`
		} `json:"frames"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("ffprobe -show_frames %s: %v", file, err)
	}
	fs := make([]ProbedFrame, 0, len(v.Frames))
	for _, f := range v.Frames {
		s := f.PTS
		if s == "" {
			s = f.BestPTS
		}
		pts, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("ffprobe frame time %q in %s", s, file)
		}
		fs = append(fs, ProbedFrame{PTS: pts, Keyframe: f.KeyFrame == 1})
	}
	return fs
}

// CountVideoFrames returns how many frames ffmpeg's decoder outputs for
// the first video track of file (ffprobe -count_frames).
func CountVideoFrames(t testing.TB, file string) int {
	t.Helper()
	return countDecodedFrames(t, file)
}

// DecodePCM decodes the first audio track of file with ffmpeg to mono
// 16-bit samples at rate (resampled by ffmpeg only if the track's rate
// differs).
func DecodePCM(t testing.TB, file string, rate int) []int16 {
	t.Helper()
	out, err := exec.Command(LookPath(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", file, "-map", "0:a:0",
		"-ac", "1", "-ar", strconv.Itoa(rate), "-f", "s16le", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg decoding the audio of %s: %v", file, err)
	}
	pcm := make([]int16, len(out)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(out[2*i:]))
	}
	return pcm
}

// FrameMD5s decodes the video of file with ffmpeg, failing at the first
// decoding error (-xerror), and returns each picture's MD5 in output order
// (ffmpeg's framemd5): what a picture decoded against a wrong reference
// shows even when ffmpeg does not complain.
func FrameMD5s(t testing.TB, file string) []string {
	t.Helper()
	out, err := exec.Command(LookPath(t, "ffmpeg"), "-nostdin", "-v", "error", "-xerror", "-i", file, "-f", "framemd5", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg framemd5 %s: %v", file, err)
	}
	var sums []string
	for _, l := range strings.Split(string(out), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, ",")
		sums = append(sums, strings.TrimSpace(f[len(f)-1]))
	}
	return sums
}

// RunClean runs program (a path, from LookPath) with args and returns what
// it wrote to standard output. The test fails if the program fails or
// writes anything to standard error (with -v error, ffmpeg and ffprobe
// print only errors there).
func RunClean(t testing.TB, program string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(program, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", program, args, err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Fatalf("%s %v reported errors:\n%s", program, args, s)
	}
	return out
}

// KeyframeTimes returns the pts (seconds) of the keyframe packets of the
// first video track of file, as ffprobe reads them without decoding.
func KeyframeTimes(t testing.TB, file string) []float64 {
	t.Helper()
	var keys []float64
	for _, p := range probePackets(t, file, "v:0") {
		if p.Key {
			keys = append(keys, p.PTS)
		}
	}
	return keys
}
