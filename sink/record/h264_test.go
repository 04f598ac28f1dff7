package record

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
)

func clipSPSPPS(t testing.TB) (sps, pps []byte) {
	for _, n := range testmedia.SplitAnnexB(testmedia.ClipAnnexB()) {
		switch testmedia.NALType(n) {
		case 7:
			sps = n
		case 8:
			pps = n
		}
		if sps != nil && pps != nil {
			return sps, pps
		}
	}
	t.Fatal("clip has no SPS/PPS")
	return nil, nil
}

var spsCases = []struct {
	name string
	sps  []byte
	w, h int
	bad  bool
}{
	// x264 baseline 320x240 (the test clip's SPS is added in the test).
	{name: "1080p high with cropping", sps: []byte{0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58}, w: 1920, h: 1080},
	{name: "truncated", sps: []byte{0x67, 0x42, 0x00, 0x1e}, bad: true},
	{name: "not an SPS", sps: []byte{0x68, 0xce, 0x38, 0x80}, bad: true},
	{name: "empty", sps: nil, bad: true},
	// Fuzz finding: 1024 map units of fields, 96x32800.
	{name: "too tall", sps: []byte("'000\x7f0\x01\x00A"), bad: true},
}

func TestParseSPS(t *testing.T) {
	sps, _ := clipSPSPPS(t)
	cases := append(spsCases, struct {
		name string
		sps  []byte
		w, h int
		bad  bool
	}{name: "clip 320x240 baseline", sps: sps, w: 320, h: 240})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := parseSPS(c.sps)
			if c.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.w, info.Width)
			assert.Equal(t, c.h, info.Height)
		})
	}
}

func TestAVCDecoderConfig(t *testing.T) {
	sps, pps := clipSPSPPS(t)
	var au []byte
	for _, n := range [][]byte{sps, pps, {0x65, 0x88}} {
		au = binary.BigEndian.AppendUint32(au, uint32(len(n)))
		au = append(au, n...)
	}
	s, p, err := paramSets(au)
	require.NoError(t, err)
	rec, err := avcDecoderConfig(s, p)
	require.NoError(t, err)
	assert.Equal(t, []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1}, rec[:6])
	assert.Equal(t, len(sps), int(binary.BigEndian.Uint16(rec[6:])))
	assert.Equal(t, pps, rec[len(rec)-len(pps):])

	_, _, err = paramSets([]byte{0, 0, 0, 9, 0x65})
	require.Error(t, err)
	_, _, err = paramSets(au[8:]) // no SPS
	require.Error(t, err)
}

func TestVP8Size(t *testing.T) {
	w, h, err := vp8Size([]byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0xb0, 0x00, 0x90, 0x00})
	require.NoError(t, err)
	assert.Equal(t, 176, w)
	assert.Equal(t, 144, h)
	_, _, err = vp8Size([]byte{0x51, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0xb0, 0x00, 0x90, 0x00}) // inter frame
	require.Error(t, err)
}

func FuzzParseSPS(f *testing.F) {
	sps, _ := clipSPSPPS(f)
	f.Add(sps)
	for _, c := range spsCases {
		f.Add(c.sps)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := parseSPS(b)
		if err == nil && (info.Width <= 0 || info.Height <= 0 || info.Width > 16384 || info.Height > 32768) {
			t.Fatalf("implausible size %+v", info)
		}
		_, _, _ = paramSets(b)
		_, _, _ = vp8Size(b)
	})
}
