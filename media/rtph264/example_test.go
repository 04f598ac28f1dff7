package rtph264_test

import (
	"errors"
	"fmt"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media/rtph264"
)

// Packetize the test clip's first access units and reassemble them.
func Example() {
	enc, err := rtph264.NewEncoder(rtph264.EncoderConfig{PayloadType: 96, SSRC: 0x1234abcd, InitialSequenceNumber: 65530})
	if err != nil {
		panic(err)
	}
	dec, err := rtph264.NewDecoder(rtph264.DecoderConfig{})
	if err != nil {
		panic(err)
	}
	for i, au := range testmedia.ClipAccessUnits()[:3] {
		pkts, err := enc.Encode(au.NALUs, uint32(i*3600))
		if err != nil {
			panic(err)
		}
		for _, pkt := range pkts {
			fr, ts, err := dec.Decode(pkt)
			if errors.Is(err, rtph264.ErrMorePacketsNeeded) {
				continue
			}
			if err != nil {
				panic(err)
			}
			nalus, _ := rtph264.SplitAVC(fr.Payload)
			fmt.Printf("ts %d: %d NAL units, keyframe %v (%d packets)\n", ts, len(nalus), fr.Keyframe, len(pkts))
		}
	}
	// Output:
	// ts 0: 4 NAL units, keyframe true (4 packets)
	// ts 3600: 1 NAL units, keyframe false (1 packets)
	// ts 7200: 1 NAL units, keyframe false (1 packets)
}

// With Conceal, a lost packet does not stop the pictures: the next ones are
// emitted while NeedKeyframe asks for an IDR.
func ExampleDecoderConfig_conceal() {
	enc, err := rtph264.NewEncoder(rtph264.EncoderConfig{PayloadType: 96, SSRC: 0x1234abcd})
	if err != nil {
		panic(err)
	}
	dec, err := rtph264.NewDecoder(rtph264.DecoderConfig{Conceal: true})
	if err != nil {
		panic(err)
	}
	for i, au := range testmedia.ClipAccessUnits()[:5] {
		pkts, err := enc.Encode(au.NALUs, uint32(i*3600))
		if err != nil {
			panic(err)
		}
		for _, pkt := range pkts {
			if i == 2 {
				continue // picture 2 is lost
			}
			_, ts, err := dec.Decode(pkt)
			if err == nil {
				fmt.Printf("picture %d emitted, need keyframe: %v\n", ts/3600, dec.NeedKeyframe())
			}
		}
	}
	fmt.Println("damaged pictures emitted:", dec.Stats().Concealed)
	// Output:
	// picture 0 emitted, need keyframe: false
	// picture 1 emitted, need keyframe: false
	// picture 3 emitted, need keyframe: true
	// picture 4 emitted, need keyframe: true
	// damaged pictures emitted: 1
}
