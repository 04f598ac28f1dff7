package whep

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp/codecs"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
)

// unit is one frame packetized for RTP: shared by every viewer, never
// modified after packetize returns. Each viewer writes the payloads with its
// own sequence numbers, SSRC and payload type.
type unit struct {
	kind     media.Kind
	ts       uint32 // RTP timestamp
	key      bool   // video keyframe
	payloads [][]byte
	// profileLevelID is the H.264 profile-level-id of a keyframe's SPS
	// ("42e01f"), empty otherwise.
	profileLevelID string
}

// packetizer turns frames into units. It is used by the WriteFrame
// goroutine only.
type packetizer struct {
	mtu              int
	h264             *rtph264.Encoder
	vp8              codecs.VP8Payloader
	videoTS, audioTS uint32 // random RTP timestamp offsets (RFC 3550 §5.1)
	sps, pps         []byte // latest parameter sets, put in front of an IDR without them
	plid             string // profile-level-id of sps ("42e01f"), empty if it is shorter than 4 bytes
	// vguard and aguard keep each track's RTP timestamps strictly
	// increasing in its own clock's ticks.
	vguard, aguard media.DTSGuard
}

func newPacketizer(mtu int, videoTS, audioTS uint32) (packetizer, error) {
	enc, err := rtph264.NewEncoder(rtph264.EncoderConfig{PayloadType: 96, MTU: mtu})
	if err != nil {
		return packetizer{}, err
	}
	return packetizer{
		mtu:     mtu,
		h264:    enc,
		vp8:     codecs.VP8Payloader{EnablePictureID: true},
		videoTS: videoTS,
		audioTS: audioTS,
	}, nil
}

var errEmptyFrame = errors.New("whep: empty frame")

func (p *packetizer) packetize(f *media.Frame) (*unit, error) {
	if len(f.Payload) == 0 {
		return nil, errEmptyFrame
	}
	u := &unit{kind: f.Kind()}
	switch f.Codec {
	case media.CodecH264:
		// Not h264.AVCC.Unmarshal: it refuses more than 50 NAL units
		// (h264.MaxNALUsPerAccessUnit), and a phone in packetization-mode 0
		// sends one slice per packet, 30 to 60 for a 720p IDR.
		nalus, err := rtph264.SplitAVC(f.Payload)
		if err != nil {
			return nil, err
		}
		if len(nalus) == 0 {
			return nil, errEmptyFrame
		}
		u.ts = p.videoTS + p.stamp(&p.vguard, f.PTS, rtph264.ClockRate)
		hasSPS, hasPPS := false, false
		for _, n := range nalus {
			switch h264.NALUType(n[0] & 0x1f) {
			case h264.NALUTypeSPS:
				hasSPS = true
				p.setSPS(n)
			case h264.NALUTypePPS:
				hasPPS = true
				p.pps = append(p.pps[:0], n...)
			}
		}
		u.key = f.Keyframe || h264.IsRandomAccess(nalus)
		if u.key && !(hasSPS && hasPPS) && p.sps != nil && p.pps != nil {
			// A viewer that starts here needs the parameter sets.
			nalus = append([][]byte{p.sps, p.pps}, nalus...)
		}
		if u.key {
			u.profileLevelID = p.plid
		}
		pkts, err := p.h264.Encode(nalus, u.ts)
		if err != nil {
			return nil, err
		}
		u.payloads = make([][]byte, len(pkts))
		for i, pkt := range pkts {
			u.payloads[i] = pkt.Payload
		}
	case media.CodecVP8:
		u.ts = p.videoTS + p.stamp(&p.vguard, f.PTS, 90000)
		// RFC 6386 §9.1: bit 0 of the frame tag is 0 for a key frame.
		u.key = f.Keyframe || f.Payload[0]&0x01 == 0
		// The payloader allocates each payload and copies the frame.
		u.payloads = p.vp8.Payload(uint16(p.mtu-12), f.Payload)
		if len(u.payloads) == 0 {
			return nil, errEmptyFrame
		}
	case media.CodecPCMA, media.CodecPCMU, media.CodecOpus:
		clock := f.ClockRate
		if clock == 0 {
			clock = 8000
			if f.Codec == media.CodecOpus {
				clock = 48000
			}
		}
		if f.Codec == media.CodecOpus {
			clock = 48000 // RFC 7587 §4.1: always 48 kHz
		}
		u.ts = p.audioTS + p.stamp(&p.aguard, f.PTS, clock)
		u.key = true
		// Frames given to sinks are shared and immutable: alias.
		u.payloads = [][]byte{f.Payload}
	default:
		return nil, fmt.Errorf("whep: codec %v not sent", f.Codec)
	}
	return u, nil
}

// note is packetize without the packets, for a sink no viewer watches: it
// validates f as packetize would, keeps the parameter sets a later IDR may
// need and reports whether f is a keyframe and, for an H.264 keyframe, the
// profile-level-id of the latest SPS. It allocates nothing once the
// parameter sets are stored, and leaves the RTP timestamp guards alone: the
// frames that reach viewers are stamped when they are packetized.
func (p *packetizer) note(f *media.Frame) (key bool, plid string, err error) {
	if len(f.Payload) == 0 {
		return false, "", errEmptyFrame
	}
	switch f.Codec {
	case media.CodecH264:
		n := 0
		err := rtph264.ForEachAVC(f.Payload, func(nalu []byte) bool {
			n++
			switch h264.NALUType(nalu[0] & 0x1f) {
			case h264.NALUTypeSPS:
				p.setSPS(nalu)
			case h264.NALUTypePPS:
				p.pps = append(p.pps[:0], nalu...)
			case h264.NALUTypeIDR:
				key = true
			}
			return true
		})
		if err != nil {
			return false, "", fmt.Errorf("whep: %w", err)
		}
		if n == 0 {
			return false, "", errEmptyFrame
		}
		key = key || f.Keyframe
		if key {
			plid = p.plid
		}
		return key, plid, nil
	case media.CodecVP8:
		return f.Keyframe || f.Payload[0]&0x01 == 0, "", nil
	case media.CodecPCMA, media.CodecPCMU, media.CodecOpus:
		return true, "", nil
	}
	return false, "", fmt.Errorf("whep: codec %v not sent", f.Codec)
}

// setSPS stores the latest SPS and its profile-level-id, formatted only
// when the SPS changes.
func (p *packetizer) setSPS(sps []byte) {
	if bytes.Equal(sps, p.sps) {
		return
	}
	p.sps = append(p.sps[:0], sps...)
	p.plid = ""
	if len(p.sps) >= 4 {
		p.plid = fmt.Sprintf("%02x%02x%02x", p.sps[1], p.sps[2], p.sps[3])
	}
}

// stamp converts a frame's PTS to its track's RTP clock, strictly after the
// track's previous frame (media.DTSGuard): two frames with one RTP
// timestamp would be taken for one by a browser, a timestamp going back
// makes its jitter buffer drop or stall. SIP endpoints send no B-frames, so
// presentation order is sending order. The guard restarts if the clock
// rate changes.
func (p *packetizer) stamp(g *media.DTSGuard, pts time.Duration, clock uint32) uint32 {
	if g.Rate != int64(clock) {
		*g = media.DTSGuard{Rate: int64(clock)}
	}
	return uint32(g.Next(max(pts, 0))) // modulo 2^32, as RTP time is
}
