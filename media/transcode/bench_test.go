package transcode

import (
	"fmt"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
)

// benchmarkPath measures the whole audio path G.711 decode → resample 8 kHz
// to 12 kHz → AAC encode to 48 kHz on the band-limited fast path, in 20 ms
// frames of a speech-band signal; the
// x-realtime metric is seconds of call audio per wall-clock second of the
// benchmark loop, x-realtime-cpu per CPU-second the process used.
func benchmarkPath(b *testing.B, nch int) {
	tr, err := NewToAAC(AACConfig{Channels: nch})
	if err != nil {
		b.Fatal(err)
	}
	// Three tones across the telephone band, varying over 4 s.
	pcm := testmedia.Tone(300, 8000, 0, 32000, 0.3)
	for i, v := range testmedia.Tone(1100, 8000, 0, 32000, 0.2) {
		pcm[i] += v
	}
	for i, v := range testmedia.Tone(2900, 8000, 0, 32000, 0.1) {
		pcm[i] += v / int16(1+i/8000)
	}
	payloads := make([][]byte, 0, len(pcm)/160)
	for i := 0; i+160 <= len(pcm); i += 160 {
		payloads = append(payloads, g711.EncodeALaw(nil, pcm[i:i+160]))
	}
	f := &media.Frame{Codec: media.CodecPCMA, ClockRate: 8000, Channels: 1, Duration: 20 * time.Millisecond}
	emit := func(*media.Frame) {}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuSeconds()
	for i := 0; i < b.N; i++ {
		f.PTS = time.Duration(i) * 20 * time.Millisecond
		f.Payload = payloads[i%len(payloads)]
		if err := tr.Write(f, emit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(0.020/(b.Elapsed().Seconds()/float64(b.N)), "x-realtime")
	if cpu := cpuSeconds() - cpu0; cpu > 0 {
		// Seconds of audio per CPU-second: independent of machine load
		// (it includes the GC's work, on whichever thread).
		b.ReportMetric(0.020*float64(b.N)/cpu, "x-realtime-cpu")
	}
}

func BenchmarkPCMAToAAC48kMono(b *testing.B)   { benchmarkPath(b, 1) }
func BenchmarkPCMAToAAC48kStereo(b *testing.B) { benchmarkPath(b, 2) }

// BenchmarkConcealNoLoss is what concealment costs per 20 ms packet when
// nothing is lost: keeping the 60 ms history (compare with the whole path
// above, tens of microseconds per packet).
func BenchmarkConcealNoLoss(b *testing.B) {
	for _, rate := range []int{8000, 48000} {
		b.Run(fmt.Sprint(rate), func(b *testing.B) {
			var c concealer
			c.reset(rate, 1)
			pkt := testmedia.Tone(440, rate, 0, rate/50, 0.5)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				c.recover(pkt) // a no-op without a hole
				c.record(pkt)
			}
		})
	}
}

// BenchmarkConcealHole is the cost of concealing one lost 20 ms packet
// (pitch search and synthesis), paid only on loss.
func BenchmarkConcealHole(b *testing.B) {
	for _, rate := range []int{8000, 48000} {
		b.Run(fmt.Sprint(rate), func(b *testing.B) {
			var c concealer
			c.reset(rate, 1)
			c.record(testmedia.Tone(440, rate, 0, rate/10, 0.5))
			out := make([]int16, rate/50)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if !c.begin() {
					b.Fatal("no concealment")
				}
				c.fill(out)
			}
		})
	}
}
