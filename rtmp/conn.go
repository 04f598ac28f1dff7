package rtmp

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/sipstream/sipstream/rtmp/amf0"
	"github.com/sipstream/sipstream/rtmp/chunk"
)

// Chunk stream IDs this package writes on (the values nginx-rtmp uses).
const (
	csidControl = 2
	csidCommand = 3
	csidData    = 5
	csidAudio   = 6
	csidVideo   = 7
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

const defaultWindow = 2500000

// conn is the message layer shared by Client and Server: a chunk reader
// owned by one reading goroutine, a chunk writer shared under wmu with a
// deadline on every write, and acknowledgements.
type conn struct {
	nc           net.Conn
	r            *chunk.Reader
	writeTimeout time.Duration

	wmu sync.Mutex
	w   *chunk.Writer
	cmd []byte // scratch for command encoding, under wmu

	// reading side only
	window uint32 // peer's acknowledgement window
	acked  uint64 // BytesRead at the last Ack sent
}

func newConn(nc net.Conn, br *bufio.Reader, writeTimeout time.Duration) *conn {
	return &conn{
		nc:           nc,
		r:            chunk.NewReader(br),
		w:            chunk.NewWriter(nc),
		writeTimeout: writeTimeout,
	}
}

// write writes one message with the write deadline. The caller must not
// hold wmu.
func (c *conn) write(m *chunk.Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(m)
}

func (c *conn) writeLocked(m *chunk.Message) error {
	if c.writeTimeout > 0 {
		if err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return err
		}
	}
	return c.w.WriteMessage(m)
}

func (c *conn) setChunkSize(n uint32) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.writeTimeout > 0 {
		if err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
			return err
		}
	}
	return c.w.SetChunkSize(n)
}

// writeCommand encodes an AMF0 command and writes it.
func (c *conn) writeCommand(csid, streamID uint32, typ uint8, values ...any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	b, err := amf0.Append(c.cmd[:0], values...)
	if err != nil {
		return err
	}
	c.cmd = b
	return c.writeLocked(&chunk.Message{ChunkStreamID: csid, Type: typ, StreamID: streamID, Payload: b})
}

// readMessage returns the next message that is not handled here. It
// answers pings, tracks the acknowledgement window and sends
// acknowledgements. The payload is valid until the next call.
func (c *conn) readMessage() (chunk.Message, error) {
	for {
		m, err := c.r.ReadMessage()
		if err != nil {
			return m, err
		}
		if c.window > 0 && c.r.BytesRead()-c.acked >= uint64(c.window) {
			c.acked = c.r.BytesRead()
			ack := chunk.Ack(uint32(c.acked))
			if err := c.write(&ack); err != nil {
				return chunk.Message{}, err
			}
		}
		switch m.Type {
		case chunk.TypeSetChunkSize, chunk.TypeAbort, chunk.TypeAck:
			continue
		case chunk.TypeWindowAckSize:
			if n, err := m.Uint32(); err == nil {
				c.window = n
			}
			continue
		case chunk.TypeSetPeerBandwidth:
			continue
		case chunk.TypeUserControl:
			ev, arg, err := m.UserEvent()
			if err != nil {
				continue
			}
			if ev == chunk.EventPingRequest {
				pong := chunk.UserControl(chunk.EventPingResponse, arg)
				if err := c.write(&pong); err != nil {
					return chunk.Message{}, err
				}
				continue
			}
		}
		return m, nil
	}
}

// command is a decoded command message.
type command struct {
	name  string
	txn   float64
	obj   any   // command object (often null)
	args  []any // what follows it
	msgID uint32
}

// parseCommand decodes an AMF0 command (or an AMF3 command message, which
// starts with a format byte and then holds AMF0).
func parseCommand(m *chunk.Message) (command, error) {
	p := m.Payload
	if m.Type == chunk.TypeCommandAMF3 && len(p) > 0 && p[0] == 0 {
		p = p[1:]
	}
	vals, err := amf0.DecodeAll(p)
	if err != nil && len(vals) < 2 {
		return command{}, err
	}
	if len(vals) < 2 {
		return command{}, fmt.Errorf("%w: command without name or transaction ID", amf0.ErrInvalid)
	}
	name, ok := vals[0].(string)
	if !ok {
		return command{}, fmt.Errorf("%w: command without name or transaction ID", amf0.ErrInvalid)
	}
	cmd := command{name: name, msgID: m.StreamID}
	cmd.txn, _ = vals[1].(float64)
	if len(vals) > 2 {
		cmd.obj = vals[2]
		cmd.args = vals[3:]
	}
	return cmd, nil
}

// info returns the code and description of an onStatus/_result/_error
// information object: the first Object argument (or the command object).
func (cmd *command) info() (code, desc, level string) {
	cand := append([]any{cmd.obj}, cmd.args...)
	for _, v := range cand {
		if ps, ok := amf0.Properties(v); ok {
			o := amf0.Object(ps)
			code, _ = o.String("code")
			desc, _ = o.String("description")
			level, _ = o.String("level")
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
