package rtph264

import (
	"testing"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// bigP is a non-IDR slice that needs three FU-A fragments.
var bigP = append([]byte{0x41, 0x9a, 0x80}, seqBytes(2500)...)

// fuP returns FU-A fragment k (0, 1, 2) of bigP; NRI 2, type 1.
func fuP(k int) []byte {
	hdr := []byte{0x01, 0x01, 0x41}[k] | []byte{0x80, 0, 0}[k]
	bounds := []int{1, 1187, 2373, len(bigP)}
	return cat([]byte{0x5c, hdr}, bigP[bounds[k]:bounds[k+1]])
}

func idrPkt(seq uint16, ts uint32) *rtp.Packet {
	return mkpkt(seq, ts, true, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS, u16(len(testIDR)), testIDR))
}

// concealStep is a step of a Conceal case, with the decoder state after it.
type concealStep struct {
	step
	needKey bool
}

// concealCases are lossy packet sequences decoded with Conceal set.
var concealCases = []struct {
	name      string
	steps     []concealStep
	concealed uint64
}{
	{
		name: "a lost packet no longer stops the frames; NeedKeyframe until the IDR",
		steps: []concealStep{
			{step{pkt: idrPkt(1, 0), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true}, false},
			{step{pkt: mkpkt(2, 3000, true, testP), want: [][]byte{testP}}, false},
			// 3 lost: a whole P-frame.
			{step{pkt: mkpkt(4, 9000, true, testSlice), want: [][]byte{testSlice}}, true},
			{step{pkt: mkpkt(5, 12000, true, testP), want: [][]byte{testP}}, true},
			{step{pkt: idrPkt(6, 15000), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true}, false},
		},
		concealed: 1,
	},
	{
		name: "a slice missing a FU-A fragment is left out, the whole one kept",
		steps: []concealStep{
			{step{pkt: idrPkt(1, 0), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true}, false},
			{step{pkt: mkpkt(2, 3000, false, testSlice), err: ErrMorePacketsNeeded}, false},
			{step{pkt: mkpkt(3, 3000, false, fuP(0)), err: ErrMorePacketsNeeded}, false},
			// 4 (the middle fragment) lost.
			{step{pkt: mkpkt(5, 3000, true, fuP(2)), want: [][]byte{testSlice}}, true},
			{step{pkt: mkpkt(6, 6000, true, testP), want: [][]byte{testP}}, true},
		},
		concealed: 1,
	},
	{
		name: "the end of a FU-A lost, the next picture completes the damaged one",
		steps: []concealStep{
			{step{pkt: idrPkt(1, 0), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true}, false},
			{step{pkt: mkpkt(2, 3000, false, testSlice), err: ErrMorePacketsNeeded}, false},
			{step{pkt: mkpkt(3, 3000, false, fuP(0)), err: ErrMorePacketsNeeded}, false},
			{step{pkt: mkpkt(4, 3000, false, fuP(1)), err: ErrMorePacketsNeeded}, false},
			// 5 (the end, with the marker) lost.
			{step{pkt: mkpkt(6, 6000, false, testP), want: [][]byte{testSlice}}, true},
			{step{pkt: mkpkt(7, 9000, true, bigP[:40]), want: [][]byte{testP}}, true},
		},
		concealed: 2, // the hole may have been at the start of the second one too

	},
	{
		name: "nothing whole left: dropped, without waiting for an IDR",
		steps: []concealStep{
			{step{pkt: idrPkt(1, 0), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true}, false},
			{step{pkt: mkpkt(2, 3000, false, fuP(0)), err: ErrMorePacketsNeeded}, false},
			// 3 lost.
			{step{pkt: mkpkt(4, 3000, true, fuP(2)), err: ErrNeedKeyframe}, true},
			{step{pkt: mkpkt(5, 6000, true, testP), want: [][]byte{testP}}, true},
		},
	},
	{
		name: "a fragment whose start was lost is skipped quietly",
		steps: []concealStep{
			{step{pkt: idrPkt(1, 0), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true}, false},
			// 2 (FU-A start) lost.
			{step{pkt: mkpkt(3, 3000, false, fuP(1)), err: ErrMorePacketsNeeded}, false},
			{step{pkt: mkpkt(4, 3000, false, fuP(2)), err: ErrMorePacketsNeeded}, false},
			{step{pkt: mkpkt(5, 3000, true, testSlice), want: [][]byte{testSlice}}, true},
		},
		concealed: 1,
	},
	{
		name: "before the first IDR there is nothing to conceal from",
		steps: []concealStep{
			{step{pkt: mkpkt(1, 0, true, testP), err: ErrNeedKeyframe}, true},
			{step{pkt: mkpkt(3, 3000, true, testP), err: ErrNeedKeyframe}, true},
			{step{pkt: idrPkt(4, 6000), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true}, false},
			{step{pkt: mkpkt(5, 9000, true, testP), want: [][]byte{testP}}, false},
		},
	},
	{
		name: "a new SSRC waits for its IDR",
		steps: []concealStep{
			{step{pkt: idrPkt(1, 0), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true}, false},
			{step{pkt: func() *rtp.Packet { p := mkpkt(2, 3000, true, testP); p.SSRC++; return p }(), err: ErrNeedKeyframe}, true},
			{step{pkt: func() *rtp.Packet { p := mkpkt(3, 6000, true, testP); p.SSRC++; return p }(), err: ErrNeedKeyframe}, true},
		},
	},
	{
		name: "a damaged IDR is emitted but still asks for a clean one",
		steps: []concealStep{
			{step{pkt: idrPkt(1, 0), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true}, false},
			// 2 lost: the STAP-A with new parameter sets; the known ones go in front.
			{step{pkt: mkpkt(3, 3000, true, testIDR), want: [][]byte{testSPS, testPPS, testIDR}, keyfr: true}, true},
			{step{pkt: mkpkt(4, 6000, true, testP), want: [][]byte{testP}}, true},
		},
		concealed: 1,
	},
}

func TestDecodeConceal(t *testing.T) {
	for _, ca := range concealCases {
		t.Run(ca.name, func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{Conceal: true})
			require.NoError(t, err)
			for i, s := range ca.steps {
				fr, _, err := d.Decode(s.pkt)
				if s.want != nil {
					require.NoError(t, err, "step %d", i)
					require.Equal(t, JoinAVC(s.want), fr.Payload, "step %d", i)
					require.Equal(t, s.keyfr, fr.Keyframe, "step %d", i)
				} else {
					require.ErrorIs(t, err, s.err, "step %d", i)
				}
				require.Equal(t, s.needKey, d.NeedKeyframe(), "step %d: NeedKeyframe", i)
			}
			require.Equal(t, ca.concealed, d.Stats().Concealed)
		})
	}
}

// Without Conceal the same sequences freeze: nothing after the first loss
// is emitted until an IDR.
func TestDecodeConcealOffFreezes(t *testing.T) {
	for _, ca := range concealCases {
		t.Run(ca.name, func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{})
			require.NoError(t, err)
			lost := false
			for i, s := range ca.steps {
				fr, _, err := d.Decode(s.pkt)
				if i > 0 && s.pkt.SequenceNumber != ca.steps[i-1].pkt.SequenceNumber+1 || s.pkt.SSRC != caseSSRC {
					lost = true
				}
				if err == nil {
					if fr.Keyframe {
						lost = false
					}
					require.False(t, lost, "step %d: emitted during a freeze", i)
				}
			}
			require.Zero(t, d.Stats().Concealed)
		})
	}
}
