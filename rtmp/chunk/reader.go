package chunk

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Reader reassembles messages from a chunk stream.
type Reader struct {
	r         *bufio.Reader
	chunkSize uint32
	streams   map[uint32]*readState
	buffered  int // bytes held by partial messages
	n         uint64
	hdr       [16]byte

	// MaxMessageLength limits a message's length. Zero means
	// MaxMessageLength (16 MiB - 1, the field's limit).
	MaxMessageLength uint32
	// MaxBuffered limits the bytes all partial (not yet complete) messages
	// may hold together. Zero means 32 MiB.
	MaxBuffered int
	// MaxChunkStreams limits how many chunk streams the peer may open.
	// Zero means 64.
	MaxChunkStreams int
	// MaxRetained is the largest buffer a chunk stream keeps for its next
	// message once a message has been returned; a larger one is dropped at
	// the next call (so the memory a peer can pin is MaxChunkStreams ×
	// MaxRetained plus MaxBuffered plus one message). Zero means 64 KiB.
	MaxRetained int

	last *readState // stream of the message returned last
}

type readState struct {
	timestamp uint32 // of the current message
	delta     uint32
	length    uint32
	typ       uint8
	streamID  uint32
	extended  bool   // the last type 0/1/2 header used an extended timestamp
	extValue  uint32 // and this was its value
	buf       []byte // payload received so far; len < length while partial
	partial   bool
}

// NewReader returns a Reader with the default chunk size of 128 bytes. If r
// is a *bufio.Reader it is used as is (bytes it already buffered, e.g.
// after the handshake, are not lost).
func NewReader(r io.Reader) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 16<<10)
	}
	return &Reader{r: br, chunkSize: DefaultChunkSize, streams: map[uint32]*readState{}}
}

// ChunkSize returns the peer's current chunk size.
func (r *Reader) ChunkSize() uint32 { return r.chunkSize }

// BytesRead returns how many bytes the Reader has consumed, for
// acknowledgements.
func (r *Reader) BytesRead() uint64 { return r.n }

func (r *Reader) read(b []byte) error {
	n, err := io.ReadFull(r.r, b)
	r.n += uint64(n)
	if err == io.EOF && r.partial() {
		err = io.ErrUnexpectedEOF
	}
	return err
}

func (r *Reader) partial() bool { return r.buffered > 0 }

// ReadMessage reads chunks until a message is complete and returns it.
// Set Chunk Size and Abort Message are applied before they are returned.
// The payload is valid until the next call.
func (r *Reader) ReadMessage() (Message, error) {
	if st := r.last; st != nil {
		// The returned payload is no longer the caller's: do not keep
		// a large buffer for a stream that may never send again.
		r.last = nil
		keep := r.MaxRetained
		if keep <= 0 {
			keep = 64 << 10
		}
		if !st.partial && cap(st.buf) > keep {
			st.buf = nil
		}
	}
	for {
		m, done, err := r.readChunk()
		if err != nil {
			return Message{}, err
		}
		if !done {
			continue
		}
		switch m.Type {
		case TypeSetChunkSize:
			n, err := m.Uint32()
			if err != nil {
				return Message{}, fmt.Errorf("%w: short Set Chunk Size", ErrInvalid)
			}
			n &= 0x7fffffff
			if n < 1 {
				return Message{}, fmt.Errorf("%w: chunk size 0", ErrInvalid)
			}
			// No message is longer than MaxMessageLength, so a larger
			// chunk size (the field allows 2^31-1) means the same.
			r.chunkSize = min(n, MaxChunkSize)
		case TypeAbort:
			id, err := m.Uint32()
			if err != nil {
				return Message{}, fmt.Errorf("%w: short Abort", ErrInvalid)
			}
			if st := r.streams[id]; st != nil && st.partial {
				r.buffered -= len(st.buf)
				st.buf = st.buf[:0]
				st.partial = false
			}
		}
		return m, nil
	}
}

func (r *Reader) readChunk() (Message, bool, error) {
	h := r.hdr[:]
	if err := r.read(h[:1]); err != nil {
		return Message{}, false, err
	}
	fmtType := h[0] >> 6
	csid := uint32(h[0] & 0x3f)
	switch csid {
	case 0:
		if err := r.read(h[:1]); err != nil {
			return Message{}, false, err
		}
		csid = 64 + uint32(h[0])
	case 1:
		if err := r.read(h[:2]); err != nil {
			return Message{}, false, err
		}
		csid = 64 + uint32(h[0]) + uint32(h[1])<<8
	}
	st := r.streams[csid]
	if st == nil {
		if fmtType != 0 {
			return Message{}, false, fmt.Errorf("%w: chunk stream %d starts with a type %d header", ErrInvalid, csid, fmtType)
		}
		limit := r.MaxChunkStreams
		if limit <= 0 {
			limit = 64
		}
		if len(r.streams) >= limit {
			return Message{}, false, fmt.Errorf("%w: more than %d chunk streams", ErrInvalid, limit)
		}
		st = &readState{}
		r.streams[csid] = st
	}

	if fmtType < 3 {
		size := [3]int{11, 7, 3}[fmtType]
		if err := r.read(h[:size]); err != nil {
			return Message{}, false, err
		}
		tsField := uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
		length, typ, sid := st.length, st.typ, st.streamID
		if fmtType <= 1 {
			length = uint32(h[3])<<16 | uint32(h[4])<<8 | uint32(h[5])
			typ = h[6]
		}
		if fmtType == 0 {
			sid = binary.LittleEndian.Uint32(h[7:])
		}
		ext := tsField == extendedTimestamp
		if ext {
			if err := r.read(h[:4]); err != nil {
				return Message{}, false, err
			}
			tsField = binary.BigEndian.Uint32(h)
		}
		max := r.MaxMessageLength
		if max == 0 {
			max = MaxMessageLength
		}
		if length > max {
			return Message{}, false, fmt.Errorf("%w: %d bytes", ErrTooLarge, length)
		}
		if st.partial {
			// A new header in the middle of a message: the sender gave
			// up on the old one.
			r.buffered -= len(st.buf)
			st.buf = st.buf[:0]
			st.partial = false
		}
		st.length, st.typ, st.streamID = length, typ, sid
		st.extended, st.extValue = ext, tsField
		if fmtType == 0 {
			st.timestamp = tsField
			// What a type-3 header that starts a new message right after
			// a type-0 one means is not settled: FFmpeg's reader adds the
			// type-0 timestamp again, nginx-rtmp's adds nothing. Follow
			// nginx-rtmp, which librtmp-based encoders (that send type 3
			// for "same timestamp") have been tested against for years.
			// Our Writer never relies on either.
			st.delta = 0
		} else {
			st.delta = tsField
			st.timestamp += tsField
		}
	} else {
		if st.extended {
			// The extended field should be repeated here; accept it
			// missing too.
			if b, err := r.r.Peek(4); err == nil && binary.BigEndian.Uint32(b) == st.extValue {
				_ = r.read(h[:4])
			}
		}
		if !st.partial {
			st.timestamp += st.delta
		}
	}

	// Read this chunk's share of the payload into the message buffer,
	// growing it only as far as the bytes that arrive.
	have := uint32(len(st.buf))
	if !st.partial {
		have = 0
		st.buf = st.buf[:0]
	}
	k := min(st.length-have, r.chunkSize)
	if k > 0 {
		maxBuf := r.MaxBuffered
		if maxBuf <= 0 {
			maxBuf = 32 << 20
		}
		if have+k < st.length && r.buffered+int(k) > maxBuf {
			return Message{}, false, fmt.Errorf("%w: partial messages hold more than %d bytes", ErrTooLarge, maxBuf)
		}
		need := int(have + k)
		if cap(st.buf) < need {
			nc := max(2*cap(st.buf), need, 256)
			nc = min(nc, int(st.length))
			nb := make([]byte, have, nc)
			copy(nb, st.buf)
			st.buf = nb
		}
		st.buf = st.buf[:need]
		if err := r.read(st.buf[have:need]); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return Message{}, false, err
		}
	}
	if have+k < st.length {
		if !st.partial {
			st.partial = true
			r.buffered += int(have + k)
		} else {
			r.buffered += int(k)
		}
		return Message{}, false, nil
	}
	if st.partial {
		r.buffered -= int(have)
		st.partial = false
	}
	r.last = st
	return Message{
		ChunkStreamID: csid,
		Type:          st.typ,
		Timestamp:     st.timestamp,
		StreamID:      st.streamID,
		Payload:       st.buf,
	}, true, nil
}
