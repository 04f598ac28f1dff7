package rtpaudio

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

// cases is the golden table: a payload of a format and what the decoder
// must say about it. It drives the decode and encode tests and seeds the
// fuzz target.
var cases = []struct {
	name     string
	format   Format
	payload  []byte
	duration time.Duration
	channels uint8
	advance  uint32 // timestamp increment for the encoder
	err      bool
}{
	{name: "PCMA 20 ms", format: Format{Codec: media.CodecPCMA}, payload: bytes.Repeat([]byte{0xd5}, 160), duration: 20 * time.Millisecond, channels: 1, advance: 160},
	{name: "PCMU 30 ms", format: Format{Codec: media.CodecPCMU}, payload: bytes.Repeat([]byte{0xff}, 240), duration: 30 * time.Millisecond, channels: 1, advance: 240},
	{name: "PCMA 16 kHz stereo 10 ms", format: Format{Codec: media.CodecPCMA, ClockRate: 16000, Channels: 2}, payload: make([]byte, 320), duration: 10 * time.Millisecond, channels: 2, advance: 160},
	{name: "PCMA odd bytes for stereo", format: Format{Codec: media.CodecPCMA, Channels: 2}, payload: make([]byte, 3), err: true},
	{name: "PCMA empty", format: Format{Codec: media.CodecPCMA}, payload: nil, err: true},
	{name: "Opus CELT FB 20 ms mono (silence)", format: Format{Codec: media.CodecOpus}, payload: []byte{0xf8, 0xff, 0xfe}, duration: 20 * time.Millisecond, channels: 1, advance: 960},
	{name: "Opus SILK WB 20 ms stereo", format: Format{Codec: media.CodecOpus}, payload: []byte{0x4c, 1, 2, 3}, duration: 20 * time.Millisecond, channels: 2, advance: 960},
	{name: "Opus SILK NB 60 ms", format: Format{Codec: media.CodecOpus}, payload: []byte{0x18, 1}, duration: 60 * time.Millisecond, channels: 1, advance: 2880},
	{name: "Opus hybrid SWB 10 ms, code 1 (two frames)", format: Format{Codec: media.CodecOpus}, payload: []byte{0x61, 1, 2}, duration: 20 * time.Millisecond, channels: 1, advance: 960},
	{name: "Opus CELT 2.5 ms, code 2", format: Format{Codec: media.CodecOpus}, payload: []byte{0x82, 1, 2, 3}, duration: 5 * time.Millisecond, channels: 1, advance: 240},
	{name: "Opus code 3, 6 frames of 20 ms", format: Format{Codec: media.CodecOpus}, payload: []byte{0xfb, 0x06, 0}, duration: 120 * time.Millisecond, channels: 1, advance: 5760},
	{name: "Opus code 3 over 120 ms", format: Format{Codec: media.CodecOpus}, payload: []byte{0xfb, 0x07, 0}, err: true},
	{name: "Opus code 3 zero frames", format: Format{Codec: media.CodecOpus}, payload: []byte{0xfb, 0x80}, err: true},
	{name: "Opus code 3 without count", format: Format{Codec: media.CodecOpus}, payload: []byte{0xfb}, err: true},
	{name: "Speex NB 20 ms", format: Format{Codec: media.CodecSpeex}, payload: make([]byte, 38), duration: 20 * time.Millisecond, channels: 1, advance: 160},
	{name: "Speex WB two frames", format: Format{Codec: media.CodecSpeex, ClockRate: 16000, SpeexFramesPerPacket: 2}, payload: make([]byte, 84), duration: 40 * time.Millisecond, channels: 1, advance: 640},
}

func TestDecode(t *testing.T) {
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			d, err := NewDecoder(ca.format)
			require.NoError(t, err)
			pkt := &rtp.Packet{Header: rtp.Header{Timestamp: 1234}, Payload: ca.payload}
			fr, ts, err := d.Decode(pkt)
			if ca.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, uint32(1234), ts)
			require.Equal(t, ca.format.Codec, fr.Codec)
			require.Equal(t, ca.duration, fr.Duration)
			require.Equal(t, ca.channels, fr.Channels)
			require.True(t, fr.Keyframe)
			require.Equal(t, ca.payload, fr.Payload)
			require.Equal(t, uint32(ca.duration*time.Duration(fr.ClockRate)/time.Second), ca.advance)
		})
	}
}

func TestEncode(t *testing.T) {
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			e, err := NewEncoder(EncoderConfig{Format: ca.format, PayloadType: 97, SSRC: 5, InitialSequenceNumber: 65535, InitialTimestamp: 0xffffff00})
			require.NoError(t, err)
			p1, err := e.Encode(ca.payload)
			if ca.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			p2, err := e.Encode(ca.payload)
			require.NoError(t, err)
			require.Equal(t, rtp.Header{Version: 2, Marker: true, PayloadType: 97, SequenceNumber: 65535, Timestamp: 0xffffff00, SSRC: 5}, p1.Header)
			require.Equal(t, rtp.Header{Version: 2, PayloadType: 97, SequenceNumber: 0, Timestamp: 0xffffff00 + ca.advance, SSRC: 5}, p2.Header)
			require.Equal(t, ca.payload, p2.Payload)
		})
	}
}

func TestStampAdvance(t *testing.T) {
	e, err := NewEncoder(EncoderConfig{Format: Format{Codec: media.CodecPCMA}, PayloadType: 8, SSRC: 9, InitialSequenceNumber: 10, InitialTimestamp: 100})
	require.NoError(t, err)
	_, err = e.Encode(make([]byte, 160))
	require.NoError(t, err)
	ev := &rtp.Packet{}
	e.Stamp(ev)
	require.Equal(t, uint16(11), ev.SequenceNumber)
	require.Equal(t, uint32(9), ev.SSRC)
	e.Advance(100 * time.Millisecond)
	p, err := e.Encode(make([]byte, 160))
	require.NoError(t, err)
	require.Equal(t, uint16(12), p.SequenceNumber)
	require.Equal(t, uint32(100+160+800), p.Timestamp)
	require.True(t, p.Marker)
}

func TestFormatErrors(t *testing.T) {
	for _, f := range []Format{
		{Codec: media.CodecH264},
		{Codec: media.CodecOpus, ClockRate: 8000},
		{Codec: media.CodecSpeex, ClockRate: 44100},
		{Codec: media.CodecSpeex, SpeexFramesPerPacket: -1},
	} {
		_, err := NewDecoder(f)
		require.Error(t, err, "%+v", f)
	}
	_, err := NewEncoder(EncoderConfig{Format: Format{Codec: media.CodecPCMA}, PayloadType: 200})
	require.Error(t, err)
}

func TestSilence(t *testing.T) {
	b, err := Silence(Format{Codec: media.CodecPCMA}, 20*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte{0xd5}, 160), b)
	b, err = Silence(Format{Codec: media.CodecPCMU}, 10*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte{0xff}, 80), b)
	b, err = Silence(Format{Codec: media.CodecOpus}, 20*time.Millisecond)
	require.NoError(t, err)
	d, ch, err := OpusPacketDuration(b)
	require.NoError(t, err)
	require.Equal(t, 20*time.Millisecond, d)
	require.Equal(t, uint8(1), ch)
	_, err = Silence(Format{Codec: media.CodecOpus}, 10*time.Millisecond)
	require.Error(t, err)
	_, err = Silence(Format{Codec: media.CodecSpeex}, 20*time.Millisecond)
	require.ErrorIs(t, err, ErrUnsupported)
}

// FuzzDecode: any payload for any format: no panic; a frame has a positive
// duration of at most 120 ms for Opus, and its payload is the packet's.
func FuzzDecode(f *testing.F) {
	for i, ca := range cases {
		f.Add(uint8(i), ca.payload)
	}
	f.Fuzz(func(t *testing.T, which uint8, payload []byte) {
		ca := cases[int(which)%len(cases)]
		d, err := NewDecoder(ca.format)
		if err != nil {
			t.Fatal(err)
		}
		fr, _, err := d.Decode(&rtp.Packet{Payload: payload})
		if err != nil {
			return
		}
		if fr.Duration <= 0 && len(payload) > 0 && ca.format.Codec != media.CodecOpus {
			t.Fatalf("duration %v", fr.Duration)
		}
		if ca.format.Codec == media.CodecOpus && (fr.Duration <= 0 || fr.Duration > 120*time.Millisecond) {
			t.Fatalf("opus duration %v", fr.Duration)
		}
		if !bytes.Equal(fr.Payload, payload) {
			t.Fatal("payload changed")
		}
	})
}
