package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"sort"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/sipstream/sipstream/media/aac"
	"github.com/sipstream/sipstream/media/g711"
)

// A/V sync markers. Every videoMarkEvery-th picture (frame numbers 0, 25,
// 50…: one a second, the clip's IDRs) has an audio marker at the same
// media time: the audio packet that starts there (packet 2n for frame n)
// carries 20 ms of silence instead of the tone. Both streams share media
// time zero and the Sender Reports map both RTP clocks to one NTP clock,
// so a gateway in sync publishes the silence's start at the RTMP
// timestamp of the marked picture.
const (
	videoMarkEvery = clipFPS                                      // frames
	audioMarkEvery = videoMarkEvery * frameDuration / audioPacket // packets
	markGap        = float64(audioPacket) / 1e6                   // ms of silence
	// avSampleStreams is how many streams of a round the receiver keeps
	// the audio of, to decode after the window (bounds its memory and
	// CPU).
	avSampleStreams = 4
	// avMaxAudioTags bounds the audio kept per sampled stream (about 2
	// minutes of AAC at 48 kHz).
	avMaxAudioTags = 6000
	// avMatchWithin is how far an audio marker may be from a picture
	// marker to be paired with it: half the markers' period.
	avMatchWithin = 500.0 // ms
)

// audioTag is one published audio tag of a sampled stream.
type audioTag struct {
	ts   float64 // RTMP timestamp, ms
	data []byte  // codec payload: raw AAC access unit or G.711 bytes
}

// avTrack is what the receiver keeps of a sampled stream for the A/V
// sync measurement.
type avTrack struct {
	codec  byte   // FLV SoundFormat: 10 AAC, 7 A-law, 8 µ-law
	asc    []byte // AAC AudioSpecificConfig
	audio  []audioTag
	pics   []float64 // presentation times of the marked pictures, ms
	frames []int64   // their frame numbers
}

// pcmTimeline is decoded audio with the presentation time of each tag's
// first sample.
type pcmTimeline struct {
	rate   int
	pcm    []int16 // mono
	starts []int   // index in pcm where tag k's output begins
	ts     []float64
}

// timeAt is the presentation time (ms) of sample position pos (may be
// fractional): its tag's RTMP timestamp plus its offset in that tag's
// decoded output, as a player presents it.
func (p *pcmTimeline) timeAt(pos float64) float64 {
	k := sort.Search(len(p.starts), func(i int) bool { return float64(p.starts[i]) > pos }) - 1
	k = max(k, 0)
	return p.ts[k] + (pos-float64(p.starts[k]))*1000/float64(p.rate)
}

// decodeTrack decodes a sampled stream's audio. AAC goes through the
// repo's own decoder (media/aac); streams it does not decode (ffmpeg's
// AAC encoder uses the KBD window, which that subset decoder refuses) go
// through ffmpeg. It returns the decoder used.
func decodeTrack(tr *avTrack) (*pcmTimeline, string, error) {
	if len(tr.audio) == 0 {
		return nil, "", errors.New("no audio")
	}
	tl := &pcmTimeline{}
	switch tr.codec {
	case 7, 8:
		tl.rate = 8000
		for _, a := range tr.audio {
			tl.starts, tl.ts = append(tl.starts, len(tl.pcm)), append(tl.ts, a.ts)
			if tr.codec == 7 {
				tl.pcm = g711.DecodeALaw(tl.pcm, a.data)
			} else {
				tl.pcm = g711.DecodeULaw(tl.pcm, a.data)
			}
		}
		return tl, "media/g711", nil
	case 10:
	default:
		return nil, "", fmt.Errorf("audio codec %d not measured", tr.codec)
	}
	var asc mpeg4audio.AudioSpecificConfig
	if err := asc.Unmarshal(tr.asc); err != nil {
		return nil, "", fmt.Errorf("AAC sequence header: %w", err)
	}
	nch := asc.ChannelCount
	tl.rate = asc.SampleRate
	for i, a := range tr.audio {
		tl.starts, tl.ts = append(tl.starts, i*aac.FrameSamples), append(tl.ts, a.ts)
	}
	if pcm, err := decodeAACGo(tr.audio, tl.rate, nch); err == nil {
		tl.pcm = pcm
		return tl, "media/aac", nil
	}
	pcm, err := decodeAACFFmpeg(tr.audio, tl.rate, nch)
	if err != nil {
		return nil, "ffmpeg", err
	}
	tl.pcm = pcm
	return tl, "ffmpeg", nil
}

// decodeAACGo decodes access units with media/aac, keeping the first
// channel.
func decodeAACGo(aus []audioTag, rate, nch int) ([]int16, error) {
	d, err := aac.NewDecoder(rate, nch)
	if err != nil {
		return nil, err
	}
	out := make([]int16, 0, len(aus)*aac.FrameSamples)
	var buf []int16
	for _, a := range aus {
		if buf, err = d.Decode(buf[:0], a.data); err != nil {
			return nil, err
		}
		for i := 0; i < len(buf); i += nch {
			out = append(out, buf[i])
		}
	}
	return out, nil
}

// adtsRates are the samplingFrequencyIndex values (ISO/IEC 14496-3,
// 1.6.3.4).
var adtsRates = []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// decodeAACFFmpeg decodes access units with ffmpeg (ADTS in, 16-bit mono
// PCM out, one 1024-sample frame per access unit as for any AAC decoder).
func decodeAACFFmpeg(aus []audioTag, rate, nch int) ([]int16, error) {
	sf := -1
	for i, r := range adtsRates {
		if r == rate {
			sf = i
		}
	}
	if sf < 0 || nch < 1 || nch > 7 {
		return nil, fmt.Errorf("AAC %d Hz, %d channels: no ADTS header for it", rate, nch)
	}
	var in []byte
	for _, a := range aus {
		in = aac.AppendADTS(in, sf, nch, a.data)
	}
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "aac", "-i", "pipe:0", "-ac", "1", "-f", "s16le", "pipe:1")
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ffmpeg decoding AAC: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	pcm := make([]int16, len(out)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(out[2*i:]))
	}
	if want := len(aus) * aac.FrameSamples; len(pcm) != want {
		return nil, fmt.Errorf("ffmpeg decoded %d samples of %d access units, want %d", len(pcm), len(aus), want)
	}
	return pcm, nil
}

// findGaps returns the start (sample position) of every silence of about
// markGap ms in a 1 kHz tone. The envelope at i is the largest |x| over
// one tone period from i; a sample position is quiet when that is below a
// third of the tone's median envelope. A quiet run [a, b] of the envelope
// means samples [a, b+period) are silent; the silence's start is taken as
// its centre minus half markGap, so that an encoder's smearing, which
// shortens or lengthens a gap at both ends alike, does not move it.
func findGaps(pcm []int16, rate int) []float64 {
	period := max(rate/1000, 1)
	if len(pcm) < 4*period {
		return nil
	}
	env := make([]int32, len(pcm)-period+1)
	for i := range env {
		m := int32(0)
		for _, v := range pcm[i : i+period] {
			m = max(m, abs32(int32(v)))
		}
		env[i] = m
	}
	sorted := append([]int32(nil), env...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	thr := sorted[len(sorted)/2] / 3
	if thr <= 0 {
		return nil
	}
	gap := markGap * float64(rate) / 1000
	var out []float64
	for i := 0; i < len(env); {
		if env[i] >= thr {
			i++
			continue
		}
		a := i
		for i < len(env) && env[i] < thr {
			i++
		}
		b := i - 1
		if a == 0 || i == len(env) {
			continue // cut by the ends: its length is unknown
		}
		length := float64(b - a + period) // samples silent
		if length < gap/2 || length > gap*1.5 {
			continue
		}
		centre := (float64(a) + float64(b+period)) / 2
		out = append(out, centre-gap/2)
	}
	return out
}

func abs32(v int32) int32 {
	if v < 0 {
		return -v
	}
	return v
}

// syncOffsets pairs each audio marker time with the nearest marked
// picture (within avMatchWithin) and returns audio minus video, ms.
func syncOffsets(audio, pics []float64) []float64 {
	if len(pics) == 0 {
		return nil
	}
	p := append([]float64(nil), pics...)
	sort.Float64s(p)
	var out []float64
	for _, a := range audio {
		k := sort.SearchFloat64s(p, a)
		best := math.Inf(1)
		for _, j := range []int{k - 1, k} {
			if j >= 0 && j < len(p) && math.Abs(a-p[j]) < math.Abs(best) {
				best = a - p[j]
			}
		}
		if math.Abs(best) < avMatchWithin {
			out = append(out, best)
		}
	}
	return out
}

// avSync is the A/V sync measured on the sampled streams.
type avSync struct {
	Streams int      `json:"streams"` // sampled streams measured
	Markers int      `json:"markers"` // audio markers paired with a picture
	Median  float64  `json:"median"`  // audio minus video, ms (positive: audio late)
	MaxAbs  float64  `json:"max_abs"`
	Min     float64  `json:"min"`
	Max     float64  `json:"max"`
	Decoder string   `json:"decoder,omitempty"` // what decoded the audio
	Errors  []string `json:"errors,omitempty"`
}

// measureSync decodes the tracks and reports the A/V sync over all of
// their markers.
func measureSync(tracks []*avTrack) *avSync {
	if len(tracks) == 0 {
		return nil
	}
	s := &avSync{}
	var all []float64
	for _, tr := range tracks {
		tl, dec, err := decodeTrack(tr)
		if err != nil {
			s.Errors = append(s.Errors, err.Error())
			continue
		}
		s.Decoder = dec
		var times []float64
		skip := float64(2 * aac.FrameSamples) // the decoder's first output is priming
		for _, g := range findGaps(tl.pcm, tl.rate) {
			if g >= skip {
				times = append(times, tl.timeAt(g))
			}
		}
		off := syncOffsets(times, tr.pics)
		if len(off) == 0 {
			s.Errors = append(s.Errors, fmt.Sprintf("no audio marker paired with a picture (%d found, %d pictures)", len(times), len(tr.pics)))
			continue
		}
		s.Streams++
		all = append(all, off...)
	}
	if len(all) == 0 {
		return s
	}
	d := summarize(all)
	s.Markers, s.Median, s.Min, s.Max = d.N, d.Median, d.Min, d.Max
	s.MaxAbs = math.Max(math.Abs(d.Min), math.Abs(d.Max))
	return s
}
