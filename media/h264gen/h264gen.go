// Package h264gen makes an H.264 video track without a video encoder: a
// solid-colour picture coded by hand, for calls that have audio but no video
// (RTMP platforms want a video track with a keyframe at least every 2 s).
//
// The IDR picture is one I_PCM macroblock carrying the colour followed by
// Intra_16x16 DC-predicted macroblocks with no residual, which copy it across
// the picture; the frames between IDRs are P slices of skipped macroblocks.
// An IDR costs a few hundred bytes plus one bit per macroblock, a P frame a
// handful of bytes. The stream is Constrained Baseline, CAVLC, one slice per
// picture, with SPS and PPS in front of every IDR. Config.KeyframeSize and
// FrameSize pad access units with filler data to the sizes a real encoder
// produces, for tests of how a stream survives packet loss.
//
// Any frame can be made an IDR (ForceKeyframe), as a phone's encoder does
// on a keyframe request; Next emits frames one at a time for a live source.
//
// Specification: ITU-T H.264 (08/2021) §7.3 (syntax), §8.3.3 and §8.3.4
// (Intra_16x16 and chroma DC prediction), §7.3.2.7 (filler data), §9.2.1
// (coeff_token, nC), Table A-1 (levels).
package h264gen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"image/color"
	"time"

	"github.com/sipstream/sipstream/media"
)

// ErrConfig is wrapped by the errors New returns for an invalid Config.
var ErrConfig = errors.New("h264gen: invalid config")

// Config describes the generated track.
type Config struct {
	// Width and Height of the picture in pixels, even, 16..4096. Zero
	// means 640×360.
	Width, Height int
	// FrameRate in frames per second, 1..60. Zero means 10.
	FrameRate int
	// KeyframeInterval is the longest time between IDR pictures, at most
	// MaxKeyframeInterval. Tracks for YouTube, Facebook and Twitch want 2 s
	// or less; longer intervals model SIP phones (often 10 s or more).
	// Zero means 1 s.
	KeyframeInterval time.Duration
	// Color of the picture. Nil means black.
	Color color.Color
	// KeyframeSize, when larger than an IDR access unit codes to, pads each
	// one with a filler data NAL unit (nal_unit_type 12, §7.3.2.7) so that
	// its Payload is exactly that many bytes: a stream whose packets are as
	// many and as large as a real encoder's (a phone's 640×360 IDR is about
	// 12 KB), which decoders skip. At most MaxFrameSize. Zero means no
	// padding.
	KeyframeSize int
	// FrameSize is KeyframeSize for the P frames (a phone's are about
	// 3.7 KB). Zero means no padding.
	FrameSize int
}

// MaxKeyframeInterval bounds Config.KeyframeInterval.
const MaxKeyframeInterval = 10 * time.Minute

// MaxFrameSize bounds Config.KeyframeSize and Config.FrameSize.
const MaxFrameSize = 1 << 20

// Generator produces the frames of one track. It is not safe for concurrent
// use.
type Generator struct {
	cfg        Config
	mbW, mbH   int
	y, cb, cr  byte
	sps, pps   []byte
	next       time.Duration // PTS of frame k
	k          int64         // index of the next frame on the grid
	started    bool
	force      bool
	frameNum   uint32
	idrPicID   uint32
	gopFrames  int
	sinceIDR   int
	log2MaxFrm uint
	frame      media.Frame
}

// New returns a Generator for cfg.
func New(cfg Config) (*Generator, error) {
	if cfg.Width == 0 && cfg.Height == 0 {
		cfg.Width, cfg.Height = 640, 360
	}
	if cfg.FrameRate == 0 {
		cfg.FrameRate = 10
	}
	if cfg.KeyframeInterval == 0 {
		cfg.KeyframeInterval = time.Second
	}
	switch {
	case cfg.Width < 16 || cfg.Width > 4096 || cfg.Width%2 != 0:
		return nil, fmt.Errorf("%w: width %d", ErrConfig, cfg.Width)
	case cfg.Height < 16 || cfg.Height > 4096 || cfg.Height%2 != 0:
		return nil, fmt.Errorf("%w: height %d", ErrConfig, cfg.Height)
	case cfg.FrameRate < 1 || cfg.FrameRate > 60:
		return nil, fmt.Errorf("%w: frame rate %d", ErrConfig, cfg.FrameRate)
	case cfg.KeyframeInterval < 0 || cfg.KeyframeInterval > MaxKeyframeInterval:
		return nil, fmt.Errorf("%w: keyframe interval %v (at most %v)", ErrConfig, cfg.KeyframeInterval, MaxKeyframeInterval)
	case cfg.KeyframeSize < 0 || cfg.KeyframeSize > MaxFrameSize:
		return nil, fmt.Errorf("%w: keyframe size %d", ErrConfig, cfg.KeyframeSize)
	case cfg.FrameSize < 0 || cfg.FrameSize > MaxFrameSize:
		return nil, fmt.Errorf("%w: frame size %d", ErrConfig, cfg.FrameSize)
	}
	g := &Generator{cfg: cfg, mbW: (cfg.Width + 15) / 16, mbH: (cfg.Height + 15) / 16, log2MaxFrm: 8}
	g.y, g.cb, g.cr = 16, 128, 128
	if cfg.Color != nil {
		g.y, g.cb, g.cr = bt601(cfg.Color)
	}
	// Frames per GOP: the interval rounded down to whole frames, at least 1.
	g.gopFrames = max(1, int(cfg.KeyframeInterval*time.Duration(cfg.FrameRate)/time.Second))
	g.sps = nal(0x67, g.spsRBSP())
	g.pps = nal(0x68, g.ppsRBSP())
	g.frame = media.Frame{Codec: media.CodecH264, ClockRate: 90000}
	return g, nil
}

// bt601 converts to limited-range BT.601 YCbCr, the default colour space
// decoders assume without VUI colour description.
func bt601(c color.Color) (y, cb, cr byte) {
	r16, g16, b16, _ := c.RGBA()
	r, g, b := float64(r16)/65535, float64(g16)/65535, float64(b16)/65535
	yf := 16 + 65.481*r + 128.553*g + 24.966*b
	cbf := 128 - 37.797*r - 74.203*g + 112.0*b
	crf := 128 + 112.0*r - 93.786*g - 18.214*b
	clamp := func(v float64) byte { return byte(max(1, min(254, v+0.5))) }
	return clamp(yf), clamp(cbf), clamp(crf)
}

// SPS returns the sequence parameter set NAL unit (without start code or
// length prefix).
func (g *Generator) SPS() []byte { return append([]byte(nil), g.sps...) }

// PPS returns the picture parameter set NAL unit.
func (g *Generator) PPS() []byte { return append([]byte(nil), g.pps...) }

// ForceKeyframe makes the next frame an IDR picture (a new viewer or RTMP
// connection needs one).
func (g *Generator) ForceKeyframe() { g.force = true }

// FrameDuration is the time between frames.
func (g *Generator) FrameDuration() time.Duration {
	return time.Second / time.Duration(g.cfg.FrameRate)
}

// Until emits the frames due before until: frame k has PTS k/FrameRate on
// the timeline (k from 0). The Frame passed to emit is reused after emit
// returns; its Payload is newly allocated and may be retained. Payloads are
// in AVC format (4-byte lengths); keyframes carry SPS and PPS first.
func (g *Generator) Until(until time.Duration, emit func(*media.Frame)) {
	for g.next < until {
		g.Next(emit)
	}
}

// Next emits the next frame whatever its time, for a caller that paces
// frames itself (a live source on a ticker). Its PTS follows the same grid
// as Until's; emit's argument is as for Until.
func (g *Generator) Next(emit func(*media.Frame)) {
	g.emitFrame(g.next, emit)
	g.sinceIDR++
	g.k++
	g.next = g.pts(g.k)
}

// pts is frame k's time: k/FrameRate rounded down to the nanosecond. (The
// index is kept rather than recomputed from the rounded time, which at
// rates that do not divide 1e9, such as 30 fps, gave the same frame back.)
func (g *Generator) pts(k int64) time.Duration {
	return time.Duration(k * int64(time.Second) / int64(g.cfg.FrameRate))
}

// Skip moves the frame grid forward so that the next frame emitted is the
// first due at or after t, without emitting the ones before (when the
// generated track starts late in a call). The next frame is an IDR.
func (g *Generator) Skip(t time.Duration) {
	if t <= g.next {
		return
	}
	k := max(g.k, int64(t)*int64(g.cfg.FrameRate)/int64(time.Second))
	for g.pts(k) < t {
		k++
	}
	g.k, g.next = k, g.pts(k)
	g.force = true
}

func (g *Generator) emitFrame(pts time.Duration, emit func(*media.Frame)) {
	idr := !g.started || g.force || g.sinceIDR >= g.gopFrames
	var payload []byte
	if idr {
		g.started, g.force, g.sinceIDR = true, false, 0
		g.frameNum = 0
		slice := nal(0x65, g.idrSliceRBSP())
		g.idrPicID = (g.idrPicID + 1) & 0xffff
		payload = pad(appendAVC(nil, g.sps, g.pps, slice), g.cfg.KeyframeSize)
	} else {
		g.frameNum = (g.frameNum + 1) & (1<<g.log2MaxFrm - 1)
		payload = pad(appendAVC(nil, nal(0x41, g.pSliceRBSP())), g.cfg.FrameSize)
	}
	g.frame.PTS, g.frame.DTS, g.frame.Keyframe, g.frame.Payload = pts, pts, idr, payload
	emit(&g.frame)
}

// fillerOverhead is what a filler data NAL unit costs besides its 0xFF
// bytes: the 4-byte length, the header byte, the trailing-bits byte.
const fillerOverhead = 6

// pad appends a filler data NAL unit (§7.3.2.7: 0xFF bytes then
// rbsp_trailing_bits) after the picture's NAL units so that the access unit
// is size bytes, when it is at least fillerOverhead bytes short of it.
// Filler data may follow the primary coded picture (§7.4.1.2.3).
func pad(au []byte, size int) []byte {
	n := size - len(au) - fillerOverhead
	if n < 0 {
		return au
	}
	rbsp := make([]byte, n+1)
	for i := range n {
		rbsp[i] = 0xFF
	}
	rbsp[n] = 0x80
	return appendAVC(au, nal(0x0C, rbsp))
}

func appendAVC(dst []byte, nalus ...[]byte) []byte {
	for _, n := range nalus {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(n)))
		dst = append(dst, n...)
	}
	return dst
}

// level picks the lowest level of Table A-1 whose frame size and
// macroblock rate limits fit.
func (g *Generator) level() uint32 {
	fs := g.mbW * g.mbH
	mbps := fs * g.cfg.FrameRate
	levels := []struct {
		idc         uint32
		maxFS, maxR int
	}{
		{10, 99, 1485}, {11, 396, 3000}, {12, 396, 6000}, {13, 396, 11880}, {20, 396, 11880},
		{21, 792, 19800}, {22, 1620, 20250}, {30, 1620, 40500}, {31, 3600, 108000},
		{32, 5120, 216000}, {40, 8192, 245760}, {42, 8704, 522240}, {50, 22080, 589824},
		{51, 36864, 983040},
	}
	for _, l := range levels {
		// MaxFS also bounds each dimension: at most sqrt(8·MaxFS) MBs.
		if fs <= l.maxFS && mbps <= l.maxR && g.mbW*g.mbW <= 8*l.maxFS && g.mbH*g.mbH <= 8*l.maxFS {
			return l.idc
		}
	}
	return 52
}

// spsRBSP writes seq_parameter_set_data (§7.3.2.1.1) with VUI timing.
func (g *Generator) spsRBSP() []byte {
	var w bitWriter
	w.u(8, 66)   // profile_idc: Baseline
	w.u(8, 0xC0) // constraint_set0 and set1 (Constrained Baseline)
	w.u(8, g.level())
	w.ue(0)                        // seq_parameter_set_id
	w.ue(uint32(g.log2MaxFrm - 4)) // log2_max_frame_num_minus4
	w.ue(2)                        // pic_order_cnt_type 2: output order = decoding order
	w.ue(1)                        // max_num_ref_frames
	w.u(1, 0)                      // gaps_in_frame_num_value_allowed_flag
	w.ue(uint32(g.mbW - 1))        // pic_width_in_mbs_minus1
	w.ue(uint32(g.mbH - 1))        // pic_height_in_map_units_minus1
	w.u(1, 1)                      // frame_mbs_only_flag
	w.u(1, 1)                      // direct_8x8_inference_flag
	cropR := (g.mbW*16 - g.cfg.Width) / 2
	cropB := (g.mbH*16 - g.cfg.Height) / 2
	if cropR != 0 || cropB != 0 {
		w.u(1, 1) // frame_cropping_flag
		w.ue(0)
		w.ue(uint32(cropR))
		w.ue(0)
		w.ue(uint32(cropB))
	} else {
		w.u(1, 0)
	}
	w.u(1, 1) // vui_parameters_present_flag (Annex E.1.1)
	w.u(1, 0) // aspect_ratio_info_present_flag
	w.u(1, 0) // overscan_info_present_flag
	w.u(1, 0) // video_signal_type_present_flag
	w.u(1, 0) // chroma_loc_info_present_flag
	w.u(1, 1) // timing_info_present_flag
	w.u(32, 1)
	w.u(32, uint32(2*g.cfg.FrameRate)) // time_scale: two ticks per frame
	w.u(1, 1)                          // fixed_frame_rate_flag
	w.u(1, 0)                          // nal_hrd_parameters_present_flag
	w.u(1, 0)                          // vcl_hrd_parameters_present_flag
	w.u(1, 0)                          // pic_struct_present_flag
	w.u(1, 1)                          // bitstream_restriction_flag
	w.u(1, 1)                          // motion_vectors_over_pic_boundaries_flag
	w.ue(0)                            // max_bytes_per_pic_denom
	w.ue(0)                            // max_bits_per_mb_denom
	w.ue(16)                           // log2_max_mv_length_horizontal
	w.ue(16)                           // log2_max_mv_length_vertical
	w.ue(0)                            // max_num_reorder_frames: output at once
	w.ue(1)                            // max_dec_frame_buffering
	return w.trailing()
}

// ppsRBSP writes pic_parameter_set_rbsp (§7.3.2.2).
func (g *Generator) ppsRBSP() []byte {
	var w bitWriter
	w.ue(0)   // pic_parameter_set_id
	w.ue(0)   // seq_parameter_set_id
	w.u(1, 0) // entropy_coding_mode_flag: CAVLC
	w.u(1, 0) // bottom_field_pic_order_in_frame_present_flag
	w.ue(0)   // num_slice_groups_minus1
	w.ue(0)   // num_ref_idx_l0_default_active_minus1
	w.ue(0)   // num_ref_idx_l1_default_active_minus1
	w.u(1, 0) // weighted_pred_flag
	w.u(2, 0) // weighted_bipred_idc
	w.se(0)   // pic_init_qp_minus26
	w.se(0)   // pic_init_qs_minus26
	w.se(0)   // chroma_qp_index_offset
	w.u(1, 0) // deblocking_filter_control_present_flag
	w.u(1, 0) // constrained_intra_pred_flag
	w.u(1, 0) // redundant_pic_cnt_present_flag
	return w.trailing()
}

// idrSliceRBSP writes an IDR slice: macroblock 0 is I_PCM in the colour,
// every other one Intra_16x16 with DC prediction, no residual, so it repeats
// its neighbours (§8.3.3: DC of the left column and/or the row above).
func (g *Generator) idrSliceRBSP() []byte {
	var w bitWriter
	w.ue(0)              // first_mb_in_slice
	w.ue(7)              // slice_type: I (all slices)
	w.ue(0)              // pic_parameter_set_id
	w.u(g.log2MaxFrm, 0) // frame_num
	w.ue(g.idrPicID)     // idr_pic_id
	w.u(1, 0)            // no_output_of_prior_pics_flag
	w.u(1, 0)            // long_term_reference_flag
	w.se(0)              // slice_qp_delta
	for mb := 0; mb < g.mbW*g.mbH; mb++ {
		x, y := mb%g.mbW, mb/g.mbW
		if mb == 0 {
			w.ue(25) // mb_type I_PCM
			w.alignZero()
			for i := 0; i < 256; i++ {
				w.u(8, uint32(g.y))
			}
			for i := 0; i < 64; i++ {
				w.u(8, uint32(g.cb))
			}
			for i := 0; i < 64; i++ {
				w.u(8, uint32(g.cr))
			}
			continue
		}
		w.ue(3) // mb_type I_16x16_2_0_0: prediction mode 2 (DC), no coded blocks
		w.ue(0) // intra_chroma_pred_mode: DC
		w.se(0) // mb_qp_delta
		// Intra16x16DCLevel with no coefficients: coeff_token for
		// TotalCoeff 0, TrailingOnes 0. nC (§9.2.1) averages the
		// neighbouring blocks' coefficient counts, an I_PCM neighbour
		// counting 16: only the macroblocks right of and below
		// macroblock 0 see it, alone (the other neighbour is missing).
		if (x == 1 && y == 0) || (x == 0 && y == 1) {
			w.u(6, 0b000011) // 8 ≤ nC: fixed-length code
		} else {
			w.u(1, 1) // 0 ≤ nC < 2
		}
	}
	return w.trailing()
}

// pSliceRBSP writes a P slice in which every macroblock is skipped (P_Skip
// with zero motion copies the reference picture).
func (g *Generator) pSliceRBSP() []byte {
	var w bitWriter
	w.ue(0)                       // first_mb_in_slice
	w.ue(5)                       // slice_type: P (all slices)
	w.ue(0)                       // pic_parameter_set_id
	w.u(g.log2MaxFrm, g.frameNum) // frame_num
	w.u(1, 0)                     // num_ref_idx_active_override_flag
	w.u(1, 0)                     // ref_pic_list_modification_flag_l0
	w.u(1, 0)                     // adaptive_ref_pic_marking_mode_flag
	w.se(0)                       // slice_qp_delta
	w.ue(uint32(g.mbW * g.mbH))   // mb_skip_run: all of them
	return w.trailing()
}
