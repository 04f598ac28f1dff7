package rtpdtmf

import (
	"github.com/pion/rtp"
)

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	// ClockRate is the RTP clock rate of the telephone-event format (the
	// audio stream's rate). Zero means 8000.
	ClockRate uint32
}

// Decoder turns telephone-event packets into one Event per key press.
//
// It reports an event when its first end packet arrives and ignores the
// redundant end packets and any retransmission of it. It needs no start
// packet: any packet with a new timestamp begins an event, so a lost start
// (marker) packet loses nothing. When all end packets of an event are lost,
// the event is reported when the next event begins, or by Flush. Long events
// split by the sender at the 16-bit duration limit (RFC 4733 §2.5.1.3) are
// merged back into one.
//
// Packets should come in sequence order (through a jitter buffer); packets
// older than the current event are ignored. A Decoder is not safe for
// concurrent use.
type Decoder struct {
	clockRate uint32

	active   bool   // an event is in progress (started, not ended)
	code     uint8  // its code
	ts       uint32 // RTP timestamp of its current segment
	startTS  uint32 // RTP timestamp of its first segment
	base     uint64 // duration units of earlier segments (long events)
	dur      uint16 // duration of the current segment
	volume   uint8  //
	haveLast bool   // lastTS is valid
	lastTS   uint32 // newest segment timestamp seen (finished or active)
	ended    bool   // lastTS's event has been reported
}

// NewDecoder returns a Decoder.
func NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	d := &Decoder{clockRate: cfg.ClockRate}
	if d.clockRate == 0 {
		d.clockRate = 8000
	}
	return d, nil
}

// Decode processes one telephone-event packet. It returns an Event when the
// packet completes one (its end packet, or the start of a newer event while
// the previous one never ended), and ErrMorePacketsNeeded otherwise. A
// malformed payload gives ErrShortPayload.
func (d *Decoder) Decode(pkt *rtp.Packet) (Event, error) {
	var p Payload
	if err := p.Unmarshal(pkt.Payload); err != nil {
		return Event{}, err
	}
	ts := pkt.Timestamp
	if d.haveLast {
		diff := int32(ts - d.lastTS)
		if diff < 0 {
			return Event{}, ErrMorePacketsNeeded // older than the newest event: stale retransmission
		}
		if diff == 0 {
			if d.ended {
				return Event{}, ErrMorePacketsNeeded // redundant end packet
			}
			if p.Duration > d.dur {
				d.dur = p.Duration
			}
			if p.End {
				return d.finish(true), nil
			}
			return Event{}, ErrMorePacketsNeeded
		}
	}
	// A new timestamp: either a continuation segment of a long event or a
	// new event.
	var prev Event
	havePrev := false
	if d.active && p.Event == d.code && uint64(ts-d.ts) == uint64(d.dur) && d.dur == 0xffff {
		// RFC 4733 §2.5.1.3: the previous segment reached the maximum
		// duration and the sender continues the same event.
		d.base += uint64(d.dur)
	} else {
		if d.active {
			prev = d.finish(false)
			havePrev = true
		}
		d.active = true
		d.code = p.Event
		d.startTS = ts
		d.base = 0
	}
	d.ts = ts
	d.dur = p.Duration
	d.volume = p.Volume
	d.haveLast = true
	d.lastTS = ts
	d.ended = false
	if havePrev {
		// The new packet may also be an end packet (its earlier packets
		// lost); it will be reported on its redundant copy or by Flush.
		return prev, nil
	}
	if p.End {
		return d.finish(true), nil
	}
	return Event{}, ErrMorePacketsNeeded
}

func (d *Decoder) finish(ended bool) Event {
	ev := Event{
		Code:      d.code,
		Duration:  unitsToDuration(d.base+uint64(d.dur), d.clockRate),
		Volume:    d.volume,
		Timestamp: d.startTS,
		Ended:     ended,
	}
	d.active = false
	d.ended = true
	return ev
}

// Flush reports the event in progress, if any, as ended (use it when the
// stream stops or times out, so a key press whose end packets were all lost
// is still reported).
func (d *Decoder) Flush() (Event, bool) {
	if !d.active {
		return Event{}, false
	}
	return d.finish(false), true
}
