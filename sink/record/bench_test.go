package record_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/record"
)

// BenchmarkRecorders measures one frame (the clip's H.264 frames and 20 ms
// PCMA frames, interleaved as a call delivers them) written to each
// recorder, file I/O included.
func BenchmarkRecorders(b *testing.B) {
	frames := interleave(clipFrames(0), toneFrames(media.CodecPCMA, 0, 4*time.Second))
	var bytes int64
	for _, f := range frames {
		bytes += int64(len(f.Payload))
	}
	for _, kind := range []string{"mkv", "flv"} {
		b.Run(kind, func(b *testing.B) {
			path := os.DevNull // CPU cost only; the disk is not what is measured
			cfg := record.Config{Audio: true, Video: true}
			var w sink.Sink
			var err error
			if kind == "mkv" {
				w, err = record.NewMKV(path, cfg)
			} else {
				w, err = record.NewFLV(path, cfg)
			}
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(bytes / int64(len(frames)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				loop, k := i/len(frames), i%len(frames)
				f := *frames[k]
				off := time.Duration(loop) * 4 * time.Second
				f.PTS += off
				f.DTS += off
				if err := w.WriteFrame(&f); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			_ = w.Close(context.Background()) // fsync of /dev/null fails: irrelevant here
		})
	}
}
