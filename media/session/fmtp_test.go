package session

import (
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/stretchr/testify/require"
)

func TestSpropParameterSets(t *testing.T) {
	for _, tc := range []struct {
		fmtp     string
		sps, pps []byte
	}{
		{"profile-level-id=42e01f;packetization-mode=1;sprop-parameter-sets=Z0LAHtkBQHsg,aMuDyyA=", []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x01, 0x40, 0x7b, 0x20}, []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}},
		{"packetization-mode=1; sprop-parameter-sets=aMuDyyA", nil, []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}},
		{"sprop-parameter-sets=!!!,", nil, nil},
		{"", nil, nil},
	} {
		sps, pps := spropParameterSets(tc.fmtp)
		require.Equal(t, tc.sps, sps, tc.fmtp)
		require.Equal(t, tc.pps, pps, tc.fmtp)
	}
}

func FuzzSpropParameterSets(f *testing.F) {
	f.Add("profile-level-id=42e01f;packetization-mode=1;sprop-parameter-sets=Z0LAHtkBQHsg,aMuDyyA=")
	f.Fuzz(func(t *testing.T, s string) {
		sps, pps := spropParameterSets(s)
		if sps != nil && h264.NALUType(sps[0]&0x1f) != h264.NALUTypeSPS || pps != nil && h264.NALUType(pps[0]&0x1f) != h264.NALUTypePPS {
			t.Fatal("wrong NAL unit type")
		}
	})
}
