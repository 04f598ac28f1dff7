package timeline

import (
	"encoding/binary"
	"testing"
	"time"
)

// FuzzStream drives two streams of a timeline with an arbitrary sequence of
// packets, Sender Reports and frame mappings (hostile timestamps, NTP times,
// SSRC and clock-rate changes, arrival times that stand still or leap): it
// must never panic, and each stream's output must never go backwards nor
// below zero, as Map documents.
func FuzzStream(f *testing.F) {
	// op: kind, stream, ssrc, rate; ts delta (int32); arrival step (ms);
	// NTP step (seconds, 16 bits)
	op := func(kind, stream, ssrc, rate byte, dts int32, ms uint16, ntp uint16) []byte {
		b := []byte{kind, stream, ssrc, rate, 0, 0, 0, 0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(b[4:], uint32(dts))
		binary.BigEndian.PutUint16(b[8:], ms)
		binary.BigEndian.PutUint16(b[10:], ntp)
		return b
	}
	var seed []byte
	for i := 0; i < 20; i++ {
		seed = append(seed, op(0, 0, 0, 0, 160, 20, 0)...)
		seed = append(seed, op(2, 0, 0, 0, 0, 0, 0)...)
		seed = append(seed, op(0, 1, 1, 1, 3600, 20, 0)...)
		seed = append(seed, op(2, 1, 1, 1, 0, 0, 0)...)
		if i%5 == 0 {
			seed = append(seed, op(1, 0, 0, 0, 0, 0, 1)...)
			seed = append(seed, op(1, 1, 1, 1, 0, 0, 0)...)
		}
	}
	f.Add(seed)
	f.Add(append(op(0, 0, 0, 0, 0x7fffffff, 1, 0), op(0, 0, 0, 0, 0x7fffffff, 1, 0)...))
	f.Add(append(op(1, 0, 0, 0, -5, 0, 0xffff), op(2, 0, 0, 0, -0x80000000, 0xffff, 0xffff)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		tl, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		streams := [2]*Stream{tl.NewStream(), tl.NewStream()}
		var ts [2]uint32
		var last [2]time.Duration
		rates := [...]uint32{8000, 90000, 48000, 1}
		at := t0
		ntp := ntpBase
		for len(b) >= 12 {
			kind, si, ssrc, rate := b[0]%3, b[1]%2, uint32(b[2]%3), rates[b[3]%4]
			dts := int32(binary.BigEndian.Uint32(b[4:]))
			at = at.Add(time.Duration(binary.BigEndian.Uint16(b[8:])) * time.Millisecond)
			ntp += uint64(binary.BigEndian.Uint16(b[10:])) << 32
			b = b[12:]
			s := streams[si]
			ts[si] += uint32(dts)
			switch kind {
			case 0:
				s.Observe(ssrc, ts[si], rate, at)
			case 1:
				s.SenderReport(ssrc, ntp, ts[si], at)
			case 2:
				out := s.Map(ssrc, ts[si])
				if out < 0 || out < last[si] {
					t.Fatalf("stream %d: output %v after %v", si, out, last[si])
				}
				last[si] = out
			}
		}
	})
}
