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

// spsWriter writes an SPS RBSP bit by bit, for cases no encoder at hand
// produces.
type spsWriter struct {
	b []byte
	n int // bits written
}

func (w *spsWriter) u(bits int, v uint32) {
	for i := bits - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		w.b[len(w.b)-1] |= byte(v>>uint(i)&1) << (7 - uint(w.n%8))
		w.n++
	}
}

func (w *spsWriter) ue(v uint32) {
	zeros := 0
	for x := v + 1; x > 1; x >>= 1 {
		zeros++
	}
	w.u(zeros, 0)
	w.u(zeros+1, v+1)
}

// TestParseSPSMonochromeCropping pins the crop unit of a 4:0:0 picture
// (ChromaArrayType 0: CropUnitX 1, CropUnitY 2−frame_mbs_only_flag, H.264
// §7.4.2.1.1), which mediacommon v2.9.3's SPS.Width gets wrong (320: unit 0,
// the horizontal crop ignored): why parseSPS computes the size itself.
func TestParseSPSMonochromeCropping(t *testing.T) {
	w := &spsWriter{}
	w.u(8, 0x67)
	w.u(8, 100) // profile_idc: High
	w.u(8, 0)   // constraint flags
	w.u(8, 30)  // level_idc
	w.ue(0)     // seq_parameter_set_id
	w.ue(0)     // chroma_format_idc: 4:0:0
	w.ue(0)     // bit_depth_luma_minus8
	w.ue(0)     // bit_depth_chroma_minus8
	w.u(1, 0)   // qpprime_y_zero_transform_bypass_flag
	w.u(1, 0)   // seq_scaling_matrix_present_flag
	w.ue(0)     // log2_max_frame_num_minus4
	w.ue(2)     // pic_order_cnt_type
	w.ue(1)     // max_num_ref_frames
	w.u(1, 0)   // gaps_in_frame_num_value_allowed_flag
	w.ue(19)    // pic_width_in_mbs_minus1: 320
	w.ue(14)    // pic_height_in_map_units_minus1: 240
	w.u(1, 1)   // frame_mbs_only_flag
	w.u(1, 1)   // direct_8x8_inference_flag
	w.u(1, 1)   // frame_cropping_flag
	w.ue(0)     // left
	w.ue(3)     // right
	w.ue(0)     // top
	w.ue(5)     // bottom
	w.u(1, 0)   // vui_parameters_present_flag
	w.u(1, 1)   // rbsp_stop_one_bit
	require.NotContains(t, string(w.b), "\x00\x00", "would need emulation prevention")

	info, err := parseSPS(w.b)
	require.NoError(t, err)
	assert.Equal(t, spsInfo{Width: 317, Height: 235}, info)
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

	// A packetization-mode 0 IDR: one slice per packet, more NAL units
	// than mediacommon's AVCC parser takes (50).
	many := append([]byte(nil), au...)
	for range 60 {
		many = append(many, 0, 0, 0, 2, 0x65, 0x88)
	}
	s, p, err = paramSets(many)
	require.NoError(t, err)
	assert.Equal(t, sps, s)
	assert.Equal(t, pps, p)

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
