package jitter_test

import (
	"fmt"
	"time"

	"github.com/pion/rtp"

	"github.com/sipstream/sipstream/media/jitter"
)

// Packets 1, 3, 4 arrive; 2 never does. The buffer releases 1 at once,
// holds 3 and 4 for the 60 ms delay, then declares 2 lost.
func Example() {
	buf, err := jitter.New(jitter.Config{Delay: 60 * time.Millisecond, ClockRate: 8000})
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, seq := range []uint16{1, 3, 4} {
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: 7}, Payload: make([]byte, 160)}
		raw, _ := pkt.Marshal() // in real use: the bytes read from the socket
		now := start.Add(time.Duration(i*20) * time.Millisecond)
		if err := buf.Push(raw, now); err != nil {
			panic(err)
		}
		for p, ok := buf.Pop(now); ok; p, ok = buf.Pop(now) {
			fmt.Println("at", now.Sub(start), "release", p.SequenceNumber)
		}
	}
	next, _ := buf.NextDeadline()
	for p, ok := buf.Pop(next); ok; p, ok = buf.Pop(next) {
		fmt.Println("at", next.Sub(start), "release", p.SequenceNumber)
	}
	fmt.Println("lost:", buf.Stats().Lost)
	// Output:
	// at 0s release 1
	// at 80ms release 3
	// at 80ms release 4
	// lost: 1
}
