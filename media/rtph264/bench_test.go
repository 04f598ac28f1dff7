package rtph264_test

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/sipstream/sipstream/media/jitter"
	"github.com/sipstream/sipstream/media/rtph264"
)

// BenchmarkClipPipeline measures one packet of the test clip from its bytes
// (as read from a socket) through the jitter buffer (Unmarshal included)
// and the H.264 depacketizer. The clip loops with sequence numbers and
// timestamps continuing, so the decoder sees one endless stream.
func BenchmarkClipPipeline(b *testing.B) {
	aus, pkts := clipPackets(b, 1)
	jb, err := jitter.New(jitter.Config{ClockRate: 90000})
	if err != nil {
		b.Fatal(err)
	}
	dec, err := rtph264.NewDecoder(rtph264.DecoderConfig{})
	if err != nil {
		b.Fatal(err)
	}
	raws := make([][]byte, len(pkts))
	for i, p := range pkts {
		raws[i] = append([]byte(nil), p.Data...)
	}
	firstSeq := binary.BigEndian.Uint16(raws[0][2:])
	span := uint32(len(aus)) * 3600
	now := time.Unix(0, 0)
	frames := 0
	i := 0
	step := func() {
		k := i % len(raws)
		loop := i / len(raws)
		raw := raws[k]
		binary.BigEndian.PutUint16(raw[2:], firstSeq+uint16(i))
		binary.BigEndian.PutUint32(raw[4:], aus[0].ts+uint32(loop)*span+uint32(pkts[k].At/(40*time.Millisecond))*3600)
		now = now.Add(200 * time.Microsecond)
		if err := jb.Push(raw, now); err != nil {
			b.Fatal(err)
		}
		for pkt, ok := jb.Pop(now); ok; pkt, ok = jb.Pop(now) {
			_, _, err := dec.Decode(pkt)
			switch {
			case err == nil:
				frames++
			case errors.Is(err, rtph264.ErrMorePacketsNeeded):
			default:
				b.Fatal(err)
			}
		}
		i++
	}
	// Warm up: every jitter buffer slot and decoder buffer reaches its
	// steady-state size.
	for range 4096 {
		step()
	}
	i0, f0 := i, frames
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ { // b.Loop here crashes the go1.26.8 compiler (ICE in TestLossyNoBrokenFrames)
		step()
	}
	b.StopTimer()
	b.ReportMetric(float64(i-i0)/float64(max(frames-f0, 1)), "packets/frame")
	if frames == 0 {
		b.Fatal("no frames")
	}
}
