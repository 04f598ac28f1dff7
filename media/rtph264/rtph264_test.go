package rtph264

import (
	"errors"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

func TestEncode(t *testing.T) {
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			e, err := NewEncoder(EncoderConfig{PayloadType: casePT, SSRC: caseSSRC, InitialSequenceNumber: 17645})
			require.NoError(t, err)
			pkts, err := e.Encode(ca.nalus, 2289528)
			require.NoError(t, err)
			require.Equal(t, ca.pkts, pkts)
			require.Equal(t, ca.pkts[len(ca.pkts)-1].SequenceNumber+1, e.NextSequenceNumber())
		})
	}
}

// primed returns a decoder that has already emitted one IDR (with SPS and
// PPS) ending at sequence number seq-1, so that any access unit may follow.
func primed(t *testing.T, cfg DecoderConfig, seq uint16) *Decoder {
	t.Helper()
	d, err := NewDecoder(cfg)
	require.NoError(t, err)
	e, err := NewEncoder(EncoderConfig{PayloadType: casePT, SSRC: caseSSRC, InitialSequenceNumber: seq - 1})
	require.NoError(t, err)
	pkts, err := e.Encode([][]byte{testSPS, testPPS, testIDR}, 1000)
	require.NoError(t, err)
	require.Len(t, pkts, 1)
	fr, _, err := d.Decode(pkts[0])
	require.NoError(t, err)
	require.True(t, fr.Keyframe)
	return d
}

func TestDecode(t *testing.T) {
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			for _, annexB := range []bool{false, true} {
				d := primed(t, DecoderConfig{AnnexB: annexB}, 17645)
				var got []byte
				for i, p := range ca.pkts {
					fr, ts, err := d.Decode(p)
					if i < len(ca.pkts)-1 {
						require.ErrorIs(t, err, ErrMorePacketsNeeded)
						continue
					}
					require.NoError(t, err)
					require.Equal(t, uint32(2289528), ts)
					require.Equal(t, uint32(90000), fr.ClockRate)
					require.Equal(t, ca.nalus[0][0]&0x1f == NALTypeSPS, fr.Keyframe)
					got = fr.Payload
				}
				want := JoinAVC(ca.nalus)
				if annexB {
					want = JoinAnnexB(ca.nalus)
				}
				require.Equal(t, want, got, "annexB=%v", annexB)
			}
		})
	}
}

// step is one packet fed to the decoder and what must come out.
type step struct {
	pkt   *rtp.Packet
	want  [][]byte // NAL units of the emitted access unit; nil: none
	err   error    // expected error (nil when want is set)
	keyfr bool
}

// lossCases are packet sequences damaged by the network or by odd senders,
// decoded from a fresh decoder.
var lossCases = []struct {
	name  string
	cfg   DecoderConfig
	steps []step
}{
	{
		name: "waits for the first IDR",
		steps: []step{
			{pkt: mkpkt(1, 0, true, testP), err: ErrNeedKeyframe},
			{pkt: mkpkt(2, 3000, true, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS, u16(len(testIDR)), testIDR)), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true},
			{pkt: mkpkt(3, 6000, true, testP), want: [][]byte{testP}},
		},
	},
	{
		name: "FU-A middle lost: dropped, then waits for the IDR",
		steps: []step{
			{pkt: mkpkt(10, 0, false, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS)), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(11, 0, false, cat([]byte{0x7c, 0x85}, bigIDR[1:1000])), err: ErrMorePacketsNeeded},
			// 12 lost
			{pkt: mkpkt(13, 0, true, cat([]byte{0x7c, 0x45}, bigIDR[2000:])), err: ErrNeedKeyframe},
			{pkt: mkpkt(14, 3000, true, testP), err: ErrNeedKeyframe},
			{pkt: mkpkt(15, 6000, true, testIDR), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true}, // SPS/PPS put back
			{pkt: mkpkt(16, 9000, true, testP), want: [][]byte{testP}},
		},
	},
	{
		name: "FU-A start lost",
		steps: []step{
			{pkt: mkpkt(1, 0, true, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS, u16(len(testIDR)), testIDR)), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true},
			// 2 (FU-A start) lost
			{pkt: mkpkt(3, 3000, false, cat([]byte{0x5c, 0x01}, testP[1:5])), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(4, 3000, true, cat([]byte{0x5c, 0x41}, testP[5:])), err: ErrNeedKeyframe},
			{pkt: mkpkt(5, 6000, true, testP), err: ErrNeedKeyframe},
		},
	},
	{
		name: "FU-A fragment without its start and no loss: invalid",
		steps: []step{
			{pkt: mkpkt(1, 0, true, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS, u16(len(testIDR)), testIDR)), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true},
			{pkt: mkpkt(2, 3000, false, cat([]byte{0x5c, 0x01}, testP[1:5])), err: errFUAStart},
			{pkt: mkpkt(3, 3000, true, cat([]byte{0x5c, 0x41}, testP[5:])), err: ErrNeedKeyframe},
		},
	},
	{
		name: "whole frame lost between two complete ones",
		steps: []step{
			{pkt: mkpkt(1, 0, true, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS, u16(len(testIDR)), testIDR)), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true},
			// 2 (a whole P frame) lost: the next P frame references it
			{pkt: mkpkt(3, 6000, true, testP), err: ErrNeedKeyframe},
		},
	},
	{
		name: "FU-A end lost, marker lost: timestamp change ends the access unit",
		steps: []step{
			{pkt: mkpkt(1, 0, true, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS, u16(len(testIDR)), testIDR)), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true},
			{pkt: mkpkt(2, 3000, false, cat([]byte{0x5c, 0x81}, testP[1:5])), err: ErrMorePacketsNeeded},
			// 3 lost
			{pkt: mkpkt(4, 6000, true, testP), err: ErrNeedKeyframe},
		},
	},
	{
		name: "sender without marker bits",
		steps: []step{
			{pkt: mkpkt(1, 0, false, testSPS), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(2, 0, false, testPPS), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(3, 0, false, testIDR), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(4, 3000, false, testP), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true},
			{pkt: mkpkt(5, 3000, false, testSlice), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(6, 6000, false, testP), want: [][]byte{testP, testSlice}},
		},
	},
	{
		name: "duplicates and late packets ignored",
		steps: []step{
			{pkt: mkpkt(100, 0, false, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS)), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(100, 0, false, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS)), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(101, 0, true, testIDR), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true},
			{pkt: mkpkt(99, 0, true, testIDR), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(102, 3000, true, testP), want: [][]byte{testP}},
		},
	},
	{
		name: "parameter sets sent alone, IDR without them",
		steps: []step{
			{pkt: mkpkt(1, 0, true, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS)), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(2, 3000, true, testIDR), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true},
		},
	},
	{
		name: "parameter sets from the SDP",
		cfg:  DecoderConfig{SPS: testSPS, PPS: testPPS},
		steps: []step{
			{pkt: mkpkt(1, 0, true, testIDR), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true},
		},
	},
	{
		name: "IDR without any parameter sets is not emitted",
		steps: []step{
			{pkt: mkpkt(1, 0, true, testIDR), err: ErrNeedKeyframe},
		},
	},
	{
		name: "truncated STAP-A",
		steps: []step{
			{pkt: mkpkt(1, 0, false, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(50), testPPS)), err: errSTAPA},
			{pkt: mkpkt(2, 0, true, testIDR), err: ErrNeedKeyframe},
		},
	},
	{
		name: "FU-B (packetization-mode 2) rejected",
		cfg:  DecoderConfig{SPS: testSPS, PPS: testPPS},
		steps: []step{
			{pkt: mkpkt(1, 0, true, []byte{0x7d, 0x85, 0, 1, 2}), err: ErrNeedKeyframe},
		},
	},
	{
		name: "access unit over the size limit",
		cfg:  DecoderConfig{SPS: testSPS, PPS: testPPS, MaxAccessUnitSize: 100},
		steps: []step{
			{pkt: mkpkt(1, 0, false, cat([]byte{0x7c, 0x85}, bigIDR[1:50])), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(2, 0, true, cat([]byte{0x7c, 0x45}, bigIDR[50:200])), err: ErrNeedKeyframe},
		},
	},
	{
		name: "SSRC change is a discontinuity",
		steps: []step{
			{pkt: mkpkt(1, 0, true, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS, u16(len(testIDR)), testIDR)), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true},
			{pkt: func() *rtp.Packet { p := mkpkt(2, 3000, true, testP); p.SSRC++; return p }(), err: ErrNeedKeyframe},
		},
	},
}

func TestDecodeLoss(t *testing.T) {
	for _, ca := range lossCases {
		t.Run(ca.name, func(t *testing.T) {
			d, err := NewDecoder(ca.cfg)
			require.NoError(t, err)
			for i, s := range ca.steps {
				fr, _, err := d.Decode(s.pkt)
				if s.want != nil {
					require.NoError(t, err, "step %d", i)
					require.Equal(t, JoinAVC(s.want), fr.Payload, "step %d", i)
					require.Equal(t, s.keyfr, fr.Keyframe, "step %d", i)
					continue
				}
				require.ErrorIs(t, err, s.err, "step %d", i)
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	_, err := NewEncoder(EncoderConfig{PayloadType: 34})
	require.Error(t, err)
	_, err = NewEncoder(EncoderConfig{PayloadType: 96, MTU: 10})
	require.Error(t, err)
	e, err := NewEncoder(EncoderConfig{PayloadType: 96, SingleNALOnly: true})
	require.NoError(t, err)
	_, err = e.Encode([][]byte{bigIDR}, 0)
	require.Error(t, err)
	_, err = e.Encode(nil, 0)
	require.Error(t, err)
	_, err = e.Encode([][]byte{{}}, 0)
	require.Error(t, err)
	// Mode 0 never aggregates.
	pkts, err := e.Encode([][]byte{testSPS, testPPS, testIDR}, 0)
	require.NoError(t, err)
	require.Len(t, pkts, 3)
	require.Equal(t, []bool{false, false, true}, []bool{pkts[0].Marker, pkts[1].Marker, pkts[2].Marker})
}

// TestForEachAVC: the walk stops when fn says so, allocates nothing and
// fails on a truncated, zero or overlong length.
func TestForEachAVC(t *testing.T) {
	au := []byte{0, 0, 0, 1, 0x67, 0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41}
	var got [][]byte
	require.NoError(t, ForEachAVC(au, func(n []byte) bool {
		got = append(got, n)
		return len(got) < 2
	}))
	require.Equal(t, [][]byte{{0x67}, {0x65, 1}}, got)
	for _, bad := range [][]byte{{0, 0, 0, 9, 1}, {0, 0}, {0, 0, 0, 0, 0, 0, 0, 1, 0x65}} {
		require.Error(t, ForEachAVC(bad, func([]byte) bool { return true }), "% x", bad)
	}
	count := 0
	require.Zero(t, testing.AllocsPerRun(100, func() {
		_ = ForEachAVC(au, func([]byte) bool { count++; return true })
	}))
}

// TestParamSets: the first SPS and the first PPS are kept.
func TestParamSets(t *testing.T) {
	var ps ParamSets
	sps2 := append(append([]byte(nil), testSPS...), 0) // a later, other SPS
	for _, n := range [][]byte{{0x09, 0x10}, testSPS, {}, sps2, testPPS, {0x68, 9}, {0x65, 1}} {
		ps.Add(n)
	}
	require.Equal(t, testSPS, ps.SPS)
	require.Equal(t, testPPS, ps.PPS)
	require.Equal(t, h264.NALUTypeIDR, ps.Add([]byte{0x65}))
	require.Equal(t, h264.NALUType(0), ps.Add(nil))
}

func TestSplitAVC(t *testing.T) {
	nalus, err := SplitAVC(JoinAVC([][]byte{testSPS, testPPS}))
	require.NoError(t, err)
	require.Equal(t, [][]byte{testSPS, testPPS}, nalus)
	_, err = SplitAVC([]byte{0, 0, 0, 9, 1})
	require.Error(t, err)
	_, err = SplitAVC([]byte{0, 0})
	require.Error(t, err)
	_, err = SplitAVC([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0x65}) // zero-length NAL unit
	require.Error(t, err)

	// A packetization-mode 0 IDR: one slice per packet, more NAL units
	// than mediacommon's h264.AVCC.Unmarshal takes (50).
	many := [][]byte{testSPS, testPPS}
	for range 61 {
		many = append(many, []byte{0x65, 0x88, 0x84})
	}
	nalus, err = SplitAVC(JoinAVC(many))
	require.NoError(t, err)
	require.Equal(t, many, nalus)
}

func TestJoin(t *testing.T) {
	nalus := [][]byte{{0x67, 0x42}, {0x68}, {0x65, 0, 0, 1}}
	require.Equal(t, []byte{0, 0, 0, 2, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0, 0, 0, 4, 0x65, 0, 0, 1}, JoinAVC(nalus))
	require.Equal(t, []byte{0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0, 0, 0, 1, 0x65, 0, 0, 1}, JoinAnnexB(nalus))
	require.Equal(t, []byte{}, JoinAVC(nil))
	require.Equal(t, []byte{}, JoinAnnexB(nil))
}

// marshalSeq encodes a packet sequence as fuzz input: each packet preceded
// by its 2-byte length.
func marshalSeq(pkts []*rtp.Packet) []byte {
	var b []byte
	for _, p := range pkts {
		raw, err := p.Marshal()
		if err != nil {
			panic(err)
		}
		b = append(b, u16(len(raw))...)
		b = append(b, raw...)
	}
	return b
}

// FuzzDecode feeds arbitrary packet sequences to the decoder: it must not
// panic, and whatever it emits must be a well-formed AVC access unit that
// holds a slice, whose Keyframe flag matches an IDR inside, and whose IDRs
// come with SPS and PPS.
func FuzzDecode(f *testing.F) {
	for _, ca := range cases {
		f.Add(marshalSeq(ca.pkts))
	}
	for _, ca := range lossCases {
		var pkts []*rtp.Packet
		for _, s := range ca.steps {
			pkts = append(pkts, s.pkt)
		}
		f.Add(marshalSeq(pkts))
	}
	for _, ca := range concealCases {
		var pkts []*rtp.Packet
		for _, s := range ca.steps {
			pkts = append(pkts, s.pkt)
		}
		f.Add(marshalSeq(pkts))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The freezing and the concealing policy see the same packets.
		fuzzDecode(t, b, DecoderConfig{MaxAccessUnitSize: 1 << 16})
		fuzzDecode(t, b, DecoderConfig{MaxAccessUnitSize: 1 << 16, Conceal: true})
	})
}

func fuzzDecode(t *testing.T, b []byte, cfg DecoderConfig) {
	t.Helper()
	{
		d, err := NewDecoder(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var pkt rtp.Packet
		for len(b) >= 2 {
			n := int(b[0])<<8 | int(b[1])
			b = b[2:]
			n = min(n, len(b))
			raw := b[:n]
			b = b[n:]
			if pkt.Unmarshal(raw) != nil {
				continue
			}
			fr, _, err := d.Decode(&pkt)
			if err != nil {
				if fr.Payload != nil {
					t.Fatal("payload with an error")
				}
				continue
			}
			nalus, err := SplitAVC(fr.Payload)
			if err != nil {
				t.Fatalf("emitted malformed AVC: %v", err)
			}
			var idr, sps, pps, vcl bool
			for _, n := range nalus {
				switch typ := n[0] & 0x1f; {
				case typ == NALTypeIDR:
					idr, vcl = true, true
				case typ == NALTypeSPS:
					sps = true
				case typ == NALTypePPS:
					pps = true
				case typ >= 1 && typ <= 4:
					vcl = true
				case typ == 0 || typ >= 24:
					t.Fatalf("emitted NAL unit of type %d", typ)
				}
			}
			if !vcl || idr != fr.Keyframe || (idr && (!sps || !pps)) {
				t.Fatalf("bad access unit: vcl=%v idr=%v keyframe=%v sps=%v pps=%v", vcl, idr, fr.Keyframe, sps, pps)
			}
		}
	}
}

func TestErrorsDistinct(t *testing.T) {
	require.False(t, errors.Is(ErrNeedKeyframe, ErrMorePacketsNeeded))
}

func TestIsKeyframePacket(t *testing.T) {
	for _, c := range []struct {
		name    string
		payload []byte
		want    bool
	}{
		{"empty", nil, false},
		{"idr", []byte{0x65, 0x88}, true},
		{"sps", []byte{0x67, 0x42}, true},
		{"pps", []byte{0x68, 0xce}, true},
		{"p slice", []byte{0x41, 0x9a}, false},
		{"sei", []byte{0x06, 0x05}, false},
		{"fu-a idr start", []byte{0x7c, 0x85, 0x88}, true},
		{"fu-a idr middle", []byte{0x7c, 0x05, 0x88}, true},
		{"fu-a p", []byte{0x7c, 0x81, 0x9a}, false},
		{"fu-a truncated", []byte{0x7c}, false},
		{"stap-a sps pps", []byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, true},
		{"stap-a sei p", []byte{0x78, 0, 2, 0x06, 0x05, 0, 2, 0x41, 0x9a}, false},
		{"stap-a bad length", []byte{0x78, 0, 9, 0x67}, false},
	} {
		if got := IsKeyframePacket(c.payload); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
}

// FuzzIsKeyframePacket: any payload, never a panic; a payload whose first
// NAL unit is an IDR or parameter set is always one.
func FuzzIsKeyframePacket(f *testing.F) {
	f.Add([]byte{0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce})
	f.Add([]byte{0x7c, 0x85, 0x88})
	f.Add([]byte{0x41})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := IsKeyframePacket(b)
		if len(b) > 0 {
			if t := b[0] & 0x1f; (t == NALTypeIDR || t == NALTypeSPS || t == NALTypePPS) && !got {
				panic("an IDR/SPS/PPS NAL unit was not taken for a keyframe packet")
			}
		}
	})
}
