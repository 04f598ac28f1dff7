package record_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sink/record"
)

func ExampleNewMKV() {
	dir, _ := os.MkdirTemp("", "rec")
	defer os.RemoveAll(dir)

	rec, err := record.NewMKV(filepath.Join(dir, "call.mkv"), record.Config{Audio: true})
	if err != nil {
		panic(err)
	}
	// A recorder normally sits behind a fanout, which gives it its own goroutine.
	f := sink.NewFanout(sink.FanoutConfig{})
	_ = f.Add("mkv", rec, 0)
	for i := 0; i < 50; i++ { // one second of G.711 A-law silence
		ts := time.Duration(i) * 20 * time.Millisecond
		_ = f.WriteFrame(&media.Frame{Codec: media.CodecPCMA, PTS: ts, DTS: ts, Keyframe: true,
			ClockRate: 8000, Channels: 1, Duration: 20 * time.Millisecond, Payload: make([]byte, 160)})
	}
	_ = f.Close(context.Background()) // closes the recorder: last cluster, Segment size and Duration written
	fmt.Println(rec.Stats().FramesWritten)
	// Output: 50
}
