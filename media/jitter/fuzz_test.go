package jitter

import (
	"testing"
	"time"
)

// FuzzBuffer feeds arbitrary packet sequences with arbitrary arrival
// times. Each op is 4 bytes: time advance in ms, sequence number (2 bytes),
// flags (bit 0: second SSRC, bit 1: push a malformed packet). Invariants:
// no panic; every released packet is intact; within one sequence space
// packets leave in increasing order; after Pop says nothing is ready, no
// packet is overdue.
func FuzzBuffer(f *testing.F) {
	for _, ca := range cases {
		var b []byte
		prev := 0
		for _, o := range ca.ops {
			if o.push < 0 {
				b = append(b, byte(o.at-prev), 0, 0, 2)
			} else {
				b = append(b, byte(o.at-prev), byte(o.push>>8), byte(o.push), byte(o.ssrc&1))
			}
			prev = o.at
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := New(Config{Capacity: 128, Adaptive: len(in)%2 == 0, ClockRate: 8000})
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		var lastSeq uint16
		var lastSSRC uint32
		var lastResets uint64
		have := false
		for len(in) >= 4 {
			now = now.Add(time.Duration(in[0]) * time.Millisecond)
			seq := uint16(in[1])<<8 | uint16(in[2])
			ssrc := uint32(1 + in[3]&1)
			if in[3]&2 != 0 {
				_ = b.Push(in[:4], now)
			} else {
				_ = b.Push(raw(seq, ssrc, in[1], in[2], byte(ssrc)), now)
			}
			in = in[4:]
			for {
				p, ok := b.Pop(now)
				if !ok {
					break
				}
				if len(p.Payload) != 3 || p.Payload[0] != byte(p.SequenceNumber>>8) || p.Payload[1] != byte(p.SequenceNumber) || uint32(p.Payload[2]) != p.SSRC {
					t.Fatalf("corrupted packet: seq %d ssrc %d payload %x", p.SequenceNumber, p.SSRC, p.Payload)
				}
				st := b.Stats()
				if have && st.Resets == lastResets && p.SSRC == lastSSRC && int16(p.SequenceNumber-lastSeq) <= 0 {
					t.Fatalf("seq %d released after %d", p.SequenceNumber, lastSeq)
				}
				have, lastSeq, lastSSRC, lastResets = true, p.SequenceNumber, p.SSRC, st.Resets
			}
			if d, ok := b.NextDeadline(); ok && !d.After(now) {
				t.Fatalf("packet overdue: deadline %v, now %v", d, now)
			}
			if b.Len() > 128 {
				t.Fatalf("%d packets held", b.Len())
			}
		}
	})
}
