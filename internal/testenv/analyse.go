package testenv

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Recording is an ffmpeg process copying a live stream (stream copy, no
// re-encoding) into an FLV file.
type Recording struct {
	// File is the FLV file being written.
	File string
	out  *SyncBuffer
	p    *Process
}

// RecordStream starts ffmpeg copying d of url (rtmp://host:port/app/name,
// or a file) into a file, d counted from the first packet. With
// nginx-rtmp, start it before the stream is published: nginx holds a
// player until its publisher arrives, so the file has the stream from its
// first tag. ffmpeg is killed when the test ends.
func RecordStream(t testing.TB, url string, d time.Duration) *Recording {
	t.Helper()
	bin := LookPath(t, "ffmpeg")
	r := &Recording{File: filepath.Join(t.TempDir(), "recorded.flv"), out: &SyncBuffer{}}
	cmd := exec.Command(bin, "-nostdin", "-hide_banner", "-loglevel", "warning", "-rw_timeout", "60000000",
		"-i", url, "-map", "0", "-c", "copy", "-t", fmt.Sprintf("%.3f", d.Seconds()), "-f", "flv", "-y", r.File)
	cmd.Stdout, cmd.Stderr = r.out, r.out
	r.p = StartProcess(t, cmd)
	return r
}

// Log returns what ffmpeg printed so far (warnings and errors).
func (r *Recording) Log() string { return r.out.String() }

// Wait waits up to d for ffmpeg to finish and returns its failure, if
// any.
func (r *Recording) Wait(d time.Duration) error {
	if err := r.p.Wait(d); err != nil {
		return fmt.Errorf("ffmpeg: %w: %s", err, r.out.String())
	}
	return nil
}

// TrackReport is what the analyser measured on one track.
type TrackReport struct {
	// Codec is ffprobe's codec name ("h264", "aac").
	Codec string
	// Frames is the number of packets (access units) in the window.
	Frames int
	// DecodedFrames is the number of frames ffmpeg's decoder output for
	// the window (video only).
	DecodedFrames int
	// KeyframeTimes are the keyframes' times in seconds from the window's
	// start (video only).
	KeyframeTimes []float64
	// LongestGap is the longest time without a frame: between
	// consecutive frames, or from the last one to the window's end. For
	// video, the longest freeze a viewer sees.
	LongestGap time.Duration
	// ShortestStep is the shortest time between consecutive frames: far
	// under the frame interval, it shows frames squeezed together on the
	// timeline (after a freeze, say).
	ShortestStep time.Duration
	// LongestKeyframeInterval is the longest time between consecutive
	// keyframes, or from the last one to the window's end (video only).
	LongestKeyframeInterval time.Duration
	// NonIncreasingDTS counts the packets of the whole recording whose DTS
	// is not above the previous packet's of the track.
	NonIncreasingDTS int
}

// StreamReport is what the analyser measured on a recorded stream, over a
// window that starts at the first video keyframe (or the first packet of
// an audio-only stream), as a viewer joining sees it.
type StreamReport struct {
	// Start is where the window starts in the recording, in seconds.
	Start float64
	// Window is the window's length: what was asked for, or less if the
	// recording ended before.
	Window time.Duration
	// Video and Audio are the tracks (zero if absent).
	Video, Audio TrackReport
	// DecodeErrors are ffmpeg's error lines when decoding the window
	// (-v error ... -f null -).
	DecodeErrors []string
	// DTSWarnings are the recording ffmpeg's complaints about timestamps
	// ("non monotonically increasing dts", "Non-monotonic DTS"), over the
	// whole recording.
	DTSWarnings []string
	// File is the window cut out of the recording (stream copy), for a
	// closer look.
	File string
}

// DTSErrors is the sum of the tracks' non-increasing DTS and ffmpeg's
// timestamp warnings.
func (r StreamReport) DTSErrors() int {
	return r.Video.NonIncreasingDTS + r.Audio.NonIncreasingDTS + len(r.DTSWarnings)
}

// String renders the report on one line.
func (r StreamReport) String() string {
	return fmt.Sprintf("window=%.2fs@%.2fs frames=%d decoded=%d freeze=%v minstep=%v kfmax=%v keyframes=%d audioFrames=%d audioGap=%v dtsErr=%d decErr=%d",
		r.Window.Seconds(), r.Start, r.Video.Frames, r.Video.DecodedFrames, r.Video.LongestGap.Round(time.Millisecond), r.Video.ShortestStep,
		r.Video.LongestKeyframeInterval.Round(time.Millisecond), len(r.Video.KeyframeTimes), r.Audio.Frames,
		r.Audio.LongestGap.Round(time.Millisecond), r.DTSErrors(), len(r.DecodeErrors))
}

// AnalyseStream records url for lead+window (see RecordStream: start it
// before the stream is published) and analyses the recording with
// AnalyseRecording. lead is room for the first keyframe.
func AnalyseStream(t testing.TB, url string, lead, window time.Duration) StreamReport {
	t.Helper()
	r := RecordStream(t, url, lead+window)
	if err := r.Wait(lead + window + 60*time.Second); err != nil {
		t.Fatalf("recording %s: %v", url, err)
	}
	return AnalyseRecording(t, r, window)
}

// probedPacket is one packet as ffprobe -show_packets lists it.
type probedPacket struct {
	Stream int
	PTS    float64
	DTS    float64
	Key    bool
}

var dtsWarning = regexp.MustCompile(`(?i)non[- ]monoton`)

// AnalyseRecording analyses a finished recording over window (see
// StreamReport).
func AnalyseRecording(t testing.TB, r *Recording, window time.Duration) StreamReport {
	t.Helper()
	rep := AnalyseFile(t, r.File, window)
	for _, l := range strings.Split(r.Log(), "\n") {
		if dtsWarning.MatchString(l) {
			rep.DTSWarnings = append(rep.DTSWarnings, strings.TrimSpace(l))
		}
	}
	return rep
}

// AnalyseFile analyses a media file over window (see StreamReport);
// DTSWarnings stays empty.
func AnalyseFile(t testing.TB, file string, window time.Duration) StreamReport {
	t.Helper()
	types := probeStreamTypes(t, file)
	pkts := probePackets(t, file, "")
	var rep StreamReport
	start := math.Inf(1)
	last := map[int]float64{}
	seen := map[int]bool{}
	for _, p := range pkts {
		if seen[p.Stream] && p.DTS <= last[p.Stream] {
			if types[p.Stream].kind == "video" {
				rep.Video.NonIncreasingDTS++
			} else {
				rep.Audio.NonIncreasingDTS++
			}
		}
		seen[p.Stream], last[p.Stream] = true, p.DTS
	}
	hasVideo := false
	for _, s := range types {
		hasVideo = hasVideo || s.kind == "video"
	}
	for _, p := range pkts {
		kind := types[p.Stream].kind
		if (hasVideo && kind == "video" && p.Key) || (!hasVideo && kind == "audio") {
			start = p.PTS
			break
		}
	}
	if math.IsInf(start, 1) {
		t.Fatalf("%s: no video keyframe (or audio) to start the window at", file)
	}
	end := start + window.Seconds()
	endOfFile := start
	for _, p := range pkts {
		endOfFile = math.Max(endOfFile, p.PTS)
	}
	if endOfFile < end {
		end = endOfFile
	}
	rep.Start = start
	rep.Window = time.Duration((end - start) * float64(time.Second)).Round(time.Millisecond)
	for idx, s := range types {
		var times []float64
		var keys []float64
		for _, p := range pkts {
			if p.Stream != idx || p.PTS < start || p.PTS >= end {
				continue
			}
			times = append(times, p.PTS-start)
			if p.Key {
				keys = append(keys, p.PTS-start)
			}
		}
		tr := TrackReport{Codec: s.codec, Frames: len(times)}
		tr.LongestGap = longestStep(times, end-start)
		tr.ShortestStep = shortestStep(times)
		if s.kind == "video" {
			tr.KeyframeTimes = keys
			tr.LongestKeyframeInterval = longestStep(keys, end-start)
			rep.Video = tr
		} else if s.kind == "audio" {
			rep.Audio = tr
		}
	}

	// Cut the window out (stream copy from the keyframe; ffmpeg's -ss
	// counts from the file's start time) and decode it.
	fileStart := start
	for _, p := range pkts {
		fileStart = math.Min(fileStart, p.PTS)
	}
	rep.File = strings.TrimSuffix(file, filepath.Ext(file)) + "-window.flv"
	if out, err := exec.Command(LookPath(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", file, "-map", "0", "-c", "copy",
		"-ss", fmt.Sprintf("%.3f", start-fileStart), "-t", fmt.Sprintf("%.3f", end-start), "-f", "flv", "-y", rep.File).CombinedOutput(); err != nil {
		t.Fatalf("cutting the window out of %s: %v: %s", file, err, out)
	}
	rep.DecodeErrors = DecodeErrors(t, rep.File)
	if hasVideo {
		rep.Video.DecodedFrames = countDecodedFrames(t, rep.File)
	}
	if dir := os.Getenv("TESTENV_KEEP_DIR"); dir != "" {
		// Keep the window for a closer look (debugging aid).
		if b, err := os.ReadFile(rep.File); err == nil {
			_ = os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".flv"), b, 0o644)
		}
	}
	return rep
}

// shortestStep returns the shortest step between consecutive times
// (sorted here); zero with fewer than two.
func shortestStep(times []float64) time.Duration {
	if len(times) < 2 {
		return 0
	}
	ts := append([]float64(nil), times...)
	sort.Float64s(ts)
	step := math.Inf(1)
	for i := 1; i < len(ts); i++ {
		step = math.Min(step, ts[i]-ts[i-1])
	}
	return time.Duration(step * float64(time.Second)).Round(time.Millisecond)
}

// longestStep returns the longest step between consecutive times (sorted
// here), counting the step from the last one to end; with no times, end.
func longestStep(times []float64, end float64) time.Duration {
	if len(times) == 0 {
		return time.Duration(end * float64(time.Second))
	}
	ts := append([]float64(nil), times...)
	sort.Float64s(ts)
	step := ts[0]
	for i := 1; i < len(ts); i++ {
		step = math.Max(step, ts[i]-ts[i-1])
	}
	step = math.Max(step, end-ts[len(ts)-1])
	return time.Duration(step * float64(time.Second)).Round(time.Millisecond)
}

type streamType struct{ kind, codec string }

// probeStreamTypes returns the file's streams by index.
func probeStreamTypes(t testing.TB, file string) map[int]streamType {
	t.Helper()
	out, err := exec.Command(LookPath(t, "ffprobe"), "-v", "error", "-show_entries", "stream=index,codec_type,codec_name",
		"-of", "json", file).Output()
	if err != nil {
		t.Fatalf("ffprobe -show_streams %s: %v", file, err)
	}
	var v struct {
		Streams []struct {
			Index     int    `json:"index"`
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	m := map[int]streamType{}
	for _, s := range v.Streams {
		m[s.Index] = streamType{s.CodecType, s.CodecName}
	}
	return m
}

// probePackets lists the file's packets in file order (selected: an
// ffprobe stream specifier such as "v:0", or "" for all).
func probePackets(t testing.TB, file, selected string) []probedPacket {
	t.Helper()
	args := []string{"-v", "error"}
	if selected != "" {
		args = append(args, "-select_streams", selected)
	}
	args = append(args, "-show_entries", "packet=stream_index,pts_time,dts_time,flags", "-of", "csv=p=0", file)
	out, err := exec.Command(LookPath(t, "ffprobe"), args...).Output()
	if err != nil {
		t.Fatalf("ffprobe -show_packets %s: %v", file, err)
	}
	var pkts []probedPacket
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Split(strings.TrimSpace(l), ",")
		if len(f) < 4 {
			continue
		}
		idx, err1 := strconv.Atoi(f[0])
		pts, err2 := strconv.ParseFloat(f[1], 64)
		dts, err3 := strconv.ParseFloat(f[2], 64)
		if err1 != nil || err2 != nil {
			continue
		}
		if err3 != nil {
			dts = pts
		}
		pkts = append(pkts, probedPacket{Stream: idx, PTS: pts, DTS: dts, Key: strings.Contains(f[3], "K")})
	}
	return pkts
}

// countDecodedFrames returns how many video frames ffmpeg decodes from
// file.
func countDecodedFrames(t testing.TB, file string) int {
	t.Helper()
	out, err := exec.Command(LookPath(t, "ffprobe"), "-v", "error", "-select_streams", "v:0", "-count_frames",
		"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file).Output()
	if err != nil {
		t.Fatalf("ffprobe -count_frames %s: %v", file, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.Split(string(out), ",")[0]))
	if err != nil {
		t.Fatalf("ffprobe -count_frames %s: %q", file, out)
	}
	return n
}

// DecodeErrors decodes every stream of a media file with ffmpeg and returns
// what ffmpeg complains about, one line each (nil when it decodes
// cleanly). The decoded frames keep the file's time base (-enc_time_base
// -1, "demux" from ffmpeg 7): with ffmpeg's default (1/frame rate), two
// frames less than a frame interval apart round to one tick and the null
// muxer reports a "non monotonically increasing dts" that is not in the
// file. ffmpeg failing ends the test.
func DecodeErrors(t testing.TB, file string) []string {
	t.Helper()
	lines, err := DecodeErrorsOf(t, file)
	if err != nil {
		t.Fatalf("ffmpeg decoding %s: %v: %q", file, err, lines)
	}
	return lines
}

// DecodeErrorsOf is DecodeErrors for comparisons that must not end the
// test: ffmpeg failing is returned as an error, with what it said.
func DecodeErrorsOf(t testing.TB, file string) ([]string, error) {
	t.Helper()
	out, err := exec.Command(LookPath(t, "ffmpeg"), "-nostdin", "-v", "error", "-i", file,
		"-enc_time_base", encTimeBase(t), "-f", "null", "-").CombinedOutput()
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines, err
}
