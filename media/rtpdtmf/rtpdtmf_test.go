package rtpdtmf

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
)

// pk builds a telephone-event packet.
func pk(seq uint16, ts uint32, marker bool, code uint8, end bool, vol uint8, dur uint16) *rtp.Packet {
	return &rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 101, SequenceNumber: seq, Timestamp: ts, SSRC: 0x1234, Marker: marker},
		Payload: Payload{Event: code, End: end, Volume: vol, Duration: dur}.AppendTo(nil),
	}
}

// cases is the golden table: each packet sequence (as a phone sends it,
// possibly damaged by the network) and the events it must give.
var cases = []struct {
	name    string
	packets []*rtp.Packet
	events  []Event
}{
	{
		name: "digit 5, 100 ms, clean",
		packets: []*rtp.Packet{
			pk(1, 8000, true, 5, false, 10, 400),
			pk(2, 8000, false, 5, false, 10, 800),
			pk(3, 8000, false, 5, true, 10, 800),
			pk(4, 8000, false, 5, true, 10, 800),
			pk(5, 8000, false, 5, true, 10, 800),
		},
		events: []Event{{Code: 5, Duration: 100 * time.Millisecond, Volume: 10, Timestamp: 8000, Ended: true}},
	},
	{
		name: "lost start packet",
		packets: []*rtp.Packet{
			pk(2, 8000, false, EventPound, false, 7, 800),
			pk(3, 8000, false, EventPound, true, 7, 1600),
			pk(4, 8000, false, EventPound, true, 7, 1600),
		},
		events: []Event{{Code: EventPound, Duration: 200 * time.Millisecond, Volume: 7, Timestamp: 8000, Ended: true}},
	},
	{
		name: "retransmitted start and stale packets after the end",
		packets: []*rtp.Packet{
			pk(1, 100, true, 1, false, 10, 400),
			pk(1, 100, true, 1, false, 10, 400),
			pk(2, 100, false, 1, true, 10, 640),
			pk(3, 100, false, 1, true, 10, 640),
			pk(2, 100, false, 1, true, 10, 640),
			pk(4, 100, false, 1, true, 10, 640),
			pk(5, 2000, true, 2, false, 10, 400),
			pk(3, 100, false, 1, true, 10, 640),
			pk(6, 2000, false, 2, true, 10, 400),
		},
		events: []Event{
			{Code: 1, Duration: 80 * time.Millisecond, Volume: 10, Timestamp: 100, Ended: true},
			{Code: 2, Duration: 50 * time.Millisecond, Volume: 10, Timestamp: 2000, Ended: true},
		},
	},
	{
		name: "all end packets lost, next digit closes it",
		packets: []*rtp.Packet{
			pk(1, 0, true, 9, false, 10, 400),
			pk(2, 0, false, 9, false, 10, 800),
			pk(6, 4000, true, 9, false, 10, 400),
			pk(7, 4000, false, 9, true, 10, 400),
		},
		events: []Event{
			{Code: 9, Duration: 100 * time.Millisecond, Volume: 10, Timestamp: 0},
			{Code: 9, Duration: 50 * time.Millisecond, Volume: 10, Timestamp: 4000, Ended: true},
		},
	},
	{
		name: "same digit twice",
		packets: []*rtp.Packet{
			pk(1, 0xfffffe00, true, 3, true, 10, 320),
			pk(2, 0xfffffe00, false, 3, true, 10, 320),
			pk(3, 0x200, true, 3, true, 10, 320), // timestamp wrapped
			pk(4, 0x200, false, 3, true, 10, 320),
		},
		events: []Event{
			{Code: 3, Duration: 40 * time.Millisecond, Volume: 10, Timestamp: 0xfffffe00, Ended: true},
			{Code: 3, Duration: 40 * time.Millisecond, Volume: 10, Timestamp: 0x200, Ended: true},
		},
	},
	{
		name: "long event split at the 16-bit duration limit",
		packets: []*rtp.Packet{
			pk(1, 1000, true, EventStar, false, 10, 400),
			pk(2, 1000, false, EventStar, false, 10, 0xffff),
			pk(3, 1000+0xffff, false, EventStar, false, 10, 400),
			pk(4, 1000+0xffff, false, EventStar, true, 10, 800),
		},
		events: []Event{{Code: EventStar, Duration: unitsToDuration(0xffff+800, 8000), Volume: 10, Timestamp: 1000, Ended: true}},
	},
}

func decodeAll(t *testing.T, d *Decoder, pkts []*rtp.Packet) []Event {
	var got []Event
	for _, p := range pkts {
		ev, err := d.Decode(p)
		if errors.Is(err, ErrMorePacketsNeeded) {
			continue
		}
		require.NoError(t, err)
		got = append(got, ev)
	}
	if ev, ok := d.Flush(); ok {
		got = append(got, ev)
	}
	return got
}

func TestDecode(t *testing.T) {
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			d, err := NewDecoder(DecoderConfig{})
			require.NoError(t, err)
			require.Equal(t, ca.events, decodeAll(t, d, ca.packets))
		})
	}
}

func TestDecodeShort(t *testing.T) {
	d, err := NewDecoder(DecoderConfig{})
	require.NoError(t, err)
	_, err = d.Decode(&rtp.Packet{Payload: []byte{1, 2, 3}})
	require.ErrorIs(t, err, ErrShortPayload)
}

func TestDigit(t *testing.T) {
	for _, c := range "0123456789*#ABCD" {
		code, ok := EventCode(c)
		require.True(t, ok)
		require.Equal(t, c, Digit(code))
	}
	code, ok := EventCode('b')
	require.True(t, ok)
	require.Equal(t, EventB, code)
	_, ok = EventCode('x')
	require.False(t, ok)
	require.Equal(t, rune(0), Digit(EventFlash))
}

func TestEncode(t *testing.T) {
	e, err := NewEncoder(EncoderConfig{PayloadType: 101, SSRC: 0xdeadbeef})
	require.NoError(t, err)
	pkts, err := e.Encode(Event{Code: 7, Duration: 120 * time.Millisecond, Volume: 10}, 16000)
	require.NoError(t, err)

	type want struct {
		at     time.Duration
		marker bool
		end    bool
		dur    uint16
	}
	exp := []want{
		{0, true, false, 400},
		{50 * time.Millisecond, false, false, 800},
		{120 * time.Millisecond, false, true, 960},
		{140 * time.Millisecond, false, true, 960},
		{160 * time.Millisecond, false, true, 960},
	}
	require.Len(t, pkts, len(exp))
	for i, w := range exp {
		p := pkts[i]
		require.Equal(t, w.at, p.At, "packet %d", i)
		require.Equal(t, w.marker, p.Packet.Marker, "packet %d", i)
		require.Equal(t, uint32(16000), p.Packet.Timestamp)
		require.Equal(t, uint32(0xdeadbeef), p.Packet.SSRC)
		require.Equal(t, uint8(101), p.Packet.PayloadType)
		require.Equal(t, []byte{7, 10 | map[bool]byte{true: 0x80}[w.end], byte(w.dur >> 8), byte(w.dur)}, p.Packet.Payload, "packet %d", i)
	}

	// Round trip through the decoder, with the caller stamping sequence
	// numbers.
	d, err := NewDecoder(DecoderConfig{})
	require.NoError(t, err)
	var in []*rtp.Packet
	for i := range pkts {
		p := pkts[i].Packet
		p.SequenceNumber = uint16(500 + i)
		in = append(in, &p)
	}
	require.Equal(t, []Event{{Code: 7, Duration: 120 * time.Millisecond, Volume: 10, Timestamp: 16000, Ended: true}}, decodeAll(t, d, in))
}

func TestEncodeShortAndInvalid(t *testing.T) {
	e, err := NewEncoder(EncoderConfig{PayloadType: 101, ClockRate: 48000})
	require.NoError(t, err)
	pkts, err := e.Encode(Event{Code: 1, Duration: 30 * time.Millisecond}, 0)
	require.NoError(t, err)
	require.Len(t, pkts, 3)
	require.True(t, pkts[0].Packet.Marker)
	require.Equal(t, time.Duration(0), pkts[0].At)
	require.Equal(t, []byte{1, 0x80, 0x05, 0xa0}, pkts[2].Packet.Payload) // 1440 units

	_, err = e.Encode(Event{Code: 1, Duration: 2 * time.Second}, 0) // 96000 units > 0xffff
	require.ErrorIs(t, err, ErrDurationRange)
	_, err = e.Encode(Event{Code: 1}, 0)
	require.ErrorIs(t, err, ErrDurationRange)
	_, err = NewEncoder(EncoderConfig{PayloadType: 8})
	require.Error(t, err)
}

// FuzzDecode feeds arbitrary packet sequences: the decoder must not panic,
// must never report two events with the same start timestamp in a row, and
// never an event of negative duration.
func FuzzDecode(f *testing.F) {
	for _, ca := range cases {
		var b []byte
		for _, p := range ca.packets {
			raw, err := p.Marshal()
			if err != nil {
				f.Fatal(err)
			}
			b = append(b, byte(len(raw)))
			b = append(b, raw...)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, _ := NewDecoder(DecoderConfig{})
		var pkt rtp.Packet
		var last *Event
		for len(b) > 0 {
			n := int(b[0])
			b = b[1:]
			if n > len(b) {
				n = len(b)
			}
			raw := b[:n]
			b = b[n:]
			if pkt.Unmarshal(raw) != nil {
				continue
			}
			ev, err := d.Decode(&pkt)
			if err != nil {
				continue
			}
			if ev.Duration < 0 {
				t.Fatalf("negative duration %v", ev.Duration)
			}
			if last != nil && last.Timestamp == ev.Timestamp && last.Ended && ev.Ended {
				t.Fatalf("event at %d reported twice", ev.Timestamp)
			}
			e := ev
			last = &e
		}
	})
}
