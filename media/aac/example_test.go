package aac_test

import (
	"fmt"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media/aac"
)

// Encode one second of a 1 kHz tone at 48 kHz mono into raw access units.
func Example() {
	enc, err := aac.NewEncoder(aac.EncoderConfig{SampleRate: 48000, Channels: 1, Bitrate: 64000})
	if err != nil {
		panic(err)
	}
	fmt.Printf("AudioSpecificConfig % x\n", enc.AudioSpecificConfig())
	var aus [][]byte
	for i := 0; i < 50; i++ { // 20 ms blocks
		out, err := enc.Encode(testmedia.Tone(1000, 48000, i*960, 960, 0.5))
		if err != nil {
			panic(err)
		}
		aus = append(aus, out...)
	}
	tail, _ := enc.Flush()
	aus = append(aus, tail...)
	fmt.Println(len(aus), "access units, delay", enc.Delay())
	// Output:
	// AudioSpecificConfig 11 88
	// 48 access units, delay 21.333333ms
}
