package rtmp

import (
	"encoding/binary"
	"fmt"
)

// chunkWriter splits outgoing messages into chunks (RTMP 1.0 section 5.3)
// and encodes headers and bodies into one buffer, so that a message, or a
// batch of them, reaches the connection in one write, and nothing is
// allocated per message once the buffer has grown.
//
// It replaces gortmplib's rawmessage.Writer on our write path, which makes
// one allocation per chunk plus four per message, copies every body twice
// and writes each chunk of a message larger than its 4 KiB bufio buffer
// separately. Its header choices are the same (type 0 for a chunk stream's
// first message, when the timestamp goes back or the message stream
// changes; type 1 when the type or length changes; type 2 when the
// timestamp delta changes; type 3 otherwise), and so is the byte order of
// the message stream ID (big-endian, as gortmplib writes and reads it),
// with two differences: the extended timestamp repeated in type 3 chunks
// carries the value of the message's header (RTMP 1.0 section 5.3.1.3;
// gortmplib writes zeros there), and a message that follows a type 0
// header always states its delta (type 1 or 2) instead of relying on
// what a type 3 header means after a type 0, which readers interpret
// differently.
type chunkWriter struct {
	chunkSize uint32
	buf       []byte
	streams   []chunkStream // the few chunk streams in use
}

// chunkStream is what the next header of one chunk stream is relative to.
type chunkStream struct {
	id       byte
	started  bool
	streamID uint32
	typ      uint8
	length   uint32
	ts       uint32 // timestamp of the last message, ms
	delta    uint32 // timestamp delta a type 3 header repeats
	hasDelta bool
}

// maxKeptWriteBuffer is the largest buffer kept between writes: a larger
// one (a keyframe of a big picture, a batch) is dropped after the write,
// so that a connection holds little between frames. 16 KiB keeps the
// P-frames of a 800 kbit/s call (about 4 KB) and its 12 KB keyframes.
const maxKeptWriteBuffer = 16 << 10

func newChunkWriter() chunkWriter { return chunkWriter{chunkSize: 128} }

func (w *chunkWriter) stream(id byte) *chunkStream {
	for i := range w.streams {
		if w.streams[i].id == id {
			return &w.streams[i]
		}
	}
	w.streams = append(w.streams, chunkStream{id: id})
	return &w.streams[len(w.streams)-1]
}

// append encodes m after what the buffer holds. The body is head followed
// by m.Payload (head lets a caller put a tag header in front of a frame
// without copying the frame first).
func (w *chunkWriter) append(m *message, head []byte) error {
	if m.ChunkStreamID < 2 || m.ChunkStreamID > 63 {
		return fmt.Errorf("rtmp: chunk stream ID %d not writable", m.ChunkStreamID)
	}
	n := len(head) + len(m.Payload)
	if n > 0xFFFFFF {
		return fmt.Errorf("rtmp: message of %d bytes", n)
	}
	length := uint32(n)
	cs := w.stream(m.ChunkStreamID)
	ts := m.Timestamp
	var format byte
	var field uint32
	switch {
	case !cs.started || ts < cs.ts || cs.streamID != m.StreamID:
		format, field = 0, ts
	case cs.typ != m.Type || cs.length != length:
		format, field = 1, ts-cs.ts
	case !cs.hasDelta || cs.delta != ts-cs.ts:
		format, field = 2, ts-cs.ts
	default:
		format, field = 3, ts-cs.ts
	}
	ext := field >= 0xFFFFFF
	short := min(field, 0xFFFFFF)

	size := max(int(w.chunkSize), 1)
	chunks := 1
	if n > 0 {
		chunks = (n + size - 1) / size
	}
	per := 1
	if ext {
		per += 4
	}
	w.buf = grow(w.buf, 11+n+chunks*per)

	b := append(w.buf, format<<6|m.ChunkStreamID)
	if format <= 2 {
		b = append(b, byte(short>>16), byte(short>>8), byte(short))
	}
	if format <= 1 {
		b = append(b, byte(length>>16), byte(length>>8), byte(length), m.Type)
	}
	if format == 0 {
		// The message stream ID is the one little-endian field of the
		// chunk header (RTMP 1.0 §5.3.1.2.1), as nginx-rtmp, ffmpeg
		// (AV_RL32) and OBS read it. gortmplib v1.0.1 writes and reads it
		// big-endian; our reader swaps it back (conn.read).
		b = binary.LittleEndian.AppendUint32(b, m.StreamID)
	}
	if ext {
		b = binary.BigEndian.AppendUint32(b, field)
	}
	h, p := head, m.Payload
	for first := true; first || len(h)+len(p) > 0; first = false {
		if !first {
			b = append(b, 3<<6|m.ChunkStreamID)
			if ext {
				b = binary.BigEndian.AppendUint32(b, field)
			}
		}
		k := size
		if len(h) > 0 {
			kh := min(len(h), k)
			b = append(b, h[:kh]...)
			h, k = h[kh:], k-kh
		}
		k = min(len(p), k)
		b = append(b, p[:k]...)
		p = p[k:]
	}
	w.buf = b

	cs.started = true
	cs.streamID = m.StreamID
	cs.typ = m.Type
	cs.length = length
	cs.ts = ts
	cs.delta, cs.hasDelta = field, format != 0
	return nil
}

// reset empties the buffer after a write, dropping it if it grew large.
func (w *chunkWriter) reset() {
	if cap(w.buf) > maxKeptWriteBuffer {
		w.buf = nil
		return
	}
	w.buf = w.buf[:0]
}

// grow makes room for n more bytes in b.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n+len(b)/2)
	copy(nb, b)
	return nb
}
