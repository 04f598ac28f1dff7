package aac

import "testing"

func benchmarkEncode(b *testing.B, nch int, pcm []int16) {
	e, err := NewEncoder(EncoderConfig{SampleRate: 48000, Channels: nch})
	if err != nil {
		b.Fatal(err)
	}
	in := make([]int16, 0, len(pcm)*nch)
	for _, v := range pcm {
		for range nch {
			in = append(in, v)
		}
	}
	const block = 960
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
