// Package flv reads and writes FLV files and builds and parses the FLV tag
// bodies that RTMP carries in its audio, video and data messages.
//
// A tag body is the same bytes in an FLV file and in an RTMP message, so
// the builders here (AVCSequenceHeader, AppendAVCFrame, AppendAACFrame,
// AppendG711Frame, OnMetaData, ...) serve both the RTMP publisher and the
// FLV recorder. The Append… builders of media frames write into a caller's
// buffer and allocate nothing once the buffer has grown to size.
//
// Specification: Adobe Flash Video File Format Specification version 10.1
// (FLV header, tags, AUDIODATA, VIDEODATA, SCRIPTDATA); ISO/IEC 14496-15
// section 5.2.4.1 (AVCDecoderConfigurationRecord); ISO/IEC 14496-3 section
// 1.6.2.1 (AudioSpecificConfig).
package flv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Tag types (FLV specification, section E.4.1).
const (
	TagAudio  = 8
	TagVideo  = 9
	TagScript = 18
)

// Tag is one FLV tag: an audio, video or script data body with its
// timestamp.
type Tag struct {
	// Type is TagAudio, TagVideo or TagScript.
	Type uint8
	// Timestamp is the tag's decoding time in milliseconds. FLV stores 32
	// bits (24 plus an 8-bit extension), so it wraps after about 49.7 days.
	Timestamp uint32
	// Data is the tag body (AUDIODATA, VIDEODATA or SCRIPTDATA). A Tag
	// returned by Reader.ReadTag owns it.
	Data []byte
}

// MaxDataSize is the largest tag body FLV can describe (24-bit DataSize).
const MaxDataSize = 1<<24 - 1

// Errors.
var (
	// ErrNotFLV means the input does not start with an FLV header.
	ErrNotFLV = errors.New("flv: not an FLV file")
	// ErrTooLarge means a tag body exceeds MaxDataSize (writing) or the
	// reader's limit (reading).
	ErrTooLarge = errors.New("flv: tag too large")
	// ErrInvalid means a malformed tag body.
	ErrInvalid = errors.New("flv: invalid tag body")
)

const (
	headerSize    = 9
	tagHeaderSize = 11
)

// Writer writes an FLV file: the header once, then tags.
type Writer struct {
	w   io.Writer
	buf [tagHeaderSize]byte
	err error
}

// NewWriter writes the FLV header (with PreviousTagSize0) to w and returns a
// Writer for the tags. hasAudio and hasVideo set the header's flags.
func NewWriter(w io.Writer, hasAudio, hasVideo bool) (*Writer, error) {
	var flags byte
	if hasAudio {
		flags |= 0x04
	}
	if hasVideo {
		flags |= 0x01
	}
	h := [headerSize + 4]byte{'F', 'L', 'V', 1, flags, 0, 0, 0, headerSize}
	if _, err := w.Write(h[:]); err != nil {
		return nil, err
	}
	return &Writer{w: w}, nil
}

// WriteTag writes one tag followed by its PreviousTagSize field. After a
// write error the Writer keeps returning that error. It makes three Write
// calls (header, body, size) and allocates nothing; wrap w in a
// bufio.Writer to batch them.
func (w *Writer) WriteTag(t Tag) error {
	if w.err != nil {
		return w.err
	}
	if len(t.Data) > MaxDataSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(t.Data))
	}
	h := w.buf[:]
	putTagHeader(h, t.Type, len(t.Data), t.Timestamp)
	if _, err := w.w.Write(h); err != nil {
		w.err = err
		return err
	}
	if _, err := w.w.Write(t.Data); err != nil {
		w.err = err
		return err
	}
	binary.BigEndian.PutUint32(h[:4], uint32(tagHeaderSize+len(t.Data)))
	if _, err := w.w.Write(h[:4]); err != nil {
		w.err = err
		return err
	}
	return nil
}

// AppendTag appends the encoding of t (tag header, body, PreviousTagSize)
// to b, for writers that batch tags themselves.
func AppendTag(b []byte, t Tag) ([]byte, error) {
	if len(t.Data) > MaxDataSize {
		return b, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(t.Data))
	}
	var h [tagHeaderSize]byte
	putTagHeader(h[:], t.Type, len(t.Data), t.Timestamp)
	b = append(b, h[:]...)
	b = append(b, t.Data...)
	return binary.BigEndian.AppendUint32(b, uint32(tagHeaderSize+len(t.Data))), nil
}

func putTagHeader(h []byte, typ uint8, size int, ts uint32) {
	h[0] = typ
	h[1], h[2], h[3] = byte(size>>16), byte(size>>8), byte(size)
	h[4], h[5], h[6] = byte(ts>>16), byte(ts>>8), byte(ts)
	h[7] = byte(ts >> 24) // TimestampExtended
	h[8], h[9], h[10] = 0, 0, 0
}

// Reader reads tags from an FLV file.
type Reader struct {
	r        io.Reader
	hdr      [tagHeaderSize]byte
	hasAudio bool
	hasVideo bool
	// MaxDataSize limits the body of a tag; a larger DataSize is an
	// ErrTooLarge error. Zero means MaxDataSize (16 MiB - 1). Memory for a
	// body is allocated as its bytes arrive, never up front from DataSize.
	MaxDataSize int
}

// NewReader reads and checks the FLV header and the first PreviousTagSize.
func NewReader(r io.Reader) (*Reader, error) {
	var h [headerSize]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFLV, err)
	}
	if h[0] != 'F' || h[1] != 'L' || h[2] != 'V' {
		return nil, ErrNotFLV
	}
	off := binary.BigEndian.Uint32(h[5:])
	if off < headerSize || off > 1<<16 {
		return nil, fmt.Errorf("%w: data offset %d", ErrNotFLV, off)
	}
	// Skip any header extension and PreviousTagSize0.
	if _, err := io.CopyN(io.Discard, r, int64(off-headerSize)+4); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotFLV, err)
	}
	return &Reader{r: r, hasAudio: h[4]&0x04 != 0, hasVideo: h[4]&0x01 != 0}, nil
}

// HasAudio and HasVideo report the header's flags.
func (r *Reader) HasAudio() bool { return r.hasAudio }

// HasVideo reports the header's video flag.
func (r *Reader) HasVideo() bool { return r.hasVideo }

// ReadTag reads the next tag. It returns io.EOF at a clean end of file and
// io.ErrUnexpectedEOF for a truncated tag. The PreviousTagSize field is read
// but not checked (writers get it wrong). The tag's Type keeps only the 5
// TagType bits (the Filter bit is dropped).
func (r *Reader) ReadTag() (Tag, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Tag{}, err
	}
	h := r.hdr[:]
	size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
	ts := uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6]) | uint32(h[7])<<24
	limit := r.MaxDataSize
	if limit <= 0 || limit > MaxDataSize {
		limit = MaxDataSize
	}
	if size > limit {
		return Tag{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, size)
	}
	data, err := readN(r.r, size)
	if err != nil {
		return Tag{}, unexpected(err)
	}
	var prev [4]byte
	if _, err := io.ReadFull(r.r, prev[:]); err != nil {
		return Tag{}, unexpected(err)
	}
	return Tag{Type: h[0] & 0x1f, Timestamp: ts, Data: data}, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readN reads exactly n bytes, growing the buffer as data arrives so that a
// hostile size cannot make it allocate more than twice what was received.
func readN(r io.Reader, n int) ([]byte, error) {
	const step = 64 << 10
	if n <= step {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	b := make([]byte, 0, step)
	for len(b) < n {
		k := min(n-len(b), step)
		if cap(b)-len(b) < k {
			nb := make([]byte, len(b), min(2*cap(b)+k, n))
			copy(nb, b)
			b = nb
		}
		if _, err := io.ReadFull(r, b[len(b):len(b)+k]); err != nil {
			return nil, err
		}
		b = b[:len(b)+k]
	}
	return b, nil
}
