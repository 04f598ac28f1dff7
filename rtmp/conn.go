package rtmp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"net"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
)

// The wire layers (handshake, reading chunk streams, AMF0) are gortmplib's
// (github.com/bluenviron/gortmplib/pkg/...); writing chunks is ours
// (chunkWriter: one write per message, no allocation). This package keeps the
// message and command layer on top of them: which commands a publisher
// sends and in what order, status codes and typed errors, the server's
// fan-out. It works on raw message bodies (gortmplib's rawmessage), which
// are FLV tag bodies for audio, video and data: published frames are
// encoded once, in place, by package flv and relayed without parsing, so
// any codec a peer sends passes through and the write path allocates
// nothing per frame in this layer.

// Chunk stream IDs this package writes on (the values nginx-rtmp uses).
const (
	csidControl = 2
	csidCommand = 3
	csidData    = 5
	csidAudio   = 6
	csidVideo   = 7
)

// Message types (RTMP 1.0 sections 5.4 and 7.1).
const (
	typeSetChunkSize     = 1
	typeAbort            = 2
	typeAck              = 3
	typeUserControl      = 4
	typeWindowAckSize    = 5
	typeSetPeerBandwidth = 6
	typeAudio            = 8
	typeVideo            = 9
	typeDataAMF3         = 15
	typeCommandAMF3      = 17
	typeDataAMF0         = 18
	typeCommandAMF0      = 20
)

// User control events (RTMP 1.0 section 7.1.7).
const (
	eventStreamBegin = 0
	eventStreamEOF   = 1
	eventPingRequest = 6
	eventPingReply   = 7
)

// Status codes.
const (
	codeConnectSuccess   = "NetConnection.Connect.Success"
	codeConnectRejected  = "NetConnection.Connect.Rejected"
	codePublishStart     = "NetStream.Publish.Start"
	codePublishBadName   = "NetStream.Publish.BadName"
	codeUnpublishSuccess = "NetStream.Unpublish.Success"
	codePlayReset        = "NetStream.Play.Reset"
	codePlayStart        = "NetStream.Play.Start"
	codePlayStop         = "NetStream.Play.Stop"
	codePlayUnpublish    = "NetStream.Play.UnpublishNotify"
	codePlayNotFound     = "NetStream.Play.StreamNotFound"
)

// defaultWindow is the acknowledgement window and peer bandwidth we ask
// for.
const defaultWindow = 2500000

// maxChunkSize is the largest chunk size either side may set (the field
// has 31 bits; gortmplib's reader accepts up to 10 MiB, which is also its
// largest message).
const maxChunkSize = 10 << 20

// maxAMF0Body bounds a command or data message we decode. gortmplib's
// AMF0 decoder has no nesting limit, and every nested level costs stack:
// a hostile peer's 10 MiB message of nested objects could exhaust it and
// crash the process. Commands and onMetaData are a few hundred bytes.
const maxAMF0Body = 64 << 10

// errAMF0TooLarge refuses an AMF0 body over maxAMF0Body.
var errAMF0TooLarge = errors.New("rtmp: AMF0 message too large")

// message is one RTMP message: a chunk stream, a type, a time in
// milliseconds, a message stream and a body.
type message struct {
	ChunkStreamID byte
	Type          uint8
	Timestamp     uint32
	StreamID      uint32
	Payload       []byte
}

// conn is the message layer shared by Client and Server: a raw message
// reader owned by one reading goroutine, a writer shared under wmu with a
// deadline on every write, acknowledgements and ping replies.
type conn struct {
	nc           net.Conn
	bc           *bytecounter.ReadWriter
	r            *rawmessage.Reader
	writeTimeout time.Duration

	wmu sync.Mutex
	cw  chunkWriter // under wmu
	// hold keeps encoded messages in cw until flushLocked (a batch in one
	// write); under wmu.
	hold bool
}

// newConn wraps nc after the handshake. r is what the handshake read
// through (nc itself, or a budgeted reader): it must hold no buffered
// bytes of its own.
func newConn(nc net.Conn, r io.Reader, writeTimeout time.Duration) *conn {
	c := &conn{nc: nc, writeTimeout: writeTimeout, cw: newChunkWriter()}
	c.bc = bytecounter.NewReadWriter(struct {
		io.Reader
		io.Writer
	}{r, nc})
	c.r = rawmessage.NewReader(c.bc, c.bc.Reader, func(n uint32) error {
		return c.writeControl(typeAck, n)
	})
	return c
}

// bytesRead is the number of bytes read from the connection.
func (c *conn) bytesRead() uint64 { return c.bc.Reader.Count() }

// write sends m. The payload is not retained.
func (c *conn) write(m *message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(m)
}

// writeLocked encodes m and, unless writes are held, writes it (with what
// was held before) in one write. wmu must be held.
func (c *conn) writeLocked(m *message) error {
	return c.writeHeadLocked(m, nil)
}

// writeHeadLocked is writeLocked for a body made of head followed by
// m.Payload. wmu must be held.
func (c *conn) writeHeadLocked(m *message, head []byte) error {
	if c.hold && len(c.cw.buf) > 0 && len(c.cw.buf)+len(head)+len(m.Payload) > maxKeptWriteBuffer {
		// A held batch stays within the buffer kept between writes.
		if err := c.flushLocked(); err != nil {
			return err
		}
	}
	if err := c.cw.append(m, head); err != nil {
		return err
	}
	if c.hold {
		return nil
	}
	return c.flushLocked()
}

// flushLocked writes what the chunk writer holds, with the write timeout
// as deadline. wmu must be held.
func (c *conn) flushLocked() error {
	if len(c.cw.buf) == 0 {
		return nil
	}
	defer c.cw.reset()
	if c.writeTimeout > 0 {
		if err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return err
		}
	}
	_, err := c.bc.Writer.Write(c.cw.buf)
	return err
}

// writeControl sends a protocol control message with one 32-bit value
// (chunk size, acknowledgement, window).
func (c *conn) writeControl(typ uint8, v uint32) error {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return c.write(&message{ChunkStreamID: csidControl, Type: typ, Payload: b[:]})
}

// setChunkSize announces and starts using chunk size n.
func (c *conn) setChunkSize(n uint32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], n&0x7fffffff)
	if err := c.writeLocked(&message{ChunkStreamID: csidControl, Type: typeSetChunkSize, Payload: b[:]}); err != nil {
		return err
	}
	c.cw.chunkSize = n
	return nil
}

// writePeerBandwidth sends Set Peer Bandwidth (dynamic limit).
func (c *conn) writePeerBandwidth(n uint32) error {
	b := binary.BigEndian.AppendUint32(nil, n)
	return c.write(&message{ChunkStreamID: csidControl, Type: typeSetPeerBandwidth, Payload: append(b, 2)})
}

// writeUserControl sends a user control event with one 32-bit argument.
func (c *conn) writeUserControl(event uint16, arg uint32) error {
	b := binary.BigEndian.AppendUint16(nil, event)
	return c.write(&message{ChunkStreamID: csidControl, Type: typeUserControl, Payload: binary.BigEndian.AppendUint32(b, arg)})
}

// writeCommand sends an AMF0 command or data message made of values.
// Integers among values are sent as AMF0 numbers.
func (c *conn) writeCommand(csid byte, streamID uint32, typ uint8, values ...any) error {
	for i, v := range values {
		switch n := v.(type) {
		case int:
			values[i] = float64(n)
		case uint32:
			values[i] = float64(n)
		}
	}
	b, err := amf0.Data(values).Marshal()
	if err != nil {
		return err
	}
	return c.write(&message{ChunkStreamID: csid, Type: typ, StreamID: streamID, Payload: b})
}

// readMessage returns the next message that is not protocol control:
// chunk size, abort and window changes are applied, acknowledgements
// counted by gortmplib's reader, pings answered. The payload belongs to
// the caller: gortmplib allocates every message body anew.
func (c *conn) readMessage() (message, error) {
	for {
		raw, err := c.r.Read()
		if err != nil {
			return message{}, err
		}
		m := message{
			ChunkStreamID: raw.ChunkStreamID,
			Type:          raw.Type,
			Timestamp:     uint32(raw.Timestamp / time.Millisecond),
			// gortmplib decodes the little-endian field as big-endian.
			StreamID: bits.ReverseBytes32(raw.MessageStreamID),
			Payload:  raw.Body,
		}
		switch m.Type {
		case typeSetChunkSize:
			n, err := m.uint32()
			if err != nil {
				return message{}, err
			}
			n &= 0x7fffffff
			if n == 0 {
				return message{}, errors.New("rtmp: chunk size 0")
			}
			if err := c.r.SetChunkSize(n); err != nil {
				return message{}, err
			}
			continue
		case typeAbort:
			if n, err := m.uint32(); err == nil {
				c.r.AbortChunkStream(n)
			}
			continue
		case typeWindowAckSize:
			if n, err := m.uint32(); err == nil {
				c.r.SetWindowAckSize(n)
			}
			continue
		case typeAck, typeSetPeerBandwidth:
			continue
		case typeUserControl:
			if len(m.Payload) >= 6 && binary.BigEndian.Uint16(m.Payload) == eventPingRequest {
				if err := c.writeUserControl(eventPingReply, binary.BigEndian.Uint32(m.Payload[2:])); err != nil {
					return message{}, err
				}
				continue
			}
		}
		return m, nil
	}
}

// uint32 reads a control message's 32-bit value.
func (m *message) uint32() (uint32, error) {
	if len(m.Payload) < 4 {
		return 0, fmt.Errorf("rtmp: control message type %d of %d bytes", m.Type, len(m.Payload))
	}
	return binary.BigEndian.Uint32(m.Payload), nil
}

// command is a decoded AMF0 command message.
type command struct {
	name  string
	txn   float64
	obj   any   // command object (often null)
	args  []any // what follows it
	msgID uint32
}

// decodeAMF0 decodes an AMF0 body of at most maxAMF0Body bytes.
func decodeAMF0(p []byte) (amf0.Data, error) {
	if len(p) > maxAMF0Body {
		return nil, errAMF0TooLarge
	}
	return amf0.Unmarshal(p)
}

// parseCommand decodes an AMF0 command (or an AMF3 command message, which
// starts with a format byte and then holds AMF0).
func parseCommand(m *message) (command, error) {
	p := m.Payload
	if m.Type == typeCommandAMF3 && len(p) > 0 && p[0] == 0 {
		p = p[1:]
	}
	vals, err := decodeAMF0(p)
	if err != nil {
		return command{}, err
	}
	if len(vals) < 2 {
		return command{}, errors.New("rtmp: command without name or transaction ID")
	}
	name, ok := vals[0].(string)
	if !ok {
		return command{}, errors.New("rtmp: command without name or transaction ID")
	}
	cmd := command{name: name, msgID: m.StreamID}
	cmd.txn, _ = vals[1].(float64)
	if len(vals) > 2 {
		cmd.obj = vals[2]
		cmd.args = vals[3:]
	}
	return cmd, nil
}

// objectOf returns v's properties when v is an AMF0 object or ECMA array.
func objectOf(v any) (amf0.Object, bool) {
	switch o := v.(type) {
	case amf0.Object:
		return o, true
	case amf0.ECMAArray:
		return amf0.Object(o), true
	}
	return nil, false
}

// info returns the code and description of an onStatus/_result/_error
// information object: the first Object argument (or the command object).
func (cmd *command) info() (code, desc, level string) {
	cand := append([]any{cmd.obj}, cmd.args...)
	for _, v := range cand {
		if o, ok := objectOf(v); ok {
			code, _ = o.GetString("code")
			desc, _ = o.GetString("description")
			level, _ = o.GetString("level")
			if code != "" || level != "" {
				return code, desc, level
			}
		}
	}
	return "", "", ""
}

func statusObject(level, code, desc string) amf0.Object {
	return amf0.Object{{Key: "level", Value: level}, {Key: "code", Value: code}, {Key: "description", Value: desc}}
}
