package rtpvp8_test

import (
	"errors"
	"fmt"

	"github.com/sipstream/sipstream/media/rtpvp8"
)

// Packetize a key frame and an inter frame, and reassemble them.
func Example() {
	key := make([]byte, 2500)
	copy(key, []byte{0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2a, 0xb0, 0x00, 0x90, 0x00}) // 176x144 key frame tag
	inter := []byte{0x31, 0x02, 0x00, 0x11, 0x22}

	enc, err := rtpvp8.NewEncoder(rtpvp8.EncoderConfig{PayloadType: 96, SSRC: 0x1234abcd, PictureID: true})
	if err != nil {
		panic(err)
	}
	dec, err := rtpvp8.NewDecoder(rtpvp8.DecoderConfig{})
	if err != nil {
		panic(err)
	}
	for i, frame := range [][]byte{key, inter} {
		pkts, err := enc.Encode(frame, uint32(i*6000))
		if err != nil {
			panic(err)
		}
		for _, pkt := range pkts {
			fr, ts, err := dec.Decode(pkt)
			if errors.Is(err, rtpvp8.ErrMorePacketsNeeded) {
				continue
			}
			if err != nil {
				panic(err)
			}
			fmt.Printf("ts %d: %d bytes, keyframe %v (%d packets)\n", ts, len(fr.Payload), fr.Keyframe, len(pkts))
		}
	}
	// Output:
	// ts 0: 2500 bytes, keyframe true (3 packets)
	// ts 6000: 5 bytes, keyframe false (1 packets)
}
