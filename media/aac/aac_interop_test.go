//go:build interop

package aac

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
)

func writeRaw(t *testing.T, path string, pcm []int16) {
	t.Helper()
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readRaw(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int16, len(b)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// encodeADTS encodes pcm with our encoder into an ADTS file.
func encodeADTS(t *testing.T, cfg EncoderConfig, pcm []int16, path string) {
	t.Helper()
	e, err := NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var file []byte
	for i := 0; i < len(pcm); {
		n := min(len(pcm)-i, 941*max(cfg.Channels, 1)) // odd block size on purpose
		aus, err := e.Encode(pcm[i : i+n])
		if err != nil {
			t.Fatal(err)
		}
		for _, au := range aus {
			file = e.AppendADTS(file, au)
		}
		i += n
	}
	aus, _ := e.Flush()
	for _, au := range aus {
		file = e.AppendADTS(file, au)
	}
	if err := os.WriteFile(path, file, 0o644); err != nil {
		t.Fatal(err)
	}
}

type quality struct{ snr, seg float64 }

func measure(t *testing.T, ref, dec []int16) quality {
	lag := bestLag(ref, dec, 4096)
	t.Logf("delay %d samples", lag)
	return quality{snrDB(ref, dec, lag, 2048), segSNR(ref, dec, lag, 1024)}
}

// TestInteropFFmpegQuality encodes speech-like and music-like signals at
// 64 kbit/s mono 48 kHz with our encoder and with ffmpeg's native aac
// encoder, decodes both with ffmpeg and compares SNR and segmental SNR.
func TestInteropFFmpegQuality(t *testing.T) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	const rate = 48000
	for _, sig := range []struct {
		name string
		pcm  []int16
	}{
		{"speech", speechLike(rate, rate*4)},
		{"music", musicLike(rate, rate*4)},
		{"castanets", func() []int16 { c, _ := castanets(rate, rate*4, 0.2512); return c }()},
	} {
		raw := filepath.Join(dir, sig.name+".raw")
		writeRaw(t, raw, sig.pcm)

		ours := filepath.Join(dir, sig.name+"_ours.aac")
		encodeADTS(t, EncoderConfig{SampleRate: rate, Channels: 1, Bitrate: 64000}, sig.pcm, ours)
		oursDec := filepath.Join(dir, sig.name+"_ours.raw")
		testenv.RunClean(t, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", ours, "-f", "s16le", "-ac", "1", "-ar", "48000", oursDec)

		theirs := filepath.Join(dir, sig.name+"_ffmpeg.aac")
		testenv.RunClean(t, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-f", "s16le", "-ar", "48000", "-ac", "1", "-i", raw, "-c:a", "aac", "-b:a", "64k", theirs)
		theirsDec := filepath.Join(dir, sig.name+"_ffmpeg.raw")
		testenv.RunClean(t, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", theirs, "-f", "s16le", "-ac", "1", "-ar", "48000", theirsDec)

		so, _ := os.Stat(ours)
		st, _ := os.Stat(theirs)
		qo := measure(t, sig.pcm, readRaw(t, oursDec))
		qt := measure(t, sig.pcm, readRaw(t, theirsDec))
		t.Logf("%s @64k mono: ours SNR %.2f dB segSNR %.2f dB (%d bytes) | ffmpeg aac SNR %.2f dB segSNR %.2f dB (%d bytes)",
			sig.name, qo.snr, qo.seg, so.Size(), qt.snr, qt.seg, st.Size())
		if qo.snr < qt.snr {
			t.Errorf("%s: our SNR %.2f dB is below ffmpeg's %.2f dB", sig.name, qo.snr, qt.snr)
		}
		if float64(so.Size()) > 1.1*float64(st.Size()) {
			t.Errorf("%s: our file (%d bytes) is more than 10%% larger than ffmpeg's (%d)", sig.name, so.Size(), st.Size())
		}
	}
}

// TestInteropFFmpegStereo checks that ffmpeg decodes our channel pairs (with
// full and per-band mid/side) to the same audio as our own decoder, and
// that it matches the input.
func TestInteropFFmpegStereo(t *testing.T) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	for _, rate := range []int{48000, 44100, 16000} {
		mono := speechLike(rate, rate*3)
		music := musicLike(rate, rate*3)
		clicks, _ := castanets(rate, rate*3, 0.1)
		for i := range mono {
			mono[i] = mono[i]/2 + clicks[i]/2
		}
		pcm := make([]int16, 0, 2*len(mono))
		for i, v := range mono {
			r := v
			if i > len(mono)/2 {
				r = v/2 + music[i]
			}
			pcm = append(pcm, v, r)
		}
		path := filepath.Join(dir, "stereo.aac")
		cfg := EncoderConfig{SampleRate: rate, Channels: 2, Bitrate: min(128000, 6144*2*rate/1024)}
		encodeADTS(t, cfg, pcm, path)
		raw := filepath.Join(dir, "stereo.raw")
		testenv.RunClean(t, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", path, "-f", "s16le", "-ac", "2", "-ar", strconv.Itoa(rate), raw)
		dec := readRaw(t, raw)
		lag := 2 * bestLag(mono, deinterleave(dec, 0), 4096)
		s := snrDB(pcm, dec, lag, 4096)
		t.Logf("%d Hz stereo at %d bit/s: delay %d, SNR %.2f dB", rate, cfg.Bitrate, lag/2, s)
		if lag != 2*FrameSamples || s < 15 {
			t.Errorf("%d Hz: delay %d, SNR %.2f dB", rate, lag/2, s)
		}
	}
}

func deinterleave(pcm []int16, c int) []int16 {
	out := make([]int16, 0, len(pcm)/2)
	for i := c; i < len(pcm); i += 2 {
		out = append(out, pcm[i])
	}
	return out
}

// TestInteropFFmpegAllRates checks every sampling frequency's band tables
// (long and short) against ffmpeg's decoder: a speech-like signal with
// attacks, mono, decodes without errors, at the right delay and close to
// what our own decoder gives.
func TestInteropFFmpegAllRates(t *testing.T) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	for _, rate := range []int{8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000} {
		pcm := speechLike(rate, rate)
		clicks, _ := castanets(rate, rate, 0.33)
		for i := range pcm {
			pcm[i] = pcm[i]/2 + clicks[i]/2
		}
		cfg := EncoderConfig{SampleRate: rate, Channels: 1, Bitrate: min(96000, 6144*rate/1024)}
		path := filepath.Join(dir, "r.aac")
		encodeADTS(t, cfg, pcm, path)
		raw := filepath.Join(dir, "r.raw")
		testenv.RunClean(t, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", path, "-f", "s16le", "-ac", "1", "-ar", strconv.Itoa(rate), raw)
		dec := readRaw(t, raw)
		s := snrDB(pcm, dec, FrameSamples, rate/5)
		// Our decoder on the same stream.
		file, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var aus [][]byte
		for len(file) > 0 {
			h, err := ParseADTS(file)
			if err != nil || h.FrameLength > len(file) {
				t.Fatalf("ADTS: %v", err)
			}
			aus = append(aus, file[h.HeaderLength:h.FrameLength])
			file = file[h.FrameLength:]
		}
		own, err := decodeAll(rate, 1, aus)
		if err != nil {
			t.Fatal(err)
		}
		so := snrDB(pcm, own, FrameSamples, rate/5)
		t.Logf("%d Hz at %d bit/s: ffmpeg-decoded SNR %.2f dB, own decoder %.2f dB", rate, cfg.Bitrate, s, so)
		if s < 15 || math.Abs(s-so) > 1 {
			t.Errorf("%d Hz: ffmpeg SNR %.2f dB vs own %.2f dB", rate, s, so)
		}
	}
}

// TestInteropFFmpegBandLimited: telephone signals (8 kHz, brought to 12 kHz)
// through the band-limited fast path, mono and stereo, into ADTS files
// that ffmpeg must decode without a single error; the decoded audio matches
// the 48 kHz reference as closely as our decoder's does, and the 1 kHz tone
// is clean.
func TestInteropFFmpegBandLimited(t *testing.T) {
	ffmpeg := testenv.LookPath(t, "ffmpeg")
	dir := t.TempDir()
	for _, sig := range []struct {
		name string
		pcm  []int16
		min  float64
	}{
		{"tone", testmedia.Tone(1000, 8000, 0, 8000*3, 0.5), 40},
		{"speech", speechLike(8000, 8000*4), 25},
		{"castanets", func() []int16 { c, _ := castanets(8000, 8000*4, 0.2512); return c }(), 15},
	} {
		for _, nch := range []int{1, 2} {
			ref, quarter := telephoneAt(t, sig.pcm)
			if nch == 2 {
				quarter = dupStereo(quarter)
			}
			name := fmt.Sprintf("%s_%d", sig.name, nch)
			aac := filepath.Join(dir, name+".aac")
			cfg := EncoderConfig{SampleRate: 48000, Channels: nch, InputRate: 12000, Bandwidth: 4000}
			encodeADTS(t, cfg, quarter, aac)
			decPath := filepath.Join(dir, name+".raw")
			testenv.RunClean(t, ffmpeg, "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", aac, "-f", "s16le", "-ac", "1", "-ar", "48000", decPath)
			dec := readRaw(t, decPath)
			q := measure(t, ref, dec)
			t.Logf("%s %d ch: SNR %.2f dB, segSNR %.2f dB", sig.name, nch, q.snr, q.seg)
			if q.snr < sig.min {
				t.Errorf("%s %d ch: SNR %.2f dB < %.0f", sig.name, nch, q.snr, sig.min)
			}
			if sig.name == "tone" {
				if g := testmedia.Goertzel(dec[24000:96000], 48000, 1000); g < 0.98 {
					t.Errorf("%d ch: tone Goertzel %.3f", nch, g)
				}
			}
		}
	}
}
