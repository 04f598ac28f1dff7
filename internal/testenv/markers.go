package testenv

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Marker media: a picture that flashes white and a tone burst that start
// together at every whole second, so that the A/V offset of a stream that
// went through a phone and the gateway can be read back from what was
// published (the flash onset against the tone onset).
const (
	// MarkerToneHz is the burst's frequency.
	MarkerToneHz = 1000
	// MarkerBurst is how long each flash and tone burst lasts.
	MarkerBurst = 200 * time.Millisecond
)

// MarkerFiles are the marker media MakeMarkerMedia generated.
type MarkerFiles struct {
	// Video is a Matroska file with H.264 video (libx264 ultrafast,
	// cheap to decode; MJPEG cost baresip enough CPU to fall under 25
	// fps on a loaded machine): a moving test pattern (ffmpeg's testsrc2) at the requested size and
	// rate, all white for MarkerBurst at every whole second.
	Video string
	// Audio is a WAV file (48 kHz stereo, as baresip's aufile wants it): MarkerToneHz for MarkerBurst at
	// every whole second, silence otherwise.
	Audio string
}

// MakeMarkerMedia generates d of marker media in a temporary folder.
func MakeMarkerMedia(t testing.TB, width, height, fps int, d time.Duration) MarkerFiles {
	t.Helper()
	dir := t.TempDir()
	m := MarkerFiles{Video: filepath.Join(dir, "markers.mkv"), Audio: filepath.Join(dir, "markers.wav")}
	burst := MarkerBurst.Seconds()
	video := fmt.Sprintf("testsrc2=s=%dx%d:r=%d:d=%.3f,drawbox=x=0:y=0:w=iw:h=ih:color=white:t=fill:enable='lt(mod(t\\,1)\\,%.3f)'",
		width, height, fps, d.Seconds(), burst)
	audio := fmt.Sprintf("aevalsrc='if(lt(mod(t\\,1)\\,%.3f)\\,0.5*sin(2*PI*%d*t)\\,0)':s=48000:d=%.3f", burst, MarkerToneHz, d.Seconds())
	ffmpeg := LookPath(t, "ffmpeg")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", video, "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", m.Video},
		{"-f", "lavfi", "-i", audio, "-ac", "2", "-c:a", "pcm_s16le", m.Audio},
	} {
		cmd := exec.Command(ffmpeg, append([]string{"-nostdin", "-v", "error", "-y"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("generating marker media: %v: %s", err, out)
		}
	}
	return m
}

// AVReport is the A/V offset read from marker media (see MakeMarkerMedia)
// in a published stream.
type AVReport struct {
	// Offsets are, for each flash onset whose frame came right after the
	// previous one (no freeze hides the true onset), the nearest tone
	// onset minus the flash onset: positive means audio late.
	Offsets []time.Duration
	// Flashes is the number of flash onsets seen, Skipped those left out
	// because a gap in the video preceded them.
	Flashes, Skipped int
}

// Median returns the median offset (zero without offsets).
func (r AVReport) Median() time.Duration {
	if len(r.Offsets) == 0 {
		return 0
	}
	o := append([]time.Duration(nil), r.Offsets...)
	sort.Slice(o, func(i, j int) bool { return o[i] < o[j] })
	return o[len(o)/2]
}

// Worst returns the offset farthest from zero.
func (r AVReport) Worst() time.Duration {
	var w time.Duration
	for _, o := range r.Offsets {
		if o.Abs() > w.Abs() {
			w = o
		}
	}
	return w
}

// String renders the report compactly: median/worst(n).
func (r AVReport) String() string {
	if len(r.Offsets) == 0 {
		return fmt.Sprintf("none(flashes=%d,skipped=%d)", r.Flashes, r.Skipped)
	}
	return fmt.Sprintf("%v/%v(n=%d)", r.Median().Round(time.Millisecond), r.Worst().Round(time.Millisecond), len(r.Offsets))
}

var (
	framePTSRE     = regexp.MustCompile(`pts_time:(-?[0-9.]+)`)
	yavgRE         = regexp.MustCompile(`lavfi\.signalstats\.YAVG=([0-9.]+)`)
	silenceEndedRE = regexp.MustCompile(`silence_end: (-?[0-9.]+)`)
)

// DecodedFrame is one picture ffmpeg decoded: its time in the file and
// its mean luma (0-255; a marker flash is above 200).
type DecodedFrame struct {
	PTS  float64
	Luma float64
}

// FrameLuma decodes the first video track of file (any container ffmpeg
// reads, raw H.264 Annex B included) and returns every picture in output
// order with its mean luma.
func FrameLuma(t testing.TB, file string) []DecodedFrame {
	t.Helper()
	out, err := exec.Command(LookPath(t, "ffmpeg"), "-nostdin", "-hide_banner", "-nostats", "-copyts", "-i", file, "-map", "0:v:0",
		"-vf", "signalstats,metadata=print:key=lavfi.signalstats.YAVG", "-enc_time_base", encTimeBase(t), "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg signalstats %s: %v: %s", file, err, out)
	}
	var frames []DecodedFrame
	pts := math.NaN()
	for _, l := range strings.Split(string(out), "\n") {
		if m := framePTSRE.FindStringSubmatch(l); m != nil {
			pts, _ = strconv.ParseFloat(m[1], 64)
		}
		if m := yavgRE.FindStringSubmatch(l); m != nil && !math.IsNaN(pts) {
			y, _ := strconv.ParseFloat(m[1], 64)
			frames = append(frames, DecodedFrame{PTS: pts, Luma: y})
			pts = math.NaN()
		}
	}
	return frames
}

// FlashOnsets returns the indexes of the frames where a flash starts: the
// mean luma jumps above 200.
func FlashOnsets(frames []DecodedFrame) []int {
	var on []int
	for i := 1; i < len(frames); i++ {
		if frames[i].Luma > 200 && frames[i-1].Luma <= 200 {
			on = append(on, i)
		}
	}
	return on
}

// ToneOnsets returns the times (seconds, on the file's timestamps) where
// the first audio track of file goes from at least 100 ms of silence
// (Silences) to sound.
func ToneOnsets(t testing.TB, file string) []float64 {
	t.Helper()
	var onsets []float64
	for _, s := range Silences(t, file, 100*time.Millisecond, 0) {
		if s.End >= 0 {
			onsets = append(onsets, s.End)
		}
	}
	return onsets
}

// Silence is a stretch of silence in a file's audio, in seconds on the
// file's own timestamps. End is -1 for a silence still running at the end.
type Silence struct{ Start, End float64 }

var silenceStartRE = regexp.MustCompile(`silence_start: (-?[0-9.]+)`)

// Silences runs ffmpeg's silencedetect (noise floor -40 dB, at least
// minDur) over the first audio track of file from timestamp from (seconds;
// zero: all of it) on, with the file's own timestamps (-copyts), so the
// times compare with ffprobe's.
func Silences(t testing.TB, file string, minDur time.Duration, from float64) []Silence {
	t.Helper()
	filter := fmt.Sprintf("silencedetect=noise=-40dB:duration=%.3f", minDur.Seconds())
	if from > 0 {
		filter = fmt.Sprintf("atrim=start=%.3f,", from) + filter
	}
	out, err := exec.Command(LookPath(t, "ffmpeg"), "-nostdin", "-hide_banner", "-nostats", "-copyts", "-i", file, "-map", "0:a:0",
		"-af", filter, "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg silencedetect %s: %v: %s", file, err, out)
	}
	starts := silenceStartRE.FindAllStringSubmatch(string(out), -1)
	ends := silenceEndedRE.FindAllStringSubmatch(string(out), -1)
	var iv []Silence
	for i, m := range starts {
		s, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatalf("silencedetect start %q", m[1])
		}
		e := -1.0
		if i < len(ends) {
			if e, err = strconv.ParseFloat(ends[i][1], 64); err != nil {
				t.Fatalf("silencedetect end %q", ends[i][1])
			}
		}
		iv = append(iv, Silence{s, e})
	}
	return iv
}

// MarkerOffsets measures the A/V offset of file, a stream made from marker
// media: flash onsets (FlashOnsets) against tone onsets (ToneOnsets), both
// on the file's own timestamps. fps is the video's nominal frame rate.
func MarkerOffsets(t testing.TB, file string, fps int) AVReport {
	t.Helper()
	frames := FrameLuma(t, file)
	onsets := ToneOnsets(t, file)
	var r AVReport
	frameIv := 1 / float64(fps)
	for _, i := range FlashOnsets(frames) {
		r.Flashes++
		if frames[i].PTS-frames[i-1].PTS > 1.5*frameIv {
			r.Skipped++
			continue
		}
		best := math.Inf(1)
		for _, o := range onsets {
			if math.Abs(o-frames[i].PTS) < math.Abs(best) {
				best = o - frames[i].PTS
			}
		}
		if math.Abs(best) > 0.5 {
			continue // no burst decoded near it (start or end of the file)
		}
		r.Offsets = append(r.Offsets, time.Duration(best*float64(time.Second)).Round(100*time.Microsecond))
	}
	return r
}
