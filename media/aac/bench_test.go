package aac

import "testing"

func benchmarkEncode(b *testing.B, nch int, pcm []int16) {
	benchmarkEncodeCfg(b, EncoderConfig{SampleRate: 48000, Channels: nch}, pcm)
}

// benchmarkEncodeCfg feeds pcm (mono, duplicated into every channel) in
// 20 ms blocks.
func benchmarkEncodeCfg(b *testing.B, cfg EncoderConfig, pcm []int16) {
	nch := max(cfg.Channels, 1)
	e, err := NewEncoder(cfg)
	if err != nil {
		b.Fatal(err)
	}
	in := make([]int16, 0, len(pcm)*nch)
	for _, v := range pcm {
		for range nch {
			in = append(in, v)
		}
	}
	block := 960
	if cfg.InputRate != 0 {
		block = cfg.InputRate / 50
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuSeconds()
	pos := 0
	for i := 0; i < b.N; i++ {
		if pos+block*nch > len(in) {
			pos = 0
		}
		if _, err := e.Encode(in[pos : pos+block*nch]); err != nil {
			b.Fatal(err)
		}
		pos += block * nch
	}
	b.ReportMetric(0.020/(b.Elapsed().Seconds()/float64(b.N)), "x-realtime")
	if cpu := cpuSeconds() - cpu0; cpu > 0 {
		b.ReportMetric(0.020*float64(b.N)/cpu, "x-realtime-cpu")
	}
}

// 20 ms blocks of the speech-like signal at 48 kHz, 64 kbit/s per channel.
func BenchmarkEncodeSpeechMono48k(b *testing.B) {
	benchmarkEncode(b, 1, speechLike(48000, 48000*4))
}

func BenchmarkEncodeSpeechStereo48k(b *testing.B) {
	benchmarkEncode(b, 2, speechLike(48000, 48000*4))
}

func BenchmarkEncodeMusicMono48k(b *testing.B) {
	benchmarkEncode(b, 1, musicLike(48000, 48000*4))
}

// Telephone speech (8 kHz, resampled to 12 kHz) on the band-limited fast
// path to 48 kHz, 64 kbit/s: what media/transcode does with G.711.
func BenchmarkEncodeTelephoneSpeechMono12kTo48k(b *testing.B) {
	_, quarter := telephoneAt(b, speechLike(8000, 8000*4))
	benchmarkEncodeCfg(b, EncoderConfig{SampleRate: 48000, InputRate: 12000, Bandwidth: 4000}, quarter)
}

// The same telephone speech resampled to 48 kHz on the full-rate path (the
// comparison for the one above).
func BenchmarkEncodeTelephoneSpeechMono48k(b *testing.B) {
	full, _ := telephoneAt(b, speechLike(8000, 8000*4))
	benchmarkEncode(b, 1, full)
}
