package rtpaudio_test

import (
	"fmt"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtpaudio"
)

// Send 20 ms of Opus silence and read its duration back.
func Example() {
	f := rtpaudio.Format{Codec: media.CodecOpus}
	enc, err := rtpaudio.NewEncoder(rtpaudio.EncoderConfig{Format: f, PayloadType: 111, SSRC: 42})
	if err != nil {
		panic(err)
	}
	dec, err := rtpaudio.NewDecoder(f)
	if err != nil {
		panic(err)
	}
	silence, _ := rtpaudio.Silence(f, 20*time.Millisecond)
	for range 2 {
		pkt, err := enc.Encode(silence)
		if err != nil {
			panic(err)
		}
		fr, ts, err := dec.Decode(pkt)
		if err != nil {
			panic(err)
		}
		fmt.Println(fr.Codec, ts, fr.Duration, fr.Channels, fr.ClockRate)
	}
	// Output:
	// opus 0 20ms 1 48000
	// opus 960 20ms 1 48000
}
