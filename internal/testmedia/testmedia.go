// Package testmedia provides real media for sipstream's tests: a short H.264
// clip made with ffmpeg/libx264 (committed under testdata) and tone
// generators.
//
// The clip was made with:
//
//	ffmpeg -f lavfi -i testsrc2=size=320x240:rate=25 -t 4 -c:v libx264 \
//	  -profile:v baseline -level 3.0 -pix_fmt yuv420p -g 25 -bf 0 \
//	  -x264-params keyint=25:min-keyint=25:scenecut=0:repeat-headers=1 \
//	  -b:v 300k -f h264 clip_320x240_25fps_baseline.h264
//
// It has 100 frames at 25 fps, an IDR every 25 frames, and SPS and PPS in
// front of every IDR.
package testmedia

import (
	_ "embed"
	"encoding/binary"
	"math"
)

//go:embed testdata/clip_320x240_25fps_baseline.h264
var clip []byte

// Clip geometry and timing.
const (
	ClipWidth    = 320
	ClipHeight   = 240
	ClipFPS      = 25
	ClipFrames   = 100
	ClipGOP      = 25 // frames from one IDR to the next
	clipStartLen = 3
)

// ClipAnnexB returns the whole clip as an H.264 Annex-B byte stream. The
// returned slice is shared: do not modify it.
func ClipAnnexB() []byte { return clip }

// NALType returns the nal_unit_type of a NAL unit (0 for an empty one).
func NALType(nalu []byte) uint8 {
	if len(nalu) == 0 {
		return 0
	}
	return nalu[0] & 0x1f
}

// SplitAnnexB splits an Annex-B byte stream into NAL units (without start
// codes). The NAL units alias b.
func SplitAnnexB(b []byte) [][]byte {
	var nalus [][]byte
	start := -1
	i := 0
	for i+clipStartLen <= len(b) {
		if b[i] == 0 && b[i+1] == 0 && b[i+2] == 1 {
			if start >= 0 {
				end := i
				if end > start && b[end-1] == 0 { // 4-byte start code
					end--
				}
				nalus = append(nalus, b[start:end])
			}
			i += 3
			start = i
			continue
		}
		i++
	}
	if start >= 0 && start < len(b) {
		nalus = append(nalus, b[start:])
	}
	return nalus
}

// AccessUnit is one picture of the clip: its NAL units in decoding order
// (SPS and PPS first on an IDR).
type AccessUnit struct {
	NALUs    [][]byte
	Keyframe bool
}

// ClipAccessUnits splits the clip into its 100 access units. Every slice in
// this clip starts a new picture (one slice per picture), and parameter sets
// belong to the picture that follows them. The NAL units alias the embedded
// clip: do not modify them.
func ClipAccessUnits() []AccessUnit {
	var aus []AccessUnit
	var cur AccessUnit
	for _, n := range SplitAnnexB(clip) {
		cur.NALUs = append(cur.NALUs, n)
		switch NALType(n) {
		case 5:
			cur.Keyframe = true
			aus = append(aus, cur)
			cur = AccessUnit{}
		case 1:
			aus = append(aus, cur)
			cur = AccessUnit{}
		}
	}
	return aus
}

// Tone fills a new slice with n samples of a sine wave of freq Hz at the given
// sample rate and amplitude (0..1 of full scale), starting at sample offset
// start so that consecutive calls produce a continuous wave.
func Tone(freq float64, sampleRate, start, n int, amplitude float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		t := float64(start+i) / float64(sampleRate)
		out[i] = int16(math.Round(amplitude * 32767 * math.Sin(2*math.Pi*freq*t)))
	}
	return out
}

// Goertzel returns the fraction of the energy of samples (sampled at
// sampleRate) that lies at frequency freq, in [0, 1]: close to 1 for a clean
// tone at freq, close to 0 for silence or another frequency. Use blocks of at
// least a few hundred samples.
func Goertzel(samples []int16, sampleRate int, freq float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	k := 2 * math.Cos(2*math.Pi*freq/float64(sampleRate))
	var s1, s2, energy float64
	for _, v := range samples {
		x := float64(v)
		energy += x * x
		s := x + k*s1 - s2
		s2, s1 = s1, s
	}
	if energy == 0 {
		return 0
	}
	power := s1*s1 + s2*s2 - k*s1*s2
	// A pure tone of amplitude A over N samples gives power ≈ (A·N/2)² and
	// energy ≈ A²·N/2, so power/energy ≈ N/2.
	return power / energy / (float64(len(samples)) / 2)
}

// WAV returns pcm (16-bit mono at rate) as a RIFF/WAVE file, for tests that
// hand a sound file to the code under test.
func WAV(pcm []int16, rate int) []byte {
	data := len(pcm) * 2
	b := make([]byte, 44, 44+data)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+data))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1) // PCM
	binary.LittleEndian.PutUint16(b[22:], 1) // mono
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*2))
	binary.LittleEndian.PutUint16(b[32:], 2)
	binary.LittleEndian.PutUint16(b[34:], 16)
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(data))
	for _, v := range pcm {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}
