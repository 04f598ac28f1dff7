package rtmp

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/bits"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
	"github.com/stretchr/testify/require"
)

// readBack decodes wire with gortmplib's reader, whose chunk size follows
// the Set Chunk Size messages in it.
func readBack(t testing.TB, wire []byte, n int) []message {
	t.Helper()
	bc := bytecounter.NewReader(bytes.NewReader(wire))
	r := rawmessage.NewReader(bc, bc, func(uint32) error { return nil })
	var out []message
	for len(out) < n {
		raw, err := r.Read()
		require.NoError(t, err, "message %d", len(out))
		m := message{ChunkStreamID: raw.ChunkStreamID, Type: raw.Type,
			Timestamp: uint32(raw.Timestamp / time.Millisecond), StreamID: bits.ReverseBytes32(raw.MessageStreamID), Payload: raw.Body}
		if m.Type == typeSetChunkSize {
			require.NoError(t, r.SetChunkSize(binary.BigEndian.Uint32(m.Payload)))
		}
		out = append(out, m)
	}
	_, err := r.Read()
	require.ErrorIs(t, err, io.EOF, "bytes left after the last message")
	return out
}

// TestChunkWriterRoundTrip: what chunkWriter writes, gortmplib's reader
// reads back as the same messages: every header type, chunk size changes,
// messages over several chunks, empty bodies, timestamps going back and
// timestamps and deltas in the extended field (over 4 h 40 min).
func TestChunkWriterRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 3000) // 21000 bytes
	setSize := func(n uint32) message {
		return message{ChunkStreamID: csidControl, Type: typeSetChunkSize, Payload: binary.BigEndian.AppendUint32(nil, n)}
	}
	ext := uint32(0xFFFFFF)
	cases := []struct {
		name string
		msgs []message
	}{
		{"types 0 to 3", []message{
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: 0, StreamID: 1, Payload: big[:100]},
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: 40, StreamID: 1, Payload: big[:100]}, // type 2
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: 80, StreamID: 1, Payload: big[:100]}, // type 3
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: 120, StreamID: 1, Payload: big[:90]}, // type 1
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: 100, StreamID: 1, Payload: big[:90]}, // back: type 0
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: 140, StreamID: 2, Payload: big[:90]}, // other stream: type 0
			{ChunkStreamID: csidVideo, Type: typeAudio, Timestamp: 140, StreamID: 2, Payload: nil},      // empty body
		}},
		{"interleaved chunk streams, several chunks", []message{
			setSize(4096),
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: 0, StreamID: 1, Payload: big},
			{ChunkStreamID: csidAudio, Type: typeAudio, Timestamp: 10, StreamID: 1, Payload: big[:170]},
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: 40, StreamID: 1, Payload: big[:4096]},
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: 80, StreamID: 1, Payload: big[:4097]},
			{ChunkStreamID: csidAudio, Type: typeAudio, Timestamp: 31, StreamID: 1, Payload: big[:170]},
			setSize(128),
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: 120, StreamID: 1, Payload: big[:1000]},
		}},
		{"extended timestamps", []message{
			setSize(1000),
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: ext - 40, StreamID: 1, Payload: big[:2500]},
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: ext, StreamID: 1, Payload: big[:2500]},
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: ext + 40, StreamID: 1, Payload: big[:2500]},
			{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: ext + 80, StreamID: 1, Payload: big[:2500]},
			{ChunkStreamID: csidAudio, Type: typeAudio, Timestamp: ext + 1, StreamID: 1, Payload: big[:2500]},
			{ChunkStreamID: csidAudio, Type: typeAudio, Timestamp: 2*ext + 5, StreamID: 1, Payload: big[:2500]}, // extended delta
			{ChunkStreamID: csidAudio, Type: typeAudio, Timestamp: 3*ext + 10, StreamID: 1, Payload: big[:2500]},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newChunkWriter()
			for i := range tc.msgs {
				require.NoError(t, w.append(&tc.msgs[i], nil))
				if tc.msgs[i].Type == typeSetChunkSize {
					w.chunkSize = binary.BigEndian.Uint32(tc.msgs[i].Payload)
				}
			}
			got := readBack(t, w.buf, len(tc.msgs))
			for i := range tc.msgs {
				want := tc.msgs[i]
				if want.Payload == nil {
					want.Payload = []byte{}
				}
				if got[i].Payload == nil {
					got[i].Payload = []byte{}
				}
				require.Equal(t, want, got[i], "message %d", i)
			}
		})
	}
}

// TestChunkWriterExtendedContinuation: a type 3 chunk that continues a
// message with an extended timestamp repeats that timestamp (RTMP 1.0
// section 5.3.1.3), which FFmpeg and others compare.
func TestChunkWriterExtendedContinuation(t *testing.T) {
	w := newChunkWriter()
	ts := uint32(0x01234567)
	require.NoError(t, w.append(&message{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: ts, StreamID: 1, Payload: make([]byte, 200)}, nil))
	// type 0 header (12) + extended (4) + 128 body, then the continuation.
	cont := w.buf[12+4+128:]
	require.Equal(t, byte(3<<6|csidVideo), cont[0])
	require.Equal(t, ts, binary.BigEndian.Uint32(cont[1:5]))
	require.Len(t, cont, 1+4+72)
}

// TestChunkWriterRandom round-trips random message sequences.
func TestChunkWriterRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := 0; run < 50; run++ {
		w := newChunkWriter()
		w.chunkSize = uint32(1 + rng.IntN(300))
		var msgs []message
		ts := map[byte]uint32{}
		for i := 0; i < 200; i++ {
			csid := byte(2 + rng.IntN(6))
			switch rng.IntN(10) {
			case 0:
				ts[csid] -= uint32(rng.IntN(100)) // may go back, even wrap
			case 1:
				ts[csid] += 0xFFFFFF + uint32(rng.IntN(3))
			default:
				ts[csid] += uint32(rng.IntN(3)) * 20
			}
			m := message{ChunkStreamID: csid, Type: uint8(8 + rng.IntN(2)), Timestamp: ts[csid],
				StreamID: uint32(rng.IntN(2)), Payload: make([]byte, rng.IntN(3)*rng.IntN(700))}
			for j := range m.Payload {
				m.Payload[j] = byte(rng.Uint32())
			}
			// Some bodies come as a head and the rest.
			cut := 0
			if len(m.Payload) > 0 && rng.IntN(2) == 0 {
				cut = rng.IntN(len(m.Payload) + 1)
			}
			rest := m
			rest.Payload = m.Payload[cut:]
			require.NoError(t, w.append(&rest, m.Payload[:cut]))
			if len(m.Payload) == 0 {
				m.Payload = []byte{}
			}
			msgs = append(msgs, m)
		}
		bc := bytecounter.NewReader(bytes.NewReader(w.buf))
		r := rawmessage.NewReader(bc, bc, func(uint32) error { return nil })
		require.NoError(t, r.SetChunkSize(w.chunkSize))
		for i, want := range msgs {
			raw, err := r.Read()
			require.NoError(t, err, "run %d message %d", run, i)
			got := message{ChunkStreamID: raw.ChunkStreamID, Type: raw.Type,
				Timestamp: uint32(raw.Timestamp / time.Millisecond), StreamID: bits.ReverseBytes32(raw.MessageStreamID), Payload: raw.Body}
			if len(got.Payload) == 0 {
				got.Payload = []byte{}
			}
			require.Equal(t, want, got, "run %d message %d", run, i)
		}
	}
}

// TestChunkWriterRefuses: chunk stream IDs that need a longer basic header
// and bodies over 16 MiB are refused, not written wrong.
func TestChunkWriterRefuses(t *testing.T) {
	w := newChunkWriter()
	require.Error(t, w.append(&message{ChunkStreamID: 64, Type: typeVideo}, nil))
	require.Error(t, w.append(&message{ChunkStreamID: 1, Type: typeVideo}, nil))
	require.Error(t, w.append(&message{ChunkStreamID: csidVideo, Type: typeVideo, Payload: make([]byte, 1<<24)}, nil))
	require.Empty(t, w.buf)
}

// TestChunkWriterStreamIDLittleEndian: the message stream ID of a type 0
// header is little-endian (RTMP 1.0 §5.3.1.2.1), as nginx-rtmp, ffmpeg
// and OBS read it; the other header fields are big-endian.
func TestChunkWriterStreamIDLittleEndian(t *testing.T) {
	w := newChunkWriter()
	require.NoError(t, w.append(&message{ChunkStreamID: csidVideo, Type: typeVideo, Timestamp: 0x010203, StreamID: 1, Payload: []byte{0xAA}}, nil))
	require.Equal(t, []byte{
		csidVideo,        // fmt 0, chunk stream
		0x01, 0x02, 0x03, // timestamp
		0x00, 0x00, 0x01, // length
		typeVideo,
		0x01, 0x00, 0x00, 0x00, // message stream 1
		0xAA,
	}, w.buf)
}
