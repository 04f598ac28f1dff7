package rtpaudio

import (
	"time"

	"github.com/pion/rtp"

	"github.com/sipstream/sipstream/media"
)

// Decoder turns RTP packets of one audio payload format into frames.
// It keeps no state between packets and allocates nothing; it is safe for
// concurrent use.
type Decoder struct {
	f Format
}

// NewDecoder validates f and returns a Decoder.
func NewDecoder(f Format) (*Decoder, error) {
	f, err := f.normalize()
	if err != nil {
		return nil, err
	}
	return &Decoder{f: f}, nil
}

// Decode returns the packet's audio as a Frame (Codec, Keyframe, Payload,
// ClockRate, Channels and Duration set; PTS and DTS are the caller's, from
// the returned RTP timestamp). The Frame's Payload aliases pkt.Payload:
// copy it before retaining it. A malformed payload (empty, an invalid Opus
// TOC) gives an error and no frame.
func (d *Decoder) Decode(pkt *rtp.Packet) (media.Frame, uint32, error) {
	n, ch, err := d.f.samples(pkt.Payload)
	if err != nil {
		return media.Frame{}, 0, err
	}
	return media.Frame{
		Codec:     d.f.Codec,
		Keyframe:  true,
		Payload:   pkt.Payload,
		ClockRate: d.f.ClockRate,
		Channels:  ch,
		Duration:  time.Duration(uint64(n) * uint64(time.Second) / uint64(d.f.ClockRate)),
	}, pkt.Timestamp, nil
}
