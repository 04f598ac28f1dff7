package record

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/sipstream/sipstream/media/rtph264"
)

// paramSets returns the first SPS and PPS NAL units of an AVC (4-byte
// length-prefixed) access unit. They alias au. rtph264.ForEachAVC walks
// it: mediacommon's h264.AVCC.Unmarshal refuses more than 50 NAL units.
func paramSets(au []byte) (sps, pps []byte, err error) {
	var ps rtph264.ParamSets
	if rtph264.ForEachAVC(au, func(nalu []byte) bool {
		ps.Add(nalu)
		return true
	}) != nil {
		return nil, nil, errBadAVC
	}
	if ps.SPS == nil || ps.PPS == nil {
		return nil, nil, errors.New("record: keyframe without SPS and PPS")
	}
	return ps.SPS, ps.PPS, nil
}

var errBadAVC = errors.New("record: malformed AVC access unit")

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

// spsInfo is what the recorders need from a sequence parameter set.
type spsInfo struct {
	Width, Height int
}

// parseSPS reads the picture size from an SPS NAL unit (header byte
// included). mediacommon parses the bitstream; the size is computed here
// because mediacommon's SPS.Width/Height compute in uint32 without bounds
// (a hostile SPS wraps into a plausible size) and SPS.Width uses a crop unit
// of 0 instead of 1 when ChromaArrayType is 0 (monochrome, or 4:4:4 coded
// as separate planes), ignoring the horizontal crop.
// Specification: ITU-T H.264 §7.3.2.1.1, §7.4.2.1.1 (CropUnitX/CropUnitY).
func parseSPS(nalu []byte) (spsInfo, error) {
	var s h264.SPS
	if err := s.Unmarshal(nalu); err != nil {
		return spsInfo{}, fmt.Errorf("record: SPS: %w", err)
	}
	if s.ChromaFormatIdc > 3 {
		return spsInfo{}, fmt.Errorf("record: bad chroma_format_idc %d", s.ChromaFormatIdc)
	}
	if s.PicWidthInMbsMinus1 > 1024 || s.PicHeightInMapUnitsMinus1 > 1024 {
		return spsInfo{}, errors.New("record: SPS picture size out of range")
	}
	fields := uint64(1)
	if !s.FrameMbsOnlyFlag {
		fields = 2
	}
	width := uint64(s.PicWidthInMbsMinus1+1) * 16
	height := uint64(s.PicHeightInMapUnitsMinus1+1) * 16 * fields
	if c := s.FrameCropping; c != nil {
		unitX, unitY := uint64(1), fields
		if !s.SeparateColourPlaneFlag {
			switch s.ChromaFormatIdc {
			case 1: // 4:2:0
				unitX, unitY = 2, 2*fields
			case 2: // 4:2:2
				unitX = 2
			}
		}
		cropW := (uint64(c.LeftOffset) + uint64(c.RightOffset)) * unitX
		cropH := (uint64(c.TopOffset) + uint64(c.BottomOffset)) * unitY
		if cropW >= width || cropH >= height {
			return spsInfo{}, errors.New("record: SPS cropping exceeds the picture")
		}
		width -= cropW
		height -= cropH
	}
	// 1024 map units of interlaced fields would be 32800 lines; no H.264
	// level goes beyond 16384 either way (Level 6.2: 139264 MBs).
	if width > 16384 || height > 16384 {
		return spsInfo{}, errors.New("record: SPS picture size out of range")
	}
	return spsInfo{Width: int(width), Height: int(height)}, nil
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
