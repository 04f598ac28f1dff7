package filler_test

import (
	"context"
	"fmt"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/filler"
	"github.com/sipstream/sipstream/sink"
)

// A Filler between a call's frames and its fan-out: Hold(true) when the
// call goes on hold, Hold(false) when it comes back. Here the phone sent
// one keyframe and one audio packet before the hold; the first still
// frame is emitted at once.
func Example() {
	fan := sink.NewFanout(sink.FanoutConfig{}) // sinks are added to it as usual
	defer fan.Close(context.Background())

	f, err := filler.New(filler.Config{
		// A media session's RequestKeyframe goes here.
		OnNeedKeyframe: func() {},
	}, func(fr *media.Frame) { _ = fan.WriteFrame(fr) })
	if err != nil {
		fmt.Println(err)
		return
	}
	defer f.Close()

	// The media session's frame callback.
	f.WriteFrame(&media.Frame{Codec: media.CodecH264, Keyframe: true, ClockRate: 90000,
		Payload: []byte{0, 0, 0, 2, 0x65, 0x88}})
	f.WriteFrame(&media.Frame{Codec: media.CodecPCMA, Keyframe: true, ClockRate: 8000, Channels: 1,
		Duration: 20 * time.Millisecond, Payload: make([]byte, 160)})

	f.Hold(true) // re-INVITE with a=sendonly sent or received
	fmt.Println("stills:", f.Stats().VideoFrames)
	f.Hold(false) // back: real media goes on from its next keyframe
	// Output: stills: 1
}
