package sink_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
)

// countSink counts frames and does nothing else: the benchmark measures the
// fanout, not a sink.
type countSink struct{ n atomic.Int64 }

func (c *countSink) WriteFrame(*media.Frame) error { c.n.Add(1); return nil }
func (c *countSink) Close(context.Context) error   { return nil }

// BenchmarkFanout measures one frame (a 1200-byte video frame) through the
// fanout to 1 and 3 sinks: the copy, the queueing and the sinks' goroutines.
// Queues are large enough that nothing is dropped at benchmark speed; the
// benchmark fails if anything is.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(strconv.Itoa(n)+"sinks", func(b *testing.B) {
			f := sink.NewFanout(sink.FanoutConfig{})
			sinks := make([]*countSink, n)
			for i := range sinks {
				sinks[i] = &countSink{}
				if err := f.Add(strconv.Itoa(i), sinks[i], 1<<16); err != nil {
					b.Fatal(err)
				}
			}
			fr := &media.Frame{Codec: media.CodecH264, Keyframe: true, ClockRate: 90000, Payload: make([]byte, 1200)}
			b.SetBytes(int64(len(fr.Payload)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				fr.PTS = time.Duration(i) * time.Millisecond
				if err := f.WriteFrame(fr); err != nil {
					b.Fatal(err)
				}
				if i%4096 == 4095 { // let the sinks catch up: measure throughput, not drops
					for _, s := range sinks {
						for s.n.Load() < int64(i+1) {
							time.Sleep(10 * time.Microsecond)
						}
					}
				}
			}
			if err := f.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			for _, st := range sinks {
				if st.n.Load() != int64(b.N) {
					b.Fatalf("sink got %d of %d frames", st.n.Load(), b.N)
				}
			}
		})
	}
}
