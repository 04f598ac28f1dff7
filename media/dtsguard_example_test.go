package media_test

import (
	"fmt"
	"time"

	"github.com/sipstream/sipstream/media"
)

// A writer keeps one DTSGuard per track at its own resolution: here
// milliseconds, as RTMP and FLV carry them.
func ExampleDTSGuard() {
	var video media.DTSGuard // zero value: milliseconds
	for _, dts := range []time.Duration{
		40 * time.Millisecond,
		40 * time.Millisecond,    // duplicate
		40600 * time.Microsecond, // same millisecond
		20 * time.Millisecond,    // late frame
		120 * time.Millisecond,   // back on the timeline
	} {
		pts, ms := video.Stamp(dts, dts)
		fmt.Println(ms, pts-ms)
	}
	fmt.Println("nudged:", video.Nudged())
	// Output:
	// 40 0
	// 41 0
	// 42 0
	// 43 0
	// 120 0
	// nudged: 3
}
