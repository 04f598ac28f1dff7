package chunk

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// cases is the golden table: messages written in order on a fresh Writer
// with chunk size 128, and the exact bytes. It drives the writer test, the
// reader test and the fuzz seeds.
var cases = []struct {
	name string
	msgs []Message
	wire []byte
}{
	{
		name: "one small command",
		msgs: []Message{{ChunkStreamID: 3, Type: TypeCommandAMF0, Timestamp: 0, StreamID: 0, Payload: []byte{1, 2, 3}}},
		wire: []byte{0x03, 0, 0, 0, 0, 0, 3, 20, 0, 0, 0, 0, 1, 2, 3},
	},
	{
		name: "split into chunks",
		msgs: []Message{{ChunkStreamID: 6, Type: TypeVideo, Timestamp: 1000, StreamID: 1, Payload: seq(300)}},
		wire: cat([]byte{0x06, 0, 0x03, 0xe8, 0, 0x01, 0x2c, 9, 1, 0, 0, 0}, seq(300)[:128],
			[]byte{0xc6}, seq(300)[128:256], []byte{0xc6}, seq(300)[256:]),
	},
	{
		name: "type 2 then type 1 then type 0",
		msgs: []Message{
			{ChunkStreamID: 4, Type: TypeAudio, Timestamp: 20, StreamID: 1, Payload: []byte{0xaf, 1}},
			{ChunkStreamID: 4, Type: TypeAudio, Timestamp: 40, StreamID: 1, Payload: []byte{0xaf, 2}},
			{ChunkStreamID: 4, Type: TypeAudio, Timestamp: 61, StreamID: 1, Payload: []byte{0xaf, 1, 3}},
			{ChunkStreamID: 4, Type: TypeAudio, Timestamp: 10, StreamID: 1, Payload: []byte{0xaf}},
		},
		wire: []byte{
			0x04, 0, 0, 20, 0, 0, 2, 8, 1, 0, 0, 0, 0xaf, 1,
			0x84, 0, 0, 20, 0xaf, 2,
			0x44, 0, 0, 21, 0, 0, 3, 8, 0xaf, 1, 3,
			0x04, 0, 0, 10, 0, 0, 1, 8, 1, 0, 0, 0, 0xaf,
		},
	},
	{
		name: "extended timestamp repeated in continuation chunks",
		msgs: []Message{{ChunkStreamID: 6, Type: TypeVideo, Timestamp: 0x01000000, StreamID: 1, Payload: seq(200)}},
		wire: cat([]byte{0x06, 0xff, 0xff, 0xff, 0, 0, 200, 9, 1, 0, 0, 0, 0x01, 0, 0, 0}, seq(200)[:128],
			[]byte{0xc6, 0x01, 0, 0, 0}, seq(200)[128:]),
	},
	{
		name: "extended delta",
		msgs: []Message{
			{ChunkStreamID: 6, Type: TypeVideo, Timestamp: 5, StreamID: 1, Payload: []byte{1}},
			{ChunkStreamID: 6, Type: TypeVideo, Timestamp: 0x01000004, StreamID: 1, Payload: []byte{2}},
		},
		wire: []byte{
			0x06, 0, 0, 5, 0, 0, 1, 9, 1, 0, 0, 0, 1,
			0x86, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 2,
		},
	},
	{
		name: "two- and three-byte basic headers",
		msgs: []Message{
			{ChunkStreamID: 100, Type: TypeDataAMF0, Payload: []byte{7}},
			{ChunkStreamID: 400, Type: TypeDataAMF0, Payload: []byte{8}},
		},
		wire: []byte{
			0x00, 36, 0, 0, 0, 0, 0, 1, 18, 0, 0, 0, 0, 7,
			0x01, 0x50, 0x01, 0, 0, 0, 0, 0, 1, 18, 0, 0, 0, 0, 8,
		},
	},
	{
		name: "empty message",
		msgs: []Message{{ChunkStreamID: 3, Type: TypeCommandAMF0, Payload: []byte{}}},
		wire: []byte{0x03, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0},
	},
}

func TestWriter(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf)
			for i := range c.msgs {
				require.NoError(t, w.WriteMessage(&c.msgs[i]))
			}
			require.Equal(t, c.wire, buf.Bytes())
		})
	}
}

func readAll(t *testing.T, r *Reader) []Message {
	t.Helper()
	var out []Message
	for {
		m, err := r.ReadMessage()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		m.Payload = append([]byte{}, m.Payload...)
		out = append(out, m)
	}
}

func TestReader(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := readAll(t, NewReader(bytes.NewReader(c.wire)))
			require.Equal(t, c.msgs, got)
		})
	}
}

func TestReaderQuirks(t *testing.T) {
	t.Run("extended timestamp missing in continuation", func(t *testing.T) {
		wire := cat([]byte{0x06, 0xff, 0xff, 0xff, 0, 0, 200, 9, 1, 0, 0, 0, 0x01, 0, 0, 0}, seq(200)[:128],
			[]byte{0xc6}, seq(200)[128:])
		got := readAll(t, NewReader(bytes.NewReader(wire)))
		require.Equal(t, []Message{{ChunkStreamID: 6, Type: TypeVideo, Timestamp: 0x01000000, StreamID: 1, Payload: seq(200)}}, got)
	})
	t.Run("type 3 starts a new message", func(t *testing.T) {
		wire := []byte{
			0x04, 0, 0, 20, 0, 0, 1, 8, 1, 0, 0, 0, 0xaa,
			0x84, 0, 0, 20, 0xbb,
			0xc4, 0xcc,
		}
		got := readAll(t, NewReader(bytes.NewReader(wire)))
		require.Len(t, got, 3)
		require.Equal(t, []uint32{20, 40, 60}, []uint32{got[0].Timestamp, got[1].Timestamp, got[2].Timestamp})
		require.Equal(t, []byte{0xcc}, got[2].Payload)
	})
	t.Run("huge chunk size", func(t *testing.T) {
		r := NewReader(bytes.NewReader([]byte{0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff}))
		_, err := r.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, uint32(MaxChunkSize), r.ChunkSize())
	})
	t.Run("type 3 right after type 0 keeps the timestamp", func(t *testing.T) {
		wire := []byte{
			0x04, 0, 0, 20, 0, 0, 1, 8, 1, 0, 0, 0, 0xaa,
			0xc4, 0xbb,
		}
		got := readAll(t, NewReader(bytes.NewReader(wire)))
		require.Len(t, got, 2)
		require.Equal(t, uint32(20), got[1].Timestamp)
	})
	t.Run("set chunk size and abort", func(t *testing.T) {
		wire := cat(
			[]byte{0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 4},  // chunk size 4
			[]byte{0x05, 0, 0, 0, 0, 0, 10, 9, 1, 0, 0, 0, 1, 2, 3, 4}, // first chunk of 10 bytes
			[]byte{0x02, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0, 0, 0, 0, 0, 5},  // abort csid 5
			[]byte{0x05, 0, 0, 0, 0, 0, 2, 9, 1, 0, 0, 0, 9, 9},
		)
		r := NewReader(bytes.NewReader(wire))
		got := readAll(t, r)
		require.Len(t, got, 3)
		require.Equal(t, uint8(TypeSetChunkSize), got[0].Type)
		require.Equal(t, uint8(TypeAbort), got[1].Type)
		require.Equal(t, []byte{9, 9}, got[2].Payload)
		require.Equal(t, uint32(4), r.ChunkSize())
		require.Equal(t, uint64(len(wire)), r.BytesRead())
	})
}

func TestReaderErrors(t *testing.T) {
	for name, c := range map[string]struct {
		wire []byte
		err  error
	}{
		"first header not type 0": {[]byte{0x43, 0, 0, 0, 0, 0, 1, 20, 1}, ErrInvalid},
		"truncated payload":       {[]byte{0x03, 0, 0, 0, 0, 0, 9, 20, 0, 0, 0, 0, 1}, io.ErrUnexpectedEOF},
		"chunk size zero":         {[]byte{0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0, 0}, ErrInvalid},
		"short set chunk size":    {[]byte{0x02, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 7}, ErrInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			r := NewReader(bytes.NewReader(c.wire))
			_, err := r.ReadMessage()
			require.True(t, errors.Is(err, c.err), "got %v", err)
		})
	}
	t.Run("too many chunk streams", func(t *testing.T) {
		var wire []byte
		for i := 0; i < 70; i++ {
			wire = append(wire, 0x00, byte(i), 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0)
		}
		r := NewReader(bytes.NewReader(wire))
		var err error
		for err == nil {
			_, err = r.ReadMessage()
		}
		require.ErrorIs(t, err, ErrInvalid)
	})
	t.Run("message too large", func(t *testing.T) {
		r := NewReader(bytes.NewReader([]byte{0x03, 0, 0, 0, 0x10, 0, 1, 20, 0, 0, 0, 0}))
		r.MaxMessageLength = 1 << 20
		_, err := r.ReadMessage()
		require.ErrorIs(t, err, ErrTooLarge)
	})
	t.Run("partial messages over the buffer limit", func(t *testing.T) {
		var wire []byte
		for i := 3; i < 40; i++ {
			wire = append(wire, byte(i), 0, 0, 0, 0xff, 0xff, 0xff, 9, 0, 0, 0, 0)
			wire = append(wire, make([]byte, 128)...)
		}
		r := NewReader(bytes.NewReader(wire))
		r.MaxBuffered = 1024
		_, err := r.ReadMessage()
		require.ErrorIs(t, err, ErrTooLarge)
	})
}

// TestReaderHostileLength declares 16 MiB messages on many chunk streams
// and sends one chunk of each: memory must follow what arrived, not what
// was declared.
func TestReaderHostileLength(t *testing.T) {
	var wire []byte
	for i := 3; i < 60; i++ {
		wire = append(wire, byte(i), 0, 0, 0, 0xff, 0xff, 0xff, 9, 0, 0, 0, 0)
		wire = append(wire, make([]byte, 128)...)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := NewReader(bytes.NewReader(wire))
	_, err := r.ReadMessage()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	runtime.ReadMemStats(&after)
	used := after.TotalAlloc - before.TotalAlloc
	require.Less(t, used, uint64(1<<20), "allocated %d bytes for %d bytes of input", used, len(wire))
}

// TestRoundTrip sends random messages through a Writer and a Reader with
// chunk size changes along the way.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var buf bytes.Buffer
	w := NewWriter(&buf)
	var sent []Message
	ts := map[uint32]uint32{}
	for i := 0; i < 500; i++ {
		if rng.IntN(50) == 0 {
			cs := uint32(1 + rng.IntN(5000))
			require.NoError(t, w.SetChunkSize(cs))
			sent = append(sent, SetChunkSize(cs))
			continue
		}
		csid := uint32(3 + rng.IntN(4))
		if rng.IntN(4) == 0 {
			ts[csid] += uint32(rng.IntN(100))
		} else if rng.IntN(20) == 0 {
			ts[csid] = 0xfffff0 + uint32(rng.IntN(100))
		} else if rng.IntN(30) == 0 {
			ts[csid] = uint32(rng.IntN(1000))
		}
		m := Message{ChunkStreamID: csid, Type: uint8(8 + rng.IntN(2)), Timestamp: ts[csid],
			StreamID: uint32(rng.IntN(2)), Payload: seq(rng.IntN(9000))}
		require.NoError(t, w.WriteMessage(&m))
		sent = append(sent, m)
	}
	got := readAll(t, NewReader(&buf))
	require.Equal(t, len(sent), len(got))
	for i := range sent {
		require.Equal(t, sent[i], got[i], "message %d", i)
	}
}

func TestWriterAllocs(t *testing.T) {
	w := NewWriter(io.Discard)
	m := Message{ChunkStreamID: 6, Type: TypeVideo, StreamID: 1, Payload: seq(20000)}
	require.NoError(t, w.WriteMessage(&m))
	allocs := testing.AllocsPerRun(100, func() {
		m.Timestamp += 40
		_ = w.WriteMessage(&m)
	})
	require.Zero(t, allocs)
}

func TestControlMessages(t *testing.T) {
	m := SetPeerBandwidth(2500000, LimitDynamic)
	require.Equal(t, []byte{0, 0x26, 0x25, 0xa0, 2}, m.Payload)
	v, err := m.Uint32()
	require.NoError(t, err)
	require.Equal(t, uint32(2500000), v)
	m = UserControl(EventPingRequest, 1234)
	ev, arg, err := m.UserEvent()
	require.NoError(t, err)
	require.Equal(t, uint16(EventPingRequest), ev)
	require.Equal(t, uint32(1234), arg)
	m = SetBufferLength(1, 3000)
	require.Len(t, m.Payload, 10)
	_, _, err = (&Message{}).UserEvent()
	require.ErrorIs(t, err, ErrInvalid)
	require.Error(t, NewWriter(io.Discard).SetChunkSize(0))
}

// FuzzReader reads messages from arbitrary bytes. Invariants: no panic,
// every message's payload has the length its header declared, and memory
// stays bounded (the fuzzer's own limits catch blow-ups).
// hostileWire is what a hostile server sent: a large chunk size, then one
// message of size bytes on each of streams chunk streams (completed when
// full, else only its first chunk, half of it, is sent).
func hostileWire(streams, size int, full bool) []byte {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	_ = w.SetChunkSize(uint32(size))
	for i := 0; i < streams; i++ {
		m := Message{ChunkStreamID: uint32(3 + i), Type: TypeVideo, StreamID: 1, Payload: make([]byte, size)}
		_ = w.WriteMessage(&m)
	}
	b := buf.Bytes()
	if !full {
		// Keep each stream's header and half its payload.
		var cut []byte
		set := SetChunkSize(uint32(size / 2))
		var sb bytes.Buffer
		_ = NewWriter(&sb).WriteMessage(&set)
		cut = append(cut, sb.Bytes()...)
		for i := 0; i < streams; i++ {
			h := []byte{byte(3 + i), 0, 0, 0, byte(size >> 16), byte(size >> 8), byte(size), TypeVideo, 1, 0, 0, 0}
			cut = append(cut, h...)
			cut = append(cut, make([]byte, size/2)...)
		}
		return cut
	}
	return b
}

// TestReaderReleasesCompletedBuffers: every chunk stream kept its largest
// message's buffer after the message was returned (≈ 0.5 GiB pinned per
// connection by a hostile server).
func TestReaderReleasesCompletedBuffers(t *testing.T) {
	const streams, size = 40, 256 << 10
	r := NewReader(bytes.NewReader(hostileWire(streams, size, true)))
	r.MaxRetained = 4 << 10
	for i := 0; i < streams; {
		m, err := r.ReadMessage()
		require.NoError(t, err)
		if m.Type == TypeSetChunkSize {
			continue
		}
		require.Len(t, m.Payload, size)
		i++
	}
	_, err := r.ReadMessage()
	require.ErrorIs(t, err, io.EOF)
	held := 0
	for _, st := range r.streams {
		held += cap(st.buf)
	}
	require.LessOrEqual(t, held, streams*(4<<10))
}

// TestReaderPartialMessagesBounded: partial messages on many chunk
// streams fail once they hold more than MaxBuffered together.
func TestReaderPartialMessagesBounded(t *testing.T) {
	r := NewReader(bytes.NewReader(hostileWire(40, 256<<10, false)))
	r.MaxBuffered = 1 << 20
	var err error
	for err == nil {
		_, err = r.ReadMessage()
	}
	require.ErrorIs(t, err, ErrTooLarge)
	require.LessOrEqual(t, r.buffered, 1<<20)
}

func FuzzReader(f *testing.F) {
	for _, c := range cases {
		f.Add(c.wire)
	}
	// Hostile servers' patterns (issue 12), small enough for a corpus.
	f.Add(hostileWire(8, 4096, true))
	f.Add(hostileWire(8, 4096, false))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		r.MaxBuffered = 1 << 20
		r.MaxRetained = 4 << 10
		for {
			m, err := r.ReadMessage()
			if err != nil {
				if r.buffered > r.MaxBuffered+int(r.chunkSize) {
					t.Fatalf("partial messages hold %d bytes", r.buffered)
				}
				return
			}
			if len(m.Payload) > MaxMessageLength {
				t.Fatalf("payload %d bytes", len(m.Payload))
			}
		}
	})
}

// BenchmarkWriter chunks 1500-byte video messages at chunk size 4096.
func BenchmarkWriter(b *testing.B) {
	w := NewWriter(io.Discard)
	_ = w.SetChunkSize(4096)
	m := Message{ChunkStreamID: 7, Type: TypeVideo, StreamID: 1, Payload: seq(1500)}
	b.SetBytes(int64(len(m.Payload)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		m.Timestamp += 40
		if err := w.WriteMessage(&m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReader reassembles 10 KiB video messages sent with 4096-byte
// chunks.
func BenchmarkReader(b *testing.B) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	_ = w.SetChunkSize(4096)
	m := Message{ChunkStreamID: 7, Type: TypeVideo, StreamID: 1, Payload: seq(10 << 10)}
	for i := 0; i < 64; i++ {
		m.Timestamp += 40
		_ = w.WriteMessage(&m)
	}
	wire := buf.Bytes()
	rd := bytes.NewReader(wire)
	r := NewReader(rd)
	b.SetBytes(int64(len(m.Payload)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := r.ReadMessage(); err == io.EOF {
			rd.Reset(wire[16:]) // past the Set Chunk Size message (1+11+4 bytes)
			r.r.Reset(rd)
			i--
		} else if err != nil {
			b.Fatal(err)
		}
	}
}
