package timeline_test

import (
	"fmt"
	"time"

	"github.com/sipstream/sipstream/media/timeline"
)

// Map an audio stream's RTP timestamps onto a call's timeline: first by
// arrival, then through the peer's Sender Report, without a jump.
func Example() {
	tl, err := timeline.New(timeline.Config{})
	if err != nil {
		panic(err)
	}
	audio := tl.NewStream()
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		ts := uint32(4_294_967_000 + i*160) // wraps after the second packet
		at := t0.Add(time.Duration(i) * 20 * time.Millisecond)
		audio.Observe(0xabc, ts, 8000, at)
		if i == 3 {
			audio.SenderReport(0xabc, 0xe000000000000000, ts, at)
		}
		fmt.Println(audio.Map(0xabc, ts))
	}
	// Output:
	// 0s
	// 20ms
	// 40ms
	// 60ms
	// 80ms
}
