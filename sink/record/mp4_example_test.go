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

func ExampleNewMP4() {
	dir, _ := os.MkdirTemp("", "rec")
	defer os.RemoveAll(dir)

	rec, err := record.NewMP4(filepath.Join(dir, "call.mp4"), record.Config{Audio: true})
	if err != nil {
		panic(err)
	}
	// A recorder normally sits behind a fanout, which gives it its own goroutine.
	f := sink.NewFanout(sink.FanoutConfig{})
	_ = f.Add("mp4", rec, 0)
	for i := 0; i < 50; i++ { // one second of G.711 A-law silence, recorded as AAC
		ts := time.Duration(i) * 20 * time.Millisecond
		_ = f.WriteFrame(&media.Frame{Codec: media.CodecPCMA, PTS: ts, DTS: ts, Keyframe: true,
			ClockRate: 8000, Channels: 1, Duration: 20 * time.Millisecond, Payload: make([]byte, 160)})
	}
	_ = f.Close(context.Background()) // closes the recorder: the last fragment written and synced
	st := rec.Stats()
	fmt.Println(st.FramesWritten > 45, st.Bytes > 0)
	// Output: true true
}
