package rtpaudio

import (
	"bytes"
	"fmt"
	"time"

	"github.com/pion/rtp"

	"github.com/sipstream/sipstream/media"
)

// EncoderConfig configures an Encoder.
type EncoderConfig struct {
	Format
	// PayloadType is the negotiated payload type (0 PCMU, 8 PCMA, or the
	// dynamic type of Opus and Speex).
	PayloadType uint8
	// SSRC of the packets, used as given.
	SSRC uint32
	// InitialSequenceNumber and InitialTimestamp start the stream, used
	// as given (pick them at random, RFC 3550 §5.1).
	InitialSequenceNumber uint16
	InitialTimestamp      uint32
}

// Encoder turns audio frames into RTP packets, advancing the timestamp by
// each frame's duration. It also lends its SSRC, sequence numbers and
// timestamps to the RFC 4733 events sent on the same stream (Stamp,
// Advance). An Encoder is not safe for concurrent use.
type Encoder struct {
	cfg   EncoderConfig
	seq   uint16
	ts    uint32
	first bool
}

// NewEncoder validates cfg and returns an Encoder.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	f, err := cfg.Format.normalize()
	if err != nil {
		return nil, err
	}
	if cfg.PayloadType > 127 {
		return nil, fmt.Errorf("rtpaudio: payload type %d out of range", cfg.PayloadType)
	}
	cfg.Format = f
	return &Encoder{cfg: cfg, seq: cfg.InitialSequenceNumber, ts: cfg.InitialTimestamp, first: true}, nil
}

// Timestamp returns the RTP timestamp the next frame will get.
func (e *Encoder) Timestamp() uint32 { return e.ts }

// Encode packetizes one frame. The first packet of the stream carries the
// marker bit (RFC 3551 §4.1). The packet's payload aliases payload.
func (e *Encoder) Encode(payload []byte) (*rtp.Packet, error) {
	n, _, err := e.cfg.samples(payload)
	if err != nil {
		return nil, err
	}
	p := &rtp.Packet{
		Header: rtp.Header{
			Version:        2,
			Marker:         e.first,
			PayloadType:    e.cfg.PayloadType,
			SequenceNumber: e.seq,
			Timestamp:      e.ts,
			SSRC:           e.cfg.SSRC,
		},
		Payload: payload,
	}
	e.first = false
	e.seq++
	e.ts += n
	return p, nil
}

// Stamp gives pkt this stream's SSRC and its next sequence number, for a
// packet of another payload type sent on the same stream (an RFC 4733
// event packet).
func (e *Encoder) Stamp(pkt *rtp.Packet) {
	pkt.SSRC = e.cfg.SSRC
	pkt.SequenceNumber = e.seq
	e.seq++
}

// Advance moves the timestamp forward by d without sending (after an RFC
// 4733 event, or a pause in transmission), and sets the marker bit on the
// next packet, which starts a talkspurt (RFC 3551 §4.1).
func (e *Encoder) Advance(d time.Duration) {
	e.ts += uint32(uint64(d) * uint64(e.cfg.ClockRate) / uint64(time.Second))
	e.first = true
}

// opusSilence is a 20 ms mono CELT frame of silence (TOC config 31, code
// 0, then the two bytes libopus emits for digital silence).
var opusSilence = []byte{0xf8, 0xff, 0xfe}

// Silence returns a newly allocated payload of silence of duration d for
// format f: 0xD5 bytes for PCMA, 0xFF for PCMU (ITU-T G.711's codes for
// zero), and the 20 ms silent Opus frame (d must then be 20 ms). Speex has
// no fixed silent frame: ErrUnsupported.
func Silence(f Format, d time.Duration) ([]byte, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	samples := int(uint64(d) * uint64(f.ClockRate) / uint64(time.Second))
	switch f.Codec {
	case media.CodecPCMA:
		return bytes.Repeat([]byte{0xd5}, samples*int(f.Channels)), nil
	case media.CodecPCMU:
		return bytes.Repeat([]byte{0xff}, samples*int(f.Channels)), nil
	case media.CodecOpus:
		if d != 20*time.Millisecond {
			return nil, fmt.Errorf("rtpaudio: Opus silence is made of 20 ms frames, not %v", d)
		}
		return bytes.Clone(opusSilence), nil
	}
	return nil, fmt.Errorf("%w: no silence frame for %v", ErrUnsupported, f.Codec)
}
