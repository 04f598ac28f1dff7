// Package chunk implements the RTMP chunk stream: it splits messages into
// chunks on one side and reassembles them on the other, and it defines the
// message types and the protocol control messages that live at this layer.
//
// The Reader applies Set Chunk Size and Abort Message itself (and still
// returns them, so a caller can see them). Acknowledgements, window sizes
// and user control events are left to the connection above, which knows
// when to write.
//
// Extended timestamps: a timestamp or delta of 0xFFFFFF or more is sent as
// 0xFFFFFF with the real value in a 4-byte extended field, and the Writer
// repeats that field in every type-3 continuation chunk of the message, as
// section 5.3.1.3 of the specification says. The Reader accepts it both
// repeated and (as some old librtmp-based encoders wrote it) missing.
//
// Memory: the Reader allocates a message's payload as its chunks arrive,
// never from the length field up front, and limits how many bytes partial
// messages may hold in total, so a hostile 16 MiB length costs nothing until
// the peer actually sends 16 MiB.
//
// Specification: Adobe RTMP Specification 1.0 (December 2012), sections
// 5.3 (chunking), 5.4 (protocol control messages), 6.2 (user control
// messages), 7.1 (message types).
package chunk

import (
	"encoding/binary"
	"errors"
)

// Message types (RTMP specification sections 5.4 and 7.1).
const (
	TypeSetChunkSize     = 1
	TypeAbort            = 2
	TypeAck              = 3
	TypeUserControl      = 4
	TypeWindowAckSize    = 5
	TypeSetPeerBandwidth = 6
	TypeAudio            = 8
	TypeVideo            = 9
	TypeDataAMF3         = 15
	TypeSharedObjectAMF3 = 16
	TypeCommandAMF3      = 17
	TypeDataAMF0         = 18
	TypeSharedObjectAMF0 = 19
	TypeCommandAMF0      = 20
	TypeAggregate        = 22
	DefaultChunkSize     = 128
	MaxChunkSize         = 0xffffff // what servers accept in practice; the field allows 2^31-1
	MaxMessageLength     = 0xffffff
	extendedTimestamp    = 0xffffff
	controlChunkStreamID = 2
)

// User control event types (RTMP specification section 7.1.7).
const (
	EventStreamBegin      = 0
	EventStreamEOF        = 1
	EventStreamDry        = 2
	EventSetBufferLength  = 3
	EventStreamIsRecorded = 4
	EventPingRequest      = 6
	EventPingResponse     = 7
)

// Peer bandwidth limit types (section 5.4.5).
const (
	LimitHard    = 0
	LimitSoft    = 1
	LimitDynamic = 2
)

// Errors.
var (
	// ErrInvalid means a malformed chunk or control message.
	ErrInvalid = errors.New("rtmp chunk: invalid input")
	// ErrTooLarge means a message longer than the Reader's limit, or
	// partial messages holding more than the Reader's buffer limit.
	ErrTooLarge = errors.New("rtmp chunk: message too large")
)

// Message is one RTMP message.
type Message struct {
	// ChunkStreamID is the chunk stream the message travels on (2 for
	// protocol control, 3 and up for the rest).
	ChunkStreamID uint32
	// Type is the message type (TypeAudio, TypeCommandAMF0, ...).
	Type uint8
	// Timestamp is in milliseconds and wraps at 2^32.
	Timestamp uint32
	// StreamID is the message stream ID (0 for the connection's NetConnection).
	StreamID uint32
	// Payload is the message body. A Message returned by Reader.ReadMessage
	// aliases the Reader's buffers: it is valid until the next ReadMessage.
	Payload []byte
}

// SetChunkSize returns a Set Chunk Size message.
func SetChunkSize(n uint32) Message { return control(TypeSetChunkSize, n&0x7fffffff) }

// Abort returns an Abort Message for chunk stream csid.
func Abort(csid uint32) Message { return control(TypeAbort, csid) }

// Ack returns an Acknowledgement carrying the sequence number (bytes
// received so far, modulo 2^32).
func Ack(seq uint32) Message { return control(TypeAck, seq) }

// WindowAckSize returns a Window Acknowledgement Size message.
func WindowAckSize(n uint32) Message { return control(TypeWindowAckSize, n) }

// SetPeerBandwidth returns a Set Peer Bandwidth message.
func SetPeerBandwidth(n uint32, limit uint8) Message {
	m := control(TypeSetPeerBandwidth, n)
	m.Payload = append(m.Payload, limit)
	return m
}

// UserControl returns a User Control message with one event and its 4-byte
// argument (a stream ID or a ping timestamp).
func UserControl(event uint16, arg uint32) Message {
	p := binary.BigEndian.AppendUint16(nil, event)
	p = binary.BigEndian.AppendUint32(p, arg)
	return Message{ChunkStreamID: controlChunkStreamID, Type: TypeUserControl, Payload: p}
}

// SetBufferLength returns the User Control event a player sends to say how
// much it buffers for stream id.
func SetBufferLength(id, ms uint32) Message {
	p := binary.BigEndian.AppendUint16(nil, EventSetBufferLength)
	p = binary.BigEndian.AppendUint32(p, id)
	p = binary.BigEndian.AppendUint32(p, ms)
	return Message{ChunkStreamID: controlChunkStreamID, Type: TypeUserControl, Payload: p}
}

func control(typ uint8, v uint32) Message {
	return Message{ChunkStreamID: controlChunkStreamID, Type: typ, Payload: binary.BigEndian.AppendUint32(nil, v)}
}

// Uint32 returns the 4-byte value of a Set Chunk Size, Abort,
// Acknowledgement, Window Acknowledgement Size or Set Peer Bandwidth
// message.
func (m *Message) Uint32() (uint32, error) {
	if len(m.Payload) < 4 {
		return 0, ErrInvalid
	}
	return binary.BigEndian.Uint32(m.Payload), nil
}

// UserEvent returns the event type and first argument of a User Control
// message.
func (m *Message) UserEvent() (event uint16, arg uint32, err error) {
	if len(m.Payload) < 6 {
		return 0, 0, ErrInvalid
	}
	return binary.BigEndian.Uint16(m.Payload), binary.BigEndian.Uint32(m.Payload[2:]), nil
}
