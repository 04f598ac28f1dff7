package g711_test

import (
	"fmt"

	"github.com/sipstream/sipstream/media/g711"
)

// Decode one RTP payload of PCMA into linear samples and back.
func Example() {
	payload := []byte{0xD5, 0xAA, 0x2A}
	pcm := g711.DecodeALaw(nil, payload)
	fmt.Println(pcm)
	fmt.Printf("% X\n", g711.EncodeALaw(nil, pcm))
	// Output:
	// [8 32256 -32256]
	// D5 AA 2A
}
