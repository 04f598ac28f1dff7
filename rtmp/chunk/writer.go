package chunk

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Writer splits messages into chunks. It is not safe for concurrent use.
type Writer struct {
	w         io.Writer
	chunkSize uint32
	streams   map[uint32]*writeState
	buf       []byte
}

type writeState struct {
	timestamp uint32
	length    uint32
	typ       uint8
	streamID  uint32
}

// NewWriter returns a Writer with the default chunk size of 128 bytes.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, chunkSize: DefaultChunkSize, streams: map[uint32]*writeState{}}
}

// ChunkSize returns the chunk size the Writer uses.
func (w *Writer) ChunkSize() uint32 { return w.chunkSize }

// SetChunkSize sends a Set Chunk Size message and then uses n.
func (w *Writer) SetChunkSize(n uint32) error {
	if n < 1 || n > MaxChunkSize {
		return fmt.Errorf("%w: chunk size %d", ErrInvalid, n)
	}
	m := SetChunkSize(n)
	if err := w.WriteMessage(&m); err != nil {
		return err
	}
	w.chunkSize = n
	return nil
}

// WriteMessage writes m as chunks in a single Write call. Headers are
// compressed against the previous message on the same chunk stream: type 0
// for the first message, a new message stream ID or a timestamp that went
// backwards; type 1 or 2 (a delta) otherwise. A new message never starts
// with a type-3 header, whose timestamp meaning differs between readers.
// Once the internal buffer has grown to the largest message, WriteMessage
// allocates nothing.
func (w *Writer) WriteMessage(m *Message) error {
	if m.ChunkStreamID < 2 || m.ChunkStreamID > 65599 {
		return fmt.Errorf("%w: chunk stream ID %d", ErrInvalid, m.ChunkStreamID)
	}
	if len(m.Payload) > MaxMessageLength {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(m.Payload))
	}
	st := w.streams[m.ChunkStreamID]
	length := uint32(len(m.Payload))
	var fmtType byte
	var tsField uint32
	switch {
	case st == nil:
		st = &writeState{}
		w.streams[m.ChunkStreamID] = st
		fmtType, tsField = 0, m.Timestamp
	case st.streamID != m.StreamID || m.Timestamp < st.timestamp:
		fmtType, tsField = 0, m.Timestamp
	case st.typ != m.Type || st.length != length:
		fmtType, tsField = 1, m.Timestamp-st.timestamp
	default:
		fmtType, tsField = 2, m.Timestamp-st.timestamp
	}
	*st = writeState{timestamp: m.Timestamp, length: length, typ: m.Type, streamID: m.StreamID}

	ext := tsField >= extendedTimestamp
	b := appendBasicHeader(w.buf[:0], fmtType, m.ChunkStreamID)
	ts3 := min(tsField, extendedTimestamp)
	b = append(b, byte(ts3>>16), byte(ts3>>8), byte(ts3))
	if fmtType <= 1 {
		b = append(b, byte(length>>16), byte(length>>8), byte(length), m.Type)
	}
	if fmtType == 0 {
		b = binary.LittleEndian.AppendUint32(b, m.StreamID)
	}
	if ext {
		b = binary.BigEndian.AppendUint32(b, tsField)
	}
	p := m.Payload
	for {
		n := min(uint32(len(p)), w.chunkSize)
		b = append(b, p[:n]...)
		p = p[n:]
		if len(p) == 0 {
			break
		}
		b = appendBasicHeader(b, 3, m.ChunkStreamID)
		if ext {
			b = binary.BigEndian.AppendUint32(b, tsField)
		}
	}
	w.buf = b
	_, err := w.w.Write(b)
	return err
}

func appendBasicHeader(b []byte, fmtType byte, csid uint32) []byte {
	switch {
	case csid < 64:
		return append(b, fmtType<<6|byte(csid))
	case csid < 320:
		return append(b, fmtType<<6, byte(csid-64))
	default:
		return append(b, fmtType<<6|1, byte(csid-64), byte((csid-64)>>8))
	}
}
