package rtpdtmf

import (
	"errors"
	"fmt"
	"time"

	"github.com/pion/rtp"
)

// EncoderConfig configures an Encoder. The SSRC and the RTP clock must be
// those of the audio stream the events are sent on (RFC 4733 §2.1).
type EncoderConfig struct {
	// PayloadType is the negotiated telephone-event payload type (often
	// 101). It must be a dynamic type, 96-127.
	PayloadType uint8
	// SSRC is the audio stream's SSRC, used as given.
	SSRC uint32
	// ClockRate is the audio stream's RTP clock rate. Zero means 8000.
	ClockRate uint32
	// Interval is the time between duration updates. Zero means 50 ms, the
	// typical value of RFC 4733 §2.5.1.2.
	Interval time.Duration
	// EndInterval is the spacing of the three end packets. Zero means
	// 20 ms.
	EndInterval time.Duration
}

// TimedPacket is a packet of an event's schedule and when to send it,
// relative to the event's start.
type TimedPacket struct {
	// At is the send time relative to the first packet.
	At time.Duration
	// Packet is the RTP packet. Its SequenceNumber is zero: the caller
	// stamps it when sending, from the audio stream's sequence counter,
	// because events share the audio stream's sequence number space.
	Packet rtp.Packet
}

// Encoder produces the RFC 4733 packet schedule of a key press: the first
// packet with the marker bit, duration updates every Interval (all with the
// same timestamp, the event's start), and the end packet three times with the
// final duration. An Encoder has no mutable state; it is safe for concurrent
// use.
type Encoder struct {
	cfg EncoderConfig
}

// NewEncoder validates cfg and returns an Encoder.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if cfg.PayloadType < 96 || cfg.PayloadType > 127 {
		return nil, fmt.Errorf("rtpdtmf: payload type %d is not dynamic (96-127)", cfg.PayloadType)
	}
	if cfg.ClockRate == 0 {
		cfg.ClockRate = 8000
	}
	if cfg.Interval == 0 {
		cfg.Interval = 50 * time.Millisecond
	}
	if cfg.EndInterval == 0 {
		cfg.EndInterval = 20 * time.Millisecond
	}
	if cfg.Interval < 0 || cfg.EndInterval < 0 {
		return nil, errors.New("rtpdtmf: negative interval")
	}
	return &Encoder{cfg: cfg}, nil
}

// ErrDurationRange is returned for an event duration that is not positive or
// does not fit the 16-bit duration field.
var ErrDurationRange = errors.New("rtpdtmf: event duration out of range")

// Encode returns the packet schedule of one event starting at RTP timestamp
// ts (the audio stream's timestamp at the moment the key goes down). The
// event's Timestamp field is ignored. While the event lasts the caller
// should not send audio packets (RFC 4733 §2.5.1.2); afterwards the audio
// timestamps continue from ts plus the event's duration.
func (e *Encoder) Encode(ev Event, ts uint32) ([]TimedPacket, error) {
	units := uint64(ev.Duration) * uint64(e.cfg.ClockRate) / uint64(time.Second)
	if ev.Duration <= 0 || units == 0 || units > 0xffff {
		return nil, ErrDurationRange
	}
	step := uint64(e.cfg.Interval) * uint64(e.cfg.ClockRate) / uint64(time.Second)
	if step == 0 {
		step = 1
	}
	var out []TimedPacket
	mk := func(at time.Duration, dur uint64, end, marker bool) {
		p := Payload{Event: ev.Code, End: end, Volume: ev.Volume & 0x3f, Duration: uint16(dur)}
		out = append(out, TimedPacket{
			At: at,
			Packet: rtp.Packet{
				Header: rtp.Header{
					Version:     2,
					Marker:      marker,
					PayloadType: e.cfg.PayloadType,
					Timestamp:   ts,
					SSRC:        e.cfg.SSRC,
				},
				Payload: p.AppendTo(make([]byte, 0, PayloadSize)),
			},
		})
	}
	// Updates: the packet sent at k·Interval reports the duration up to the
	// next update, as common phones do, so the first one is never zero.
	k := uint64(0)
	for ; (k+1)*step < units; k++ {
		mk(time.Duration(k)*e.cfg.Interval, (k+1)*step, false, k == 0)
	}
	end := ev.Duration
	if k == 0 {
		end = 0 // shorter than one interval: the end packets are the only ones
	}
	for i := 0; i < 3; i++ {
		mk(end+time.Duration(i)*e.cfg.EndInterval, units, true, k == 0 && i == 0)
	}
	return out, nil
}
