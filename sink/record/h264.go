package record

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// H.264 NAL unit types used here. Specification: ITU-T H.264 Table 7-1.
const (
	nalSPS = 7
	nalPPS = 8
)

var errBadAVC = errors.New("record: malformed AVC access unit")

// paramSets returns the first SPS and PPS NAL units of an AVC (4-byte
// length-prefixed) access unit. They alias au.
func paramSets(au []byte) (sps, pps []byte, err error) {
	for len(au) > 0 {
		if len(au) < 4 {
			return nil, nil, errBadAVC
		}
		n := binary.BigEndian.Uint32(au)
		au = au[4:]
		if n == 0 || uint64(n) > uint64(len(au)) {
			return nil, nil, errBadAVC
		}
		nalu := au[:n]
		au = au[n:]
		switch nalu[0] & 0x1f {
		case nalSPS:
			if sps == nil {
				sps = nalu
			}
		case nalPPS:
			if pps == nil {
				pps = nalu
			}
		}
	}
	if sps == nil || pps == nil {
		return nil, nil, errors.New("record: keyframe without SPS and PPS")
	}
	return sps, pps, nil
}

// avcDecoderConfig builds an AVCDecoderConfigurationRecord (4-byte NAL
// lengths, one SPS, one PPS): Matroska's CodecPrivate for V_MPEG4/ISO/AVC and
// the body of FLV's AVC sequence header.
// Specification: ISO/IEC 14496-15 §5.3.3.1.
func avcDecoderConfig(sps, pps []byte) ([]byte, error) {
	if len(sps) < 4 || len(pps) < 1 || len(sps) > 0xffff || len(pps) > 0xffff {
		return nil, errors.New("record: bad SPS/PPS size")
	}
	b := make([]byte, 0, 11+len(sps)+len(pps))
	b = append(b, 1, sps[1], sps[2], sps[3], 0xff, 0xe1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	b = append(b, pps...)
	return b, nil
}

// bitReader reads an RBSP (emulation prevention bytes already removed).
type bitReader struct {
	b   []byte
	pos int // in bits
}

var errShortSPS = errors.New("record: SPS truncated")

func (r *bitReader) bit() (uint32, error) {
	if r.pos >= len(r.b)*8 {
		return 0, errShortSPS
	}
	v := uint32(r.b[r.pos/8]>>(7-uint(r.pos%8))) & 1
	r.pos++
	return v, nil
}

func (r *bitReader) bits(n int) (uint32, error) {
	var v uint32
	for i := 0; i < n; i++ {
		b, err := r.bit()
		if err != nil {
			return 0, err
		}
		v = v<<1 | b
	}
	return v, nil
}

// ue reads an unsigned Exp-Golomb code (H.264 §9.1), limited to 31 leading
// zeros.
func (r *bitReader) ue() (uint32, error) {
	zeros := 0
	for {
		b, err := r.bit()
		if err != nil {
			return 0, err
		}
		if b == 1 {
			break
		}
		zeros++
		if zeros > 31 {
			return 0, errors.New("record: bad Exp-Golomb code in SPS")
		}
	}
	v, err := r.bits(zeros)
	if err != nil {
		return 0, err
	}
	return uint32((uint64(1)<<zeros)-1) + v, nil
}

func (r *bitReader) se() (int32, error) {
	v, err := r.ue()
	if err != nil {
		return 0, err
	}
	if v&1 == 1 {
		return int32((v + 1) / 2), nil
	}
	return -int32(v / 2), nil
}

// unescapeRBSP removes emulation prevention bytes (00 00 03 → 00 00).
func unescapeRBSP(nalu []byte) []byte {
	out := make([]byte, 0, len(nalu))
	zeros := 0
	for _, c := range nalu {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}

// spsInfo is what the recorders need from a sequence parameter set.
type spsInfo struct {
	Width, Height int
}

// parseSPS reads the picture size from an SPS NAL unit (header byte
// included). Specification: ITU-T H.264 §7.3.2.1.1.
func parseSPS(nalu []byte) (spsInfo, error) {
	if len(nalu) < 4 || nalu[0]&0x1f != nalSPS {
		return spsInfo{}, errors.New("record: not an SPS")
	}
	r := &bitReader{b: unescapeRBSP(nalu[1:])}
	profile, _ := r.bits(8)
	_, _ = r.bits(16)                 // constraint flags, level_idc
	if _, err := r.ue(); err != nil { // seq_parameter_set_id
		return spsInfo{}, err
	}
	chromaFormat := uint32(1)
	separateColour := uint32(0)
	switch profile {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		var err error
		if chromaFormat, err = r.ue(); err != nil {
			return spsInfo{}, err
		}
		if chromaFormat > 3 {
			return spsInfo{}, fmt.Errorf("record: bad chroma_format_idc %d", chromaFormat)
		}
		if chromaFormat == 3 {
			if separateColour, err = r.bit(); err != nil {
				return spsInfo{}, err
			}
		}
		for i := 0; i < 2; i++ { // bit_depth_luma/chroma_minus8
			if _, err := r.ue(); err != nil {
				return spsInfo{}, err
			}
		}
		if _, err := r.bit(); err != nil { // qpprime_y_zero_transform_bypass_flag
			return spsInfo{}, err
		}
		present, err := r.bit() // seq_scaling_matrix_present_flag
		if err != nil {
			return spsInfo{}, err
		}
		if present == 1 {
			lists := 8
			if chromaFormat == 3 {
				lists = 12
			}
			for i := 0; i < lists; i++ {
				p, err := r.bit()
				if err != nil {
					return spsInfo{}, err
				}
				if p == 1 {
					size := 16
					if i >= 6 {
						size = 64
					}
					if err := skipScalingList(r, size); err != nil {
						return spsInfo{}, err
					}
				}
			}
		}
	}
	if _, err := r.ue(); err != nil { // log2_max_frame_num_minus4
		return spsInfo{}, err
	}
	pocType, err := r.ue()
	if err != nil {
		return spsInfo{}, err
	}
	switch pocType {
	case 0:
		if _, err := r.ue(); err != nil {
			return spsInfo{}, err
		}
	case 1:
		if _, err := r.bit(); err != nil {
			return spsInfo{}, err
		}
		for i := 0; i < 2; i++ {
			if _, err := r.se(); err != nil {
				return spsInfo{}, err
			}
		}
		n, err := r.ue()
		if err != nil {
			return spsInfo{}, err
		}
		if n > 255 {
			return spsInfo{}, errors.New("record: bad num_ref_frames_in_pic_order_cnt_cycle")
		}
		for i := uint32(0); i < n; i++ {
			if _, err := r.se(); err != nil {
				return spsInfo{}, err
			}
		}
	case 2:
	default:
		return spsInfo{}, fmt.Errorf("record: bad pic_order_cnt_type %d", pocType)
	}
	if _, err := r.ue(); err != nil { // max_num_ref_frames
		return spsInfo{}, err
	}
	if _, err := r.bit(); err != nil { // gaps_in_frame_num_value_allowed_flag
		return spsInfo{}, err
	}
	wMbs, err := r.ue()
	if err != nil {
		return spsInfo{}, err
	}
	hMaps, err := r.ue()
	if err != nil {
		return spsInfo{}, err
	}
	frameMbsOnly, err := r.bit()
	if err != nil {
		return spsInfo{}, err
	}
	if frameMbsOnly == 0 {
		if _, err := r.bit(); err != nil { // mb_adaptive_frame_field_flag
			return spsInfo{}, err
		}
	}
	if _, err := r.bit(); err != nil { // direct_8x8_inference_flag
		return spsInfo{}, err
	}
	if wMbs > 1024 || hMaps > 1024 {
		return spsInfo{}, errors.New("record: SPS picture size out of range")
	}
	width := int(wMbs+1) * 16
	height := int(hMaps+1) * 16 * int(2-frameMbsOnly)
	cropping, err := r.bit()
	if err != nil {
		return spsInfo{}, err
	}
	if cropping == 1 {
		var c [4]uint32 // left, right, top, bottom
		for i := range c {
			if c[i], err = r.ue(); err != nil {
				return spsInfo{}, err
			}
		}
		cropX, cropY := 1, int(2-frameMbsOnly)
		if chromaFormat != 0 && separateColour == 0 {
			subW, subH := 2, 2
			if chromaFormat == 2 {
				subH = 1
			} else if chromaFormat == 3 {
				subW, subH = 1, 1
			}
			cropX, cropY = subW, subH*int(2-frameMbsOnly)
		}
		// In 64 bits: each offset is a 32-bit ue(v), their sum may wrap.
		cropW := (uint64(c[0]) + uint64(c[1])) * uint64(cropX)
		cropH := (uint64(c[2]) + uint64(c[3])) * uint64(cropY)
		if cropW >= uint64(width) || cropH >= uint64(height) {
			return spsInfo{}, errors.New("record: SPS cropping exceeds the picture")
		}
		width -= int(cropW)
		height -= int(cropH)
	}
	if width <= 0 || height <= 0 {
		return spsInfo{}, errors.New("record: SPS cropping exceeds the picture")
	}
	// 1024 map units of interlaced fields would be 32800 lines; no H.264
	// level goes beyond 16384 either way (Level 6.2: 139264 MBs).
	if width > 16384 || height > 16384 {
		return spsInfo{}, errors.New("record: SPS picture size out of range")
	}
	return spsInfo{Width: width, Height: height}, nil
}

func skipScalingList(r *bitReader, size int) error {
	last, next := int32(8), int32(8)
	for j := 0; j < size; j++ {
		if next != 0 {
			d, err := r.se()
			if err != nil {
				return err
			}
			next = (last + d + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
	return nil
}

// vp8Size reads the picture size from a VP8 key frame.
// Specification: RFC 6386 §9.1 (frame tag, start code, 14-bit sizes).
func vp8Size(frame []byte) (w, h int, err error) {
	if len(frame) < 10 || frame[0]&1 != 0 {
		return 0, 0, errors.New("record: not a VP8 key frame")
	}
	if frame[3] != 0x9d || frame[4] != 0x01 || frame[5] != 0x2a {
		return 0, 0, errors.New("record: VP8 key frame without start code")
	}
	w = int(binary.LittleEndian.Uint16(frame[6:]) & 0x3fff)
	h = int(binary.LittleEndian.Uint16(frame[8:]) & 0x3fff)
	if w == 0 || h == 0 {
		return 0, 0, errors.New("record: VP8 key frame with zero size")
	}
	return w, h, nil
}
