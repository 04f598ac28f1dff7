//go:build interop

package filler_test

import (
	"context"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/filler"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/h264gen"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/record"
	"github.com/sipstream/sipstream/sink/rtmpsink"
)

// The call played by holdCall, on its own timeline (DTS = time since it
// started).
const (
	holdAt   = 1500 * time.Millisecond
	unholdAt = 4500 * time.Millisecond
	resumeAt = 4600 * time.Millisecond // the phone sends again
	endAt    = 6500 * time.Millisecond
	tone     = 1000.0
)

// heldCall is what holdCall did.
type heldCall struct {
	heldAt, unheldAt time.Duration // when Hold was called (the ticker may run late)
	stats            filler.Stats
	keyAsks          int
}

// holdCall plays a call in real time through a Filler into fan: 1.5 s of
// H.264 (a phone-like encoder with a keyframe only every 10 s) and a 1 kHz
// PCMA tone, a 3 s hold during which the phone sends nothing, then 2 s of
// media again, video resuming with P frames until the keyframe the Filler
// asks for. It checks what the Filler hands on (before any sink's own DTS
// guard could hide anything): strictly increasing DTS per kind, real
// video resuming at a keyframe.
// keyReq, when not nil, is a sink's keyframe request (set from its own
// goroutine), honoured at the next video frame like a phone's encoder.
func holdCall(t *testing.T, fan *sink.Fanout, keyReq *atomic.Bool) heldCall {
	gen, err := h264gen.New(h264gen.Config{Width: 320, Height: 180, FrameRate: 25,
		KeyframeInterval: 10 * time.Second, Color: color.RGBA{R: 40, G: 90, B: 200, A: 255}})
	require.NoError(t, err)

	var mu sync.Mutex
	type stamp struct {
		dts         time.Duration
		key, filler bool
	}
	outKinds := map[media.Kind][]stamp{}
	realPayload := map[*byte]bool{} // payloads the test wrote, by first byte
	var hc heldCall
	f, err := filler.New(filler.Config{OnNeedKeyframe: func() { hc.keyAsks++; gen.ForceKeyframe() }},
		func(fr *media.Frame) {
			mu.Lock()
			s := stamp{dts: fr.DTS, key: fr.Keyframe, filler: len(fr.Payload) > 0 && !realPayload[&fr.Payload[0]]}
			outKinds[fr.Kind()] = append(outKinds[fr.Kind()], s)
			mu.Unlock()
			if err := fan.WriteFrame(fr); err != nil {
				t.Errorf("fanout: %v", err)
			}
		})
	require.NoError(t, err)

	write := func(fr *media.Frame) {
		mu.Lock()
		realPayload[&fr.Payload[0]] = true
		mu.Unlock()
		f.WriteFrame(fr)
	}
	var sample int
	nextAudio := time.Duration(0)
	audioUntil := func(until time.Duration) {
		for ; nextAudio <= until; nextAudio += 20 * time.Millisecond {
			p := g711.EncodeALaw(nil, testmedia.Tone(tone, 8000, sample, 160, 0.5))
			sample += 160
			write(&media.Frame{Codec: media.CodecPCMA, PTS: nextAudio, DTS: nextAudio, Keyframe: true,
				Payload: p, ClockRate: 8000, Channels: 1, Duration: 20 * time.Millisecond})
		}
	}
	videoUntil := func(until time.Duration) {
		if keyReq != nil && keyReq.Swap(false) {
			gen.ForceKeyframe()
		}
		gen.Until(until+time.Millisecond, func(fr *media.Frame) {
			cp := *fr // the generator reuses its Frame; the payload is new
			write(&cp)
		})
	}

	start := time.Now()
	held, unheld := false, false
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		e := time.Since(start)
		switch {
		case e >= endAt:
		case e < holdAt || e >= resumeAt:
			audioUntil(e)
			videoUntil(e)
			continue
		case !held:
			f.Hold(true)
			held, hc.heldAt = true, e
			continue
		case e >= unholdAt && !unheld:
			f.Hold(false)
			unheld, hc.unheldAt = true, e
			continue
		default:
			// On hold: the phone sends nothing; its clocks run on.
			nextAudio = e.Truncate(20*time.Millisecond) + 20*time.Millisecond
			gen.Until(e, func(*media.Frame) {})
			continue
		}
		break
	}
	hc.stats = f.Stats()
	f.Close()

	mu.Lock()
	defer mu.Unlock()
	for kind, ss := range outKinds {
		for i := 1; i < len(ss); i++ {
			require.Greater(t, ss[i].dts, ss[i-1].dts, "%v DTS at %d", kind, i)
		}
	}
	firstRealAfter := -1
	for i, s := range outKinds[media.KindVideo] {
		if !s.filler && s.dts > holdAt {
			firstRealAfter = i
			break
		}
	}
	require.GreaterOrEqual(t, firstRealAfter, 0, "real video after the hold")
	assert.True(t, outKinds[media.KindVideo][firstRealAfter].key, "real video resumes with a keyframe")
	t.Logf("filler stats: %+v, keyframe requests %d", hc.stats, hc.keyAsks)
	assert.GreaterOrEqual(t, hc.keyAsks, 1)
	assert.Positive(t, hc.stats.DroppedNoKeyframe, "P frames after the hold dropped")
	assert.InDelta(t, (hc.unheldAt - hc.heldAt).Seconds(), hc.stats.HoldTime.Seconds(), 0.05)
	return hc
}

// checkHeldFile has ffprobe and ffmpeg read a file made of holdCall's
// output: it decodes without errors, ffmpeg copying it says nothing about
// timestamps, the video never stops for longer than a still interval and
// has a keyframe still every 500 ms through the hold, the audio track has
// no hole and lasts as long as the file (audioStep: one audio packet's
// duration), and the tone is there before and after a silent hold.
func checkHeldFile(t *testing.T, file string, hc heldCall, audioStep float64) {
	t.Helper()
	cp := testenv.RecordStream(t, file, time.Minute)
	require.NoError(t, cp.Wait(time.Minute))
	rep := testenv.AnalyseRecording(t, cp, time.Minute)
	t.Logf("report: %v", rep)
	assert.Empty(t, rep.DecodeErrors)
	assert.Zero(t, rep.DTSErrors(), "DTS warnings: %v", rep.DTSWarnings)
	assert.Empty(t, testenv.DecodeErrors(t, file))
	assert.LessOrEqual(t, rep.Video.LongestGap, 650*time.Millisecond, "video never stops for longer than a still interval")
	assert.LessOrEqual(t, rep.Video.LongestKeyframeInterval, 2*time.Second)

	// Stills: keyframes every 500 ms through the hold.
	vpts := testenv.PacketTimes(t, file, "v:0")
	keys := testenv.KeyframeTimes(t, file)
	first := vpts[0]
	var inHold, keysInHold int
	from, to := hc.heldAt.Seconds()+0.05, hc.unheldAt.Seconds()-0.05
	for _, p := range vpts {
		if p-first > from && p-first < to {
			inHold++
		}
	}
	for _, k := range keys {
		if k-first > from && k-first < to {
			keysInHold++
		}
	}
	t.Logf("video packets %d, keyframes %d, during the hold (%.3f..%.3f s) %d (keyframes %d)",
		len(vpts), len(keys), from, to, inHold, keysInHold)
	assert.InDelta(t, (to-from)/0.5, inHold, 1, "a still every 500 ms")
	assert.Equal(t, inHold, keysInHold, "every still is a keyframe")
	assert.Equal(t, len(vpts), testenv.CountVideoFrames(t, file), "every video packet decodes to a picture")

	// Audio as long as the file, with no hole: its packets cover the
	// whole duration.
	apts := testenv.PacketTimes(t, file, "a:0")
	dur := testenv.Duration(t, file)
	covered := float64(len(apts)) * audioStep
	var maxStep float64
	for i := 1; i < len(apts); i++ {
		maxStep = math.Max(maxStep, apts[i]-apts[i-1])
	}
	t.Logf("duration %.3f s, audio packets %d (%.3f s), audio %.3f..%.3f, longest step %.3f s",
		dur, len(apts), covered, apts[0], apts[len(apts)-1], maxStep)
	assert.LessOrEqual(t, maxStep, 1.5*audioStep, "audio continuous across the hold")
	assert.InDelta(t, dur, covered, 0.1)
	assert.InDelta(t, endAt.Seconds(), dur, 0.3)

	// Tone before and after, silence during the hold.
	pcm := testenv.DecodePCM(t, file, 8000)
	block := func(from, to float64) []int16 {
		a, b := int(from*8000), int(to*8000)
		require.Less(t, b, len(pcm))
		return pcm[a:b]
	}
	rms := func(s []int16) float64 {
		var e float64
		for _, v := range s {
			e += float64(v) * float64(v)
		}
		return math.Sqrt(e / float64(len(s)))
	}
	assert.Greater(t, testmedia.Goertzel(block(0.2, 1.3), 8000, tone), 0.9, "tone before the hold")
	assert.Less(t, rms(block(holdAt.Seconds()+0.2, unholdAt.Seconds()-0.1)), 20.0, "silence during the hold")
	assert.Greater(t, testmedia.Goertzel(block(resumeAt.Seconds()+0.2, endAt.Seconds()-0.3), 8000, tone), 0.9, "tone after the hold")
}

// flvFanout returns a Fanout recording to an FLV file.
func flvFanout(t *testing.T) (string, *sink.Fanout) {
	file := filepath.Join(t.TempDir(), "call.flv")
	rec, err := record.NewFLV(file, record.Config{Audio: true, Video: true, FlushInterval: 200 * time.Millisecond})
	require.NoError(t, err)
	fan := sink.NewFanout(sink.FanoutConfig{})
	require.NoError(t, fan.Add("flv", rec, 0))
	return file, fan
}

// closeFanout closes fan, flushing its sinks.
func closeFanout(t *testing.T, fan *sink.Fanout) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, fan.Close(ctx))
}

// TestInteropHoldRecordedAndDecoded records holdCall to FLV (H.264 and G.711
// A-law as they came) through a sink.Fanout.
func TestInteropHoldRecordedAndDecoded(t *testing.T) {
	file, fan := flvFanout(t)
	hc := holdCall(t, fan, nil)
	closeFanout(t, fan)

	streams := testenv.ProbeStreams(t, file)
	assert.Equal(t, "h264", streams["video"].CodecName)
	assert.Equal(t, "pcm_alaw", streams["audio"].CodecName)
	checkHeldFile(t, file, hc, 0.020)
}

// TestInteropHoldPublishedToNginx publishes holdCall to a real nginx-rtmp server
// with the RTMP sink (audio as AAC, what platforms take) and checks what
// nginx recorded.
func TestInteropHoldPublishedToNginx(t *testing.T) {
	n := testenv.StartNginx(t, testenv.NginxConfig{Record: true})
	const key = "held"
	var active, keyReq atomic.Bool
	s, err := rtmpsink.New(rtmpsink.Config{URL: n.RTMPURL(), StreamName: key, Audio: true, Video: true,
		OnStatus: func(st rtmpsink.Status, _ string) {
			if st == rtmpsink.StatusActive {
				active.Store(true)
			}
		},
		RequestKeyframe: func() { keyReq.Store(true) }})
	require.NoError(t, err)
	fan := sink.NewFanout(sink.FanoutConfig{})
	require.NoError(t, fan.Add("rtmp", s, 1<<12))
	// The call starts once the stream is published, so that nginx records
	// it from its first frame.
	require.Eventually(t, active.Load, 20*time.Second, 10*time.Millisecond)
	hc := holdCall(t, fan, &keyReq)
	closeFanout(t, fan)

	file := n.RecordFile(key)
	require.Eventually(t, func() bool { _, err := os.Stat(file); return err == nil }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // nginx closes the recording on unpublish
	streams := testenv.ProbeStreams(t, file)
	assert.Equal(t, "h264", streams["video"].CodecName)
	require.Equal(t, "aac", streams["audio"].CodecName)
	rate := streams["audio"].SampleRate
	step := 1024 / 48000.0
	if rate == "44100" {
		step = 1024 / 44100.0
	}
	checkHeldFile(t, file, hc, step)
}

// TestInteropBlackPictureRecorded: a call put on hold before its video sent a
// keyframe gets the black picture (320×180) as its still, then the
// phone's real video (640×360, another SPS) after the hold. The FLV file
// (a new AVC sequence header at the change) decodes cleanly, pictures of
// both sizes included, with a keyframe at least every 500 ms during the
// hold.
func TestInteropBlackPictureRecorded(t *testing.T) {
	file, fan := flvFanout(t)
	f, err := filler.New(filler.Config{BlackWidth: 320, BlackHeight: 180},
		func(fr *media.Frame) { _ = fan.WriteFrame(fr) })
	require.NoError(t, err)
	gen, err := h264gen.New(h264gen.Config{Width: 640, Height: 360, FrameRate: 25, Color: color.RGBA{R: 200, G: 200, A: 255}})
	require.NoError(t, err)

	start := time.Now()
	nextAudio := time.Duration(0)
	audioUntil := func(until time.Duration) {
		for ; nextAudio <= until; nextAudio += 20 * time.Millisecond {
			f.WriteFrame(&media.Frame{Codec: media.CodecPCMA, PTS: nextAudio, DTS: nextAudio, Keyframe: true,
				Payload: g711.EncodeALaw(nil, make([]int16, 160)), ClockRate: 8000, Channels: 1, Duration: 20 * time.Millisecond})
		}
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	phase := 0
	for range tick.C {
		e := time.Since(start)
		switch {
		case e < 500*time.Millisecond: // audio only: video not started yet
			audioUntil(e)
			continue
		case e < 2*time.Second:
			if phase == 0 {
				f.Hold(true)
				phase = 1
			}
			nextAudio = e.Truncate(20*time.Millisecond) + 20*time.Millisecond // the phone sends nothing
			continue
		case e < 3500*time.Millisecond:
			if phase == 1 {
				f.Hold(false)
				gen.Skip(e)
				phase = 2
			}
			audioUntil(e)
			gen.Until(e+time.Millisecond, func(fr *media.Frame) { cp := *fr; f.WriteFrame(&cp) })
			continue
		}
		break
	}
	st := f.Stats()
	f.Close()
	closeFanout(t, fan)
	t.Logf("filler stats: %+v", st)
	assert.LessOrEqual(t, st.DroppedLate, uint64(1))
	// Black stills at 0.5, 1 and 1.5 s, and at 2 s when it comes before
	// the phone's first keyframe.
	assert.InDelta(t, 3.5, st.VideoFrames, 0.5)

	assert.Empty(t, testenv.DecodeErrors(t, file))
	vpts := testenv.PacketTimes(t, file, "v:0")
	keys := testenv.KeyframeTimes(t, file)
	t.Logf("video packets %d, keyframes at %v", len(vpts), keys)
	assert.Equal(t, len(vpts), testenv.CountVideoFrames(t, file), "every video packet decodes")
	// The file starts with the first black still (the recorder waits for a
	// video keyframe): stills every 500 ms until the real video.
	require.GreaterOrEqual(t, len(keys), 4)
	for i := 1; i < 3; i++ {
		assert.InDelta(t, 0.5, keys[i]-keys[i-1], 0.01)
	}
	assert.Greater(t, len(vpts), 25, "the real video after the hold")
	// Both sizes decoded.
	out := testenv.RunClean(t, testenv.LookPath(t, "ffprobe"), "-v", "error", "-select_streams", "v:0",
		"-show_entries", "frame=width,height", "-of", "csv=p=0", file)
	assert.Contains(t, string(out), "320,180")
	assert.Contains(t, string(out), "640,360")
}
