package rtpvp8

import (
	"errors"
	"fmt"

	"github.com/pion/rtp"
)

// EncoderConfig configures an Encoder.
type EncoderConfig struct {
	// PayloadType is the negotiated VP8 payload type (dynamic, 96-127).
	PayloadType uint8
	// SSRC of the packets, used as given.
	SSRC uint32
	// InitialSequenceNumber is the first packet's sequence number, used as
	// given.
	InitialSequenceNumber uint16
	// MTU is the maximum RTP packet size. Zero means 1200.
	MTU int
	// PictureID adds the 15-bit PictureID to every descriptor (browsers
	// use it for loss recovery), starting at InitialPictureID. The zero
	// value sends the 1-byte descriptor only.
	PictureID        bool
	InitialPictureID uint16
}

// Encoder splits VP8 frames into RTP packets: S=1 on the first packet of a
// frame, PID 0 throughout, the marker bit on the last (RFC 7741 §4.4). An
// Encoder is not safe for concurrent use.
type Encoder struct {
	cfg EncoderConfig
	seq uint16
	pid uint16
}

// NewEncoder validates cfg and returns an Encoder.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if cfg.PayloadType < 96 || cfg.PayloadType > 127 {
		return nil, fmt.Errorf("rtpvp8: payload type %d is not dynamic (96-127)", cfg.PayloadType)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1200
	}
	if cfg.MTU < 12+4+1 {
		return nil, fmt.Errorf("rtpvp8: MTU %d too small", cfg.MTU)
	}
	return &Encoder{cfg: cfg, seq: cfg.InitialSequenceNumber, pid: cfg.InitialPictureID & 0x7fff}, nil
}

// NextSequenceNumber returns the sequence number the next packet will get.
func (e *Encoder) NextSequenceNumber() uint16 { return e.seq }

// Encode packetizes one VP8 frame with RTP timestamp ts. The packets are
// newly allocated and owned by the caller.
func (e *Encoder) Encode(frame []byte, ts uint32) ([]*rtp.Packet, error) {
	if len(frame) == 0 {
		return nil, errors.New("rtpvp8: empty frame")
	}
	desc := Descriptor{Start: true}
	if e.cfg.PictureID {
		desc.HasPictureID, desc.PictureID16Bit, desc.PictureID = true, true, e.pid
	}
	hdrLen := len(desc.AppendTo(nil))
	chunk := e.cfg.MTU - 12 - hdrLen
	var pkts []*rtp.Packet
	for len(frame) > 0 {
		c := min(chunk, len(frame))
		p := make([]byte, 0, hdrLen+c)
		p = desc.AppendTo(p)
		p = append(p, frame[:c]...)
		frame = frame[c:]
		pkts = append(pkts, &rtp.Packet{
			Header: rtp.Header{
				Version:        2,
				Marker:         len(frame) == 0,
				PayloadType:    e.cfg.PayloadType,
				SequenceNumber: e.seq,
				Timestamp:      ts,
				SSRC:           e.cfg.SSRC,
			},
			Payload: p,
		})
		e.seq++
		desc.Start = false
	}
	e.pid = (e.pid + 1) & 0x7fff
	return pkts, nil
}
