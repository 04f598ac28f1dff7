package h264gen_test

import (
	"fmt"
	"image/color"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/h264gen"
)

// Generate two seconds of a dark blue 640×360 picture at 10 fps.
func Example() {
	g, err := h264gen.New(h264gen.Config{Width: 640, Height: 360, FrameRate: 10,
		KeyframeInterval: time.Second, Color: color.RGBA{0, 0, 96, 255}})
	if err != nil {
		panic(err)
	}
	var frames, keys int
	g.Until(2*time.Second, func(f *media.Frame) {
		frames++
		if f.Keyframe {
			keys++
		}
	})
	fmt.Println(frames, "frames,", keys, "keyframes")
	// Output:
	// 20 frames, 2 keyframes
}
