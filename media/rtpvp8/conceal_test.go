package rtpvp8

import (
	"testing"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// bigInter is an inter frame sent in three packets.
var bigInter = append([]byte{0x31, 0x02, 0x00}, seqBytes(297)...)

func interPart(k int) []byte {
	desc := byte(0x00)
	if k == 0 {
		desc = 0x10 // S=1, PID=0
	}
	return cat([]byte{desc}, bigInter[k*100:(k+1)*100])
}

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
		name: "a lost frame no longer stops the frames; NeedKeyframe until the key frame",
		steps: []concealStep{
			{step{pkt: mkpkt(1, 0, true, keyPayload), want: testKey, keyfr: true}, false},
			// 2 lost: a whole inter frame.
			{step{pkt: mkpkt(3, 6000, true, interPayload), want: testInter}, true},
			{step{pkt: mkpkt(4, 9000, true, interPayload), want: testInter}, true},
			{step{pkt: mkpkt(5, 12000, true, keyPayload), want: testKey, keyfr: true}, false},
		},
	},
	{
		name: "a frame missing its end keeps what came before the hole",
		steps: []concealStep{
			{step{pkt: mkpkt(1, 0, true, keyPayload), want: testKey, keyfr: true}, false},
			{step{pkt: mkpkt(2, 3000, false, interPart(0)), err: ErrMorePacketsNeeded}, false},
			// 3 lost.
			{step{pkt: mkpkt(4, 3000, true, interPart(2)), want: bigInter[:100]}, true},
			{step{pkt: mkpkt(5, 6000, true, interPayload), want: testInter}, true},
		},
		concealed: 1,
	},
	{
		name: "a frame missing its first packet is dropped without waiting",
		steps: []concealStep{
			{step{pkt: mkpkt(1, 0, true, keyPayload), want: testKey, keyfr: true}, false},
			// 2 lost.
			{step{pkt: mkpkt(3, 3000, false, interPart(1)), err: ErrMorePacketsNeeded}, false},
			{step{pkt: mkpkt(4, 3000, true, interPart(2)), err: ErrNeedKeyframe}, true},
			{step{pkt: mkpkt(5, 6000, true, interPayload), want: testInter}, true},
		},
	},
	{
		name: "before the first key frame there is nothing to conceal from",
		steps: []concealStep{
			{step{pkt: mkpkt(1, 0, true, interPayload), err: ErrNeedKeyframe}, true},
			{step{pkt: mkpkt(2, 3000, true, interPayload), err: ErrNeedKeyframe}, true},
			{step{pkt: mkpkt(3, 6000, true, keyPayload), want: testKey, keyfr: true}, false},
		},
	},
	{
		name: "a new SSRC waits for its key frame",
		steps: []concealStep{
			{step{pkt: mkpkt(1, 0, true, keyPayload), want: testKey, keyfr: true}, false},
			{step{pkt: func() *rtp.Packet { p := mkpkt(2, 3000, true, interPayload); p.SSRC++; return p }(), err: ErrNeedKeyframe}, true},
		},
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
					require.Equal(t, s.want, fr.Payload, "step %d", i)
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

// Without Conceal the same sequences freeze until a key frame.
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
