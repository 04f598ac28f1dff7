package rtpvp8

import (
	"errors"
	"testing"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

func TestEncode(t *testing.T) {
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			cfg := ca.cfg
			cfg.PayloadType, cfg.SSRC, cfg.InitialSequenceNumber = casePT, caseSSRC, 65534
			e, err := NewEncoder(cfg)
			require.NoError(t, err)
			pkts, err := e.Encode(ca.frame, 2289528)
			require.NoError(t, err)
			require.Equal(t, ca.pkts, pkts)
			require.Equal(t, ca.pkts[len(ca.pkts)-1].SequenceNumber+1, e.NextSequenceNumber())
			for _, p := range pkts {
				require.LessOrEqual(t, p.MarshalSize(), max(cfg.MTU, 1200))
			}
		})
	}
}

// primed returns a decoder that has emitted one key frame ending at
// sequence number seq-1, so that any frame may follow.
func primed(t *testing.T, seq uint16) *Decoder {
	t.Helper()
	d, err := NewDecoder(DecoderConfig{})
	require.NoError(t, err)
	fr, _, err := d.Decode(mkpkt(seq-1, 1000, true, cat([]byte{0x10}, testKey)))
	require.NoError(t, err)
	require.True(t, fr.Keyframe)
	return d
}

func TestDecode(t *testing.T) {
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			d := primed(t, 65534)
			for i, p := range ca.pkts {
				fr, ts, err := d.Decode(p)
				if i < len(ca.pkts)-1 {
					require.ErrorIs(t, err, ErrMorePacketsNeeded)
					continue
				}
				require.NoError(t, err)
				require.Equal(t, uint32(2289528), ts)
				require.Equal(t, uint32(ClockRate), fr.ClockRate)
				require.Equal(t, ca.frame[0]&1 == 0, fr.Keyframe)
				require.Equal(t, ca.frame, fr.Payload)
			}
			require.False(t, d.NeedKeyframe())
		})
	}
}

func TestDescriptor(t *testing.T) {
	for _, ca := range descCases {
		t.Run(ca.name, func(t *testing.T) {
			require.Equal(t, ca.wire, ca.desc.AppendTo(nil))
			var d Descriptor
			n, err := d.Unmarshal(append(ca.wire, 0xee))
			require.NoError(t, err)
			require.Equal(t, len(ca.wire), n)
			require.Equal(t, ca.desc, d)
			for k := 1; k < len(ca.wire); k++ {
				if _, err := d.Unmarshal(ca.wire[:k]); err == nil && k < len(ca.wire) {
					// a prefix is only valid when it is a whole descriptor
					require.Equal(t, 1, k, "prefix %d accepted", k)
				}
			}
		})
	}
	var d Descriptor
	_, err := d.Unmarshal(nil)
	require.Error(t, err)
}

func TestIsKeyFrame(t *testing.T) {
	require.True(t, IsKeyFrame(testKey))
	require.False(t, IsKeyFrame(testInter))
	require.False(t, IsKeyFrame(testKey[:9]))
	bad := cat(testKey)
	bad[4] = 0
	require.False(t, IsKeyFrame(bad))
}

type step struct {
	pkt   *rtp.Packet
	want  []byte // emitted frame; nil: none
	err   error
	keyfr bool
}

var (
	keyPayload   = cat([]byte{0x10}, testKey)
	interPayload = cat([]byte{0x10}, testInter)
)

// lossCases are packet sequences damaged by the network or by odd senders,
// decoded from a fresh decoder.
var lossCases = []struct {
	name  string
	steps []step
}{
	{
		name: "waits for the first key frame",
		steps: []step{
			{pkt: mkpkt(1, 0, true, interPayload), err: ErrNeedKeyframe},
			{pkt: mkpkt(2, 3000, true, keyPayload), want: testKey, keyfr: true},
			{pkt: mkpkt(3, 6000, true, interPayload), want: testInter},
		},
	},
	{
		name: "middle packet lost: dropped, then waits for a key frame",
		steps: []step{
			{pkt: mkpkt(10, 0, false, cat([]byte{0x10}, bigKey[:80])), err: ErrMorePacketsNeeded},
			// 11 lost
			{pkt: mkpkt(12, 0, true, cat([]byte{0x00}, bigKey[160:])), err: ErrNeedKeyframe},
			{pkt: mkpkt(13, 3000, true, interPayload), err: ErrNeedKeyframe},
			{pkt: mkpkt(14, 6000, true, keyPayload), want: testKey, keyfr: true},
			{pkt: mkpkt(15, 9000, true, interPayload), want: testInter},
		},
	},
	{
		name: "first packet lost",
		steps: []step{
			{pkt: mkpkt(1, 0, true, keyPayload), want: testKey, keyfr: true},
			// 2 (start of an inter frame) lost
			{pkt: mkpkt(3, 3000, true, cat([]byte{0x00}, testInter[5:])), err: ErrNeedKeyframe},
			{pkt: mkpkt(4, 6000, true, interPayload), err: ErrNeedKeyframe},
		},
	},
	{
		name: "frame without its start and no loss: invalid",
		steps: []step{
			{pkt: mkpkt(1, 0, true, keyPayload), want: testKey, keyfr: true},
			{pkt: mkpkt(2, 3000, true, cat([]byte{0x00}, testInter)), err: errNoStart},
			{pkt: mkpkt(3, 6000, true, interPayload), err: ErrNeedKeyframe},
		},
	},
	{
		name: "whole inter frame lost: the next one references it",
		steps: []step{
			{pkt: mkpkt(1, 0, true, keyPayload), want: testKey, keyfr: true},
			// 2 lost
			{pkt: mkpkt(3, 6000, true, interPayload), err: ErrNeedKeyframe},
		},
	},
	{
		name: "whole frame lost before a complete key frame: the key frame is emitted",
		steps: []step{
			{pkt: mkpkt(1, 0, true, keyPayload), want: testKey, keyfr: true},
			// 2 lost
			{pkt: mkpkt(3, 6000, true, keyPayload), want: testKey, keyfr: true},
			{pkt: mkpkt(4, 9000, true, interPayload), want: testInter},
		},
	},
	{
		name: "last packet (with marker) lost: timestamp change ends the frame",
		steps: []step{
			{pkt: mkpkt(1, 0, true, keyPayload), want: testKey, keyfr: true},
			{pkt: mkpkt(2, 3000, false, cat([]byte{0x10}, testInter[:5])), err: ErrMorePacketsNeeded},
			// 3 lost
			{pkt: mkpkt(4, 6000, true, interPayload), err: ErrNeedKeyframe},
		},
	},
	{
		name: "sender without marker bits",
		steps: []step{
			{pkt: mkpkt(1, 0, false, cat([]byte{0x10}, testKey[:20])), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(2, 0, false, cat([]byte{0x00}, testKey[20:])), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(3, 3000, false, interPayload), want: testKey, keyfr: true},
			{pkt: mkpkt(4, 6000, false, interPayload), want: testInter},
		},
	},
	{
		name: "duplicates and late packets ignored",
		steps: []step{
			{pkt: mkpkt(100, 0, false, cat([]byte{0x10}, testKey[:20])), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(100, 0, false, cat([]byte{0x10}, testKey[:20])), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(101, 0, true, cat([]byte{0x00}, testKey[20:])), want: testKey, keyfr: true},
			{pkt: mkpkt(99, 0, true, keyPayload), err: ErrMorePacketsNeeded},
			{pkt: mkpkt(102, 3000, true, interPayload), want: testInter},
		},
	},
	{
		name: "key frame tag with a wrong start code",
		steps: []step{
			{pkt: mkpkt(1, 0, true, cat([]byte{0x10}, []byte{0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2b, 0, 0, 0, 0})), err: ErrNeedKeyframe},
		},
	},
	{
		name: "truncated descriptor",
		steps: []step{
			{pkt: mkpkt(1, 0, false, []byte{0x90}), err: errShort},
			{pkt: mkpkt(2, 0, true, cat([]byte{0x00}, testKey)), err: ErrNeedKeyframe},
		},
	},
	{
		name: "descriptor without data",
		steps: []step{
			{pkt: mkpkt(1, 0, true, []byte{0x10}), err: ErrNeedKeyframe},
		},
	},
	{
		name: "SSRC change is a discontinuity",
		steps: []step{
			{pkt: mkpkt(1, 0, true, keyPayload), want: testKey, keyfr: true},
			{pkt: func() *rtp.Packet { p := mkpkt(2, 3000, true, interPayload); p.SSRC++; return p }(), err: ErrNeedKeyframe},
		},
	},
}

func TestDecodeLoss(t *testing.T) {
	for _, ca := range lossCases {
		t.Run(ca.name, func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{})
			require.NoError(t, err)
			for i, s := range ca.steps {
				fr, _, err := d.Decode(s.pkt)
				if s.want != nil {
					require.NoError(t, err, "step %d", i)
					require.Equal(t, s.want, fr.Payload, "step %d", i)
					require.Equal(t, s.keyfr, fr.Keyframe, "step %d", i)
					continue
				}
				require.ErrorIs(t, err, s.err, "step %d", i)
				require.Nil(t, fr.Payload, "step %d", i)
			}
		})
	}
}

func TestSizeLimit(t *testing.T) {
	d, err := NewDecoder(DecoderConfig{MaxFrameSize: 100})
	require.NoError(t, err)
	_, _, err = d.Decode(mkpkt(1, 0, false, cat([]byte{0x10}, bigKey[:80])))
	require.ErrorIs(t, err, ErrMorePacketsNeeded)
	_, _, err = d.Decode(mkpkt(2, 0, true, cat([]byte{0x00}, bigKey[80:])))
	require.ErrorIs(t, err, ErrNeedKeyframe)
	require.ErrorIs(t, err, errTooLarge)
	_, err = NewDecoder(DecoderConfig{MaxFrameSize: -1})
	require.Error(t, err)
}

func TestEncodeErrors(t *testing.T) {
	_, err := NewEncoder(EncoderConfig{PayloadType: 8})
	require.Error(t, err)
	_, err = NewEncoder(EncoderConfig{PayloadType: 96, MTU: 10})
	require.Error(t, err)
	e, err := NewEncoder(EncoderConfig{PayloadType: 96})
	require.NoError(t, err)
	_, err = e.Encode(nil, 0)
	require.Error(t, err)
}

// TestDecodeAllocs checks the steady state: no allocation per packet.
func TestDecodeAllocs(t *testing.T) {
	d := primed(t, 1)
	e, err := NewEncoder(EncoderConfig{PayloadType: casePT, SSRC: caseSSRC, InitialSequenceNumber: 1, MTU: 100})
	require.NoError(t, err)
	var pkts []*rtp.Packet
	for i := 0; i < 200; i++ {
		f := testInter
		if i%10 == 0 {
			f = bigKey
		}
		ps, err := e.Encode(f, uint32(3000*(i+1)))
		require.NoError(t, err)
		pkts = append(pkts, ps...)
	}
	for _, p := range pkts[:50] {
		_, _, _ = d.Decode(p)
	}
	i := 50
	allocs := testing.AllocsPerRun(100, func() {
		_, _, err := d.Decode(pkts[i])
		if err != nil && !errors.Is(err, ErrMorePacketsNeeded) {
			t.Fatal(err)
		}
		i++
	})
	require.Zero(t, allocs)
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
		b = append(b, byte(len(raw)>>8), byte(len(raw)))
		b = append(b, raw...)
	}
	return b
}

// FuzzDecode feeds arbitrary packet sequences to the decoder: it must not
// panic, never return a payload with an error, and whatever it emits must be
// a plausible VP8 frame whose Keyframe flag matches its frame tag, the first
// one a key frame.
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
		fuzzDecode(t, b, DecoderConfig{MaxFrameSize: 1 << 16})
		fuzzDecode(t, b, DecoderConfig{MaxFrameSize: 1 << 16, Conceal: true})
	})
}

func fuzzDecode(t *testing.T, b []byte, cfg DecoderConfig) {
	t.Helper()
	d, err := NewDecoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := true
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
		if len(fr.Payload) < 3 || fr.Keyframe != IsKeyFrame(fr.Payload) || (fr.Payload[0]&1 == 0) != fr.Keyframe {
			t.Fatalf("bad frame: keyframe=%v % x", fr.Keyframe, fr.Payload[:min(10, len(fr.Payload))])
		}
		if first && !fr.Keyframe {
			t.Fatal("first frame is not a key frame")
		}
		first = false
	}
}

// FuzzDescriptor checks that Unmarshal never panics or reads past the
// payload, and that what it parses marshals back to the same bytes.
func FuzzDescriptor(f *testing.F) {
	for _, ca := range descCases {
		f.Add(ca.wire)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d Descriptor
		n, err := d.Unmarshal(b)
		if err != nil {
			return
		}
		if n < 1 || n > len(b) {
			t.Fatalf("size %d of %d", n, len(b))
		}
		if d.HasPictureID && !d.PictureID16Bit && d.PictureID > 0x7f {
			t.Fatal("7-bit PictureID too large")
		}
		got := d.AppendTo(nil)
		// the X bit set with no extension byte flags marshals shorter
		if b[0]&0x80 != 0 && b[1]&0xf0 == 0 {
			return
		}
		if string(got) != string(maskReserved(b[:n])) {
			t.Fatalf("round trip % x -> % x", b[:n], got)
		}
	})
}

// maskReserved clears the reserved bits (R in byte 0, RSV in the X byte
// and the TID/KEYIDX byte's unused bits) that AppendTo writes as zero.
func maskReserved(b []byte) []byte {
	out := append([]byte(nil), b...)
	out[0] &^= 0x48
	if out[0]&0x80 == 0 {
		return out
	}
	x := out[1]
	out[1] &= 0xf0
	i := 2
	if x&0x80 != 0 {
		i++
		if out[2]&0x80 != 0 {
			i++
		}
	}
	if x&0x40 != 0 {
		i++
	}
	if x&0x30 != 0 && i < len(out) {
		if x&0x20 == 0 {
			out[i] &= 0x1f
		}
		if x&0x10 == 0 {
			out[i] &= 0xe0
		}
	}
	return out
}

func TestErrorsDistinct(t *testing.T) {
	require.False(t, errors.Is(ErrNeedKeyframe, ErrMorePacketsNeeded))
}
