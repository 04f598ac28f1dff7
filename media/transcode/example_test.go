package transcode_test

import (
	"fmt"
	"time"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/transcode"
)

// Turn one second of PCMA from a SIP call into AAC frames for RTMP.
func Example() {
	t, err := transcode.NewToAAC(transcode.AACConfig{}) // 48 kHz mono, 64 kbit/s
	if err != nil {
		panic(err)
	}
	fmt.Printf("AudioSpecificConfig % x\n", t.AudioSpecificConfig())
	var n int
	var first, last time.Duration
	emit := func(f *media.Frame) {
		if n == 0 {
			first = f.PTS
		}
		last = f.PTS
		n++
	}
	tone := testmedia.Tone(1000, 8000, 0, 8000, 0.5)
	for i := 0; i < 50; i++ {
		f := &media.Frame{Codec: media.CodecPCMA, ClockRate: 8000, Channels: 1,
			PTS: time.Second + time.Duration(i)*20*time.Millisecond, Payload: g711.EncodeALaw(nil, tone[i*160:(i+1)*160])}
		if err := t.Write(f, emit); err != nil {
			panic(err)
		}
	}
	t.Flush(emit)
	fmt.Println(n, "AAC frames from", first, "to", last)
	// Output:
	// AudioSpecificConfig 11 88
	// 48 AAC frames from 978.666667ms to 1.981333333s
}
