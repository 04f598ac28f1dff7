package timeline

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"
)

// FuzzStream drives two streams of a timeline with an arbitrary sequence of
// packets, Sender Reports and frame mappings (hostile timestamps, NTP times,
// SSRC and clock-rate changes, arrival times that stand still or leap): it
// must never panic, and each stream's output must strictly increase and
// never be below zero, as Map documents.
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
	f.Fuzz(checkOps)
}

// TestMapStrictlyIncreasing runs random schedules (SSRC and clock changes,
// reordering, timestamp jumps either way, SRs that agree or not) through
// the fuzz target's checker: every stream's outputs strictly increase.
func TestMapStrictlyIncreasing(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for run := 0; run < 500; run++ {
		var b []byte
		for i := 0; i < 200; i++ {
			op := []byte{byte(rng.IntN(3)), byte(rng.IntN(2)), 0, byte(rng.IntN(4)), 0, 0, 0, 0, 0, 0, 0, 0}
			if rng.IntN(50) == 0 {
				op[2] = byte(rng.IntN(3)) // SSRC change
			}
			var d int32
			switch r := rng.IntN(10); {
			case r < 6:
				d = int32(rng.IntN(4000)) // forward
			case r < 8:
				d = -int32(rng.IntN(4000)) // reordered or repeated
			case r < 9:
				d = 0 // the same timestamp again
			default:
				d = int32(rng.Uint32()) // a jump
			}
			binary.BigEndian.PutUint32(op[4:], uint32(d))
			binary.BigEndian.PutUint16(op[8:], uint16(rng.IntN(60)))
			if rng.IntN(20) == 0 {
				binary.BigEndian.PutUint16(op[10:], uint16(rng.IntN(3)))
			}
			b = append(b, op...)
		}
		checkOps(t, b)
	}
}

// checkOps plays a byte-coded schedule of Observe, SenderReport and Map
// calls on two streams and fails when a stream's output is negative or
// does not strictly increase.
func checkOps(t *testing.T, b []byte) {
	{
		tl, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		streams := [2]*Stream{tl.NewStream(), tl.NewStream()}
		var ts [2]uint32
		var last [2]time.Duration
		var have [2]bool
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
				if out < 0 || (have[si] && out <= last[si]) {
					t.Fatalf("stream %d: output %v after %v", si, out, last[si])
				}
				last[si], have[si] = out, true
			}
		}
	}
}
