package rtcpx

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/stretchr/testify/require"
)

func marshal(ps ...rtcp.Packet) []byte {
	b, err := rtcp.Marshal(ps)
	if err != nil {
		panic(err)
	}
	return b
}

var testSR = &rtcp.SenderReport{SSRC: 0x11223344, NTPTime: 0xe8a1b2c3d4e5f607, RTPTime: 0x89abcdef, PacketCount: 1234, OctetCount: 567890,
	Reports: []rtcp.ReceptionReport{{SSRC: 0x55, FractionLost: 3, TotalLost: 9, LastSequenceNumber: 70000, Jitter: 12}}}

// cases is the golden table of compound packets: what Walk sees.
var cases = []struct {
	name  string
	wire  []byte
	types []uint8
	sr    *SenderReport
	bye   []uint32
	err   error
}{
	{
		name:  "SR + SDES",
		wire:  marshal(testSR, &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 0x11223344, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "phone@10.0.0.1"}}}}}),
		types: []uint8{TypeSR, TypeSDES},
		sr:    &SenderReport{SSRC: 0x11223344, NTPTime: 0xe8a1b2c3d4e5f607, RTPTime: 0x89abcdef, PacketCount: 1234, OctetCount: 567890},
	},
	{
		name:  "RR + BYE with two sources",
		wire:  marshal(&rtcp.ReceiverReport{SSRC: 7}, &rtcp.Goodbye{Sources: []uint32{7, 8}, Reason: "bye"}),
		types: []uint8{TypeRR, TypeBYE},
		bye:   []uint32{7, 8},
	},
	{
		name:  "PLI and FIR",
		wire:  marshal(&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}, &rtcp.FullIntraRequest{SenderSSRC: 1, MediaSSRC: 2, FIR: []rtcp.FIREntry{{SSRC: 2, SequenceNumber: 5}}}),
		types: []uint8{TypePSFB, TypePSFB},
	},
	{
		name:  "padded SR",
		wire:  []byte{0xa0, 200, 0, 7, 0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 4},
		types: []uint8{TypeSR},
		sr:    &SenderReport{SSRC: 9, NTPTime: 1<<32 | 2, RTPTime: 3, PacketCount: 4, OctetCount: 5},
	},
	{name: "truncated", wire: []byte{0x80, 200, 0, 6, 0, 0}, err: ErrTruncated},
	{name: "version 1", wire: []byte{0x40, 201, 0, 0}, err: ErrVersion},
	{name: "bad padding", wire: []byte{0xa0, 201, 0, 1, 0, 0, 0, 9}, err: ErrPadding},
	{name: "second packet truncated", wire: append(marshal(&rtcp.ReceiverReport{SSRC: 7}), 0x80, 203, 0, 5), types: []uint8{TypeRR}, err: ErrTruncated},
}

func TestWalk(t *testing.T) {
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			var types []uint8
			var sr *SenderReport
			var bye []uint32
			err := Walk(ca.wire, func(p Packet) bool {
				types = append(types, p.Type)
				switch p.Type {
				case TypeSR:
					s, err := ParseSenderReport(p)
					require.NoError(t, err)
					sr = &s
				case TypeBYE:
					require.NoError(t, ByeSources(p, func(s uint32) { bye = append(bye, s) }))
				}
				return true
			})
			require.ErrorIs(t, err, ca.err)
			require.Equal(t, ca.types, types)
			require.Equal(t, ca.sr, sr)
			require.Equal(t, ca.bye, bye)
		})
	}
}

func TestIsRTCP(t *testing.T) {
	require.True(t, IsRTCP(marshal(&rtcp.ReceiverReport{SSRC: 1})))
	require.False(t, IsRTCP([]byte{0x80, 0x08})) // PCMA
	require.False(t, IsRTCP([]byte{0x80, 0xe0})) // PT 96 with marker
	require.False(t, IsRTCP([]byte{0x80}))
}

func TestNTP(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC)
	n := NTP(at)
	require.Equal(t, uint64(at.Unix()+ntpEpochOffset), n>>32)
	require.InDelta(t, float64(1<<31), float64(n&0xffffffff), 2)
}

func TestSourceReport(t *testing.T) {
	var s Source
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	seq, ts := uint16(65500), uint32(1000)
	// 100 packets, 20 ms apart, every 10th lost; sequence wraps
	for i := 0; i < 100; i++ {
		if i%10 != 5 {
			s.Update(seq, ts, t0.Add(time.Duration(i)*20*time.Millisecond), 8000)
		}
		seq++
		ts += 160
	}
	s.SenderReport(0x0001_2345_6789_0000, t0.Add(time.Second))
	rr := s.Report(0xabc, t0.Add(1500*time.Millisecond))
	require.Equal(t, uint32(0xabc), rr.SSRC)
	require.Equal(t, uint32(10), rr.TotalLost)
	require.Equal(t, uint8(10*256/100), rr.FractionLost)
	require.Equal(t, uint32(1<<16|(65500+99-65536)), rr.LastSequenceNumber)
	require.Equal(t, uint32(0x2345_6789), rr.LastSenderReport)
	require.Equal(t, uint32(65536/2), rr.Delay)
	require.Zero(t, rr.Jitter) // perfectly paced
	// next interval: no loss
	for i := 100; i < 150; i++ {
		s.Update(seq, ts, t0.Add(time.Duration(i)*20*time.Millisecond), 8000)
		seq++
		ts += 160
	}
	rr = s.Report(0xabc, t0.Add(3*time.Second))
	require.Zero(t, rr.FractionLost)
	require.Equal(t, uint32(10), rr.TotalLost)
}

func TestSourceJitter(t *testing.T) {
	var s Source
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ts := uint32(0xffffff00)
	for i := 0; i < 2000; i++ {
		// alternately 0 and 10 ms late: |D| = 10 ms = 80 units
		late := time.Duration(i%2) * 10 * time.Millisecond
		s.Update(uint16(i), ts, t0.Add(time.Duration(i)*20*time.Millisecond+late), 8000)
		ts += 160
	}
	require.InDelta(t, 80, float64(s.Report(1, t0).Jitter), 1)
	require.InDelta(t, float64(10*time.Millisecond), float64(s.Jitter()), float64(200*time.Microsecond))
}

// FuzzWalk: Walk never panics, and when it and pion/rtcp both accept a
// compound packet, they find the same SRs.
func FuzzWalk(f *testing.F) {
	for _, ca := range cases {
		f.Add(ca.wire)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var srs []SenderReport
		strict := false // Walk rejected something pion may accept
		werr := Walk(b, func(p Packet) bool {
			if p.Type == TypeSR {
				s, err := ParseSenderReport(p)
				if err != nil {
					strict = true
				}
				srs = append(srs, s)
			}
			if p.Type == TypeBYE {
				_ = ByeSources(p, func(uint32) {})
			}
			_, _ = SenderSSRC(p)
			_ = ReportBlocks(p, func(blk ReportBlock) { _, _ = RoundTrip(blk, time.Now()) })
			return true
		})
		ps, err := rtcp.Unmarshal(b)
		if err != nil || werr != nil || strict {
			return // pion is laxer on padding: compare only what both accept
		}
		k := 0
		for _, p := range ps {
			if sr, ok := p.(*rtcp.SenderReport); ok {
				if k >= len(srs) {
					t.Fatalf("pion parsed an SR that Walk missed")
				}
				got := srs[k]
				if got.SSRC != sr.SSRC || got.NTPTime != sr.NTPTime || got.RTPTime != sr.RTPTime {
					t.Fatalf("SR mismatch: %+v vs %+v", got, sr)
				}
				k++
			}
		}
	})
}

// A source that sent one SR and then only RTP: the delay since that SR
// outgrows the DLSR field (18 h) and time.Duration*65536 (39 h). It must
// saturate, not wrap to a small or garbage value.
func TestSourceReportStaleSR(t *testing.T) {
	var s Source
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Update(1, 0, t0, 8000)
	s.SenderReport(0x0001_2345_6789_0000, t0)
	for _, c := range []struct {
		after time.Duration
		want  uint32
	}{
		{0, 0},
		{-time.Second, 0}, // clock stepped back
		{time.Second + time.Second/4, 65536 + 16384},
		{18 * time.Hour, 18 * 3600 << 16},
		{19 * time.Hour, 0xffffffff},
		{40 * time.Hour, 0xffffffff},
		{1000 * time.Hour, 0xffffffff},
	} {
		rr := s.Report(0xabc, t0.Add(c.after))
		require.Equal(t, c.want, rr.Delay, "after %v", c.after)
	}
}

func TestReportBlocksAndRoundTrip(t *testing.T) {
	sent := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	lsr := uint32(NTP(sent) >> 16)
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{
		{SSRC: 7, FractionLost: 12, LastSenderReport: lsr, Delay: 65536 / 4}, // held 250 ms
		{SSRC: 9},
	}}
	sr := &rtcp.SenderReport{SSRC: 2, NTPTime: 5, Reports: []rtcp.ReceptionReport{{SSRC: 7, LastSenderReport: lsr, Delay: 0}}}
	b, err := rtcp.Marshal([]rtcp.Packet{rr, sr})
	if err != nil {
		t.Fatal(err)
	}
	var got []ReportBlock
	if err := Walk(b, func(p Packet) bool {
		if err := ReportBlocks(p, func(blk ReportBlock) { got = append(got, blk) }); err != nil {
			t.Fatal(err)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].SSRC != 7 || got[0].FractionLost != 12 || got[1].SSRC != 9 || got[2].LastSR != lsr {
		t.Fatalf("blocks %+v", got)
	}
	// the report left the peer 250 ms after our SR arrived there, and
	// arrives 330 ms after we sent the SR: 80 ms round trip
	rtt, ok := RoundTrip(got[0], sent.Add(330*time.Millisecond))
	if !ok || rtt < 79*time.Millisecond || rtt > 81*time.Millisecond {
		t.Fatalf("rtt %v %v", rtt, ok)
	}
	if _, ok := RoundTrip(got[1], sent); ok {
		t.Fatal("a block without LSR gave a round trip")
	}
	if _, ok := RoundTrip(got[0], sent.Add(100*time.Millisecond)); ok {
		t.Fatal("a negative round trip was accepted")
	}
	// a count beyond the packet is an error, never a panic
	if err := ReportBlocks(Packet{Type: TypeRR, Count: 2, Body: make([]byte, 4+24)}, func(ReportBlock) {}); err == nil {
		t.Fatal("truncated blocks accepted")
	}
}
