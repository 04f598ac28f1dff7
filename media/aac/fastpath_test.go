package aac

import (
	"errors"
	"testing"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media/resample"
)

// telephoneAt returns an 8 kHz signal as the encoder sees it on both
// paths: resampled to 48 kHz (the full-rate input), and decimated to 12 kHz
// on the grid the band-limited path expects (input sample j at the 48 kHz
// time 4j + 1.5). Both come from one resampling to 96 kHz, where those
// times are the samples 2n and 8j + 3: the two inputs hold exactly the same
// signal.
func telephoneAt(t testing.TB, pcm8 []int16) (full, quarter []int16) {
	t.Helper()
	r, err := resample.New(resample.Config{InRate: 8000, OutRate: 96000})
	if err != nil {
		t.Fatal(err)
	}
	s96 := r.Process(nil, pcm8)
	s96 = r.Flush(s96)
	for i := 0; i < len(s96); i += 2 {
		full = append(full, s96[i])
	}
	for i := 3; i < len(s96); i += 8 {
		quarter = append(quarter, s96[i])
	}
	return full, quarter
}

// The band-limited fast path (12 kHz input, 4 kHz bandwidth) codes a
// telephone signal as well as the full-rate path does: same SNR against
// the same 48 kHz reference (within 1 dB, or both above 60 dB), the tone at
// its frequency, the bitrate held.
func TestBandLimitedQuality(t *testing.T) {
	for _, sig := range []struct {
		name string
		pcm  []int16
		min  float64
	}{
		{"tone", testmedia.Tone(1000, 8000, 0, 8000*3, 0.5), 30},
		{"speech", speechLike(8000, 8000*3), 20},
		{"chord", musicLike(8000, 8000*3), 30},
	} {
		for _, nch := range []int{1, 2} {
			full, quarter := telephoneAt(t, sig.pcm)
			ref := full
			if nch == 2 {
				full, quarter = dupStereo(full), dupStereo(quarter)
			}
			cfg := EncoderConfig{SampleRate: 48000, Channels: nch}
			decFull := mustDecode(t, 48000, nch, encodeAll(t, cfg, full, 960*nch))
			cfg.InputRate, cfg.Bandwidth = 12000, 4000
			aus := encodeAll(t, cfg, quarter, 240*nch)
			decFast := mustDecode(t, 48000, nch, aus)
			sFull := snrDB(ref, left(decFull, nch), FrameSamples, 4096)
			sFast := snrDB(ref, left(decFast, nch), FrameSamples, 4096)
			bytes := 0
			for _, au := range aus {
				bytes += len(au)
			}
			kbps := float64(bytes*8) / (float64(len(aus)*FrameSamples) / 48000) / 1000
			t.Logf("%s %d ch: SNR full-rate %.2f dB, band-limited %.2f dB (%.1f kbit/s)", sig.name, nch, sFull, sFast, kbps)
			// Beyond 60 dB both are transparent: differences there are
			// rounding, not coding.
			if sFast < sig.min || (sFast < sFull-1 && sFast < 60) {
				t.Errorf("%s %d ch: band-limited SNR %.2f dB (full-rate %.2f dB)", sig.name, nch, sFast, sFull)
			}
			if kbps > 64*float64(nch)*1.02 {
				t.Errorf("%s %d ch: %.1f kbit/s", sig.name, nch, kbps)
			}
			if sig.name == "tone" {
				l := left(decFast, nch)[FrameSamples:]
				if g := testmedia.Goertzel(l[12000:36000], 48000, 1000); g < 0.98 {
					t.Errorf("%d ch: tone Goertzel %.3f", nch, g)
				}
			}
		}
	}
}

func dupStereo(m []int16) []int16 {
	s := make([]int16, 0, 2*len(m))
	for _, v := range m {
		s = append(s, v, v)
	}
	return s
}

func left(pcm []int16, nch int) []int16 {
	if nch == 1 {
		return pcm
	}
	l := make([]int16, 0, len(pcm)/nch)
	for i := 0; i < len(pcm); i += nch {
		l = append(l, pcm[i])
	}
	return l
}

func mustDecode(t testing.TB, rate, nch int, aus [][]byte) []int16 {
	t.Helper()
	dec, err := decodeAll(rate, nch, aus)
	if err != nil {
		t.Fatal(err)
	}
	return dec
}

func TestInputRateConfig(t *testing.T) {
	for _, c := range []EncoderConfig{
		{SampleRate: 48000, InputRate: 16000},
		{SampleRate: 48000, InputRate: 8000},
		{SampleRate: 48000, InputRate: 96000},
		{SampleRate: 48000, Bandwidth: -1},
	} {
		if _, err := NewEncoder(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", c, err)
		}
	}
	for _, c := range []EncoderConfig{
		{SampleRate: 48000, InputRate: 12000},
		{SampleRate: 48000, InputRate: 24000},
		{SampleRate: 44100, InputRate: 11025, Channels: 2},
		{SampleRate: 8000, InputRate: 2000, Bitrate: 8000},
	} {
		if _, err := NewEncoder(c); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
