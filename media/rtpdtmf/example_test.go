package rtpdtmf_test

import (
	"fmt"
	"time"

	"github.com/sipstream/sipstream/media/rtpdtmf"
)

// A phone's key press goes out as a schedule of packets; the receiving
// Decoder reports it once, despite the redundant end packets.
func Example() {
	enc, err := rtpdtmf.NewEncoder(rtpdtmf.EncoderConfig{PayloadType: 101, SSRC: 0x11223344})
	if err != nil {
		panic(err)
	}
	code, _ := rtpdtmf.EventCode('#')
	sched, err := enc.Encode(rtpdtmf.Event{Code: code, Duration: 160 * time.Millisecond, Volume: 10}, 8000)
	if err != nil {
		panic(err)
	}

	dec, _ := rtpdtmf.NewDecoder(rtpdtmf.DecoderConfig{})
	seq := uint16(1000) // the audio stream's sequence counter
	for _, tp := range sched {
		pkt := tp.Packet
		pkt.SequenceNumber = seq
		seq++
		ev, err := dec.Decode(&pkt)
		if err != nil {
			continue // rtpdtmf.ErrMorePacketsNeeded
		}
		fmt.Printf("at %v: digit %c for %v\n", tp.At, ev.Digit(), ev.Duration)
	}
	fmt.Println("packets sent:", len(sched))
	// Output:
	// at 160ms: digit # for 160ms
	// packets sent: 6
}
