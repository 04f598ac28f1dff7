package resample_test

import (
	"fmt"

	"github.com/sipstream/sipstream/media/resample"
)

// Upsample 20 ms blocks of 8 kHz telephone audio to 48 kHz.
func Example() {
	r, err := resample.New(resample.Config{InRate: 8000, OutRate: 48000})
	if err != nil {
		panic(err)
	}
	block := make([]int16, 160) // 20 ms at 8 kHz
	var out []int16
	for range 50 { // one second
		out = r.Process(out[:0], block)
	}
	fmt.Println(len(out), "samples per block after the first, latency", r.Latency(), "input samples")
	// Output:
	// 960 samples per block after the first, latency 16 input samples
}
