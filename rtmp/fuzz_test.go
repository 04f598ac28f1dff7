package rtmp

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"

	"github.com/sipstream/sipstream/rtmp/flv"
)

// scriptConn is a net.Conn that reads a fixed input and discards writes.
type scriptConn struct {
	r io.Reader
}

func (c *scriptConn) Read(b []byte) (int, error)       { return c.r.Read(b) }
func (c *scriptConn) Write(b []byte) (int, error)      { return len(b), nil }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }
func (c *scriptConn) SetReadBuffer(int) error          { return nil }
func (c *scriptConn) setInput(in []byte) *scriptConn   { c.r = bytes.NewReader(in); return c }
func newScriptConn(in []byte) *scriptConn              { return (&scriptConn{}).setInput(in) }
func cmdMsg(stream uint32, vals ...any) message {
	for i, v := range vals {
		if n, ok := v.(int); ok {
			vals[i] = float64(n)
		}
	}
	b, _ := amf0.Data(vals).Marshal()
	return message{ChunkStreamID: csidCommand, Type: typeCommandAMF0, StreamID: stream, Payload: b}
}

// publishSession is what a publisher sends after the handshake: the seed
// for FuzzServerConn.
func publishSession() []byte {
	return encodeMessages(
		cmdMsg(0, "connect", 1, amf0.Object{{Key: "app", Value: "live?x=1"}, {Key: "tcUrl", Value: "rtmp://h/live"}}),
		cmdMsg(0, "releaseStream", 2, nil, "k"),
		cmdMsg(0, "createStream", 4, nil),
		cmdMsg(1, "publish", 5, nil, "k?t=1", "live"),
		message{ChunkStreamID: csidData, Type: typeDataAMF0, StreamID: 1, Payload: flv.SetDataFrame(flv.Metadata{Width: 2, VideoCodecID: 7})},
		message{ChunkStreamID: csidVideo, Type: typeVideo, StreamID: 1, Payload: flv.AppendAVCFrame(nil, true, 0, []byte{0, 0, 0, 1, 0x65})},
		message{ChunkStreamID: csidAudio, Type: typeAudio, StreamID: 1, Timestamp: 20, Payload: flv.AACSequenceHeader([]byte{0x11, 0x90})},
		cmdMsg(0, "deleteStream", 6, nil, 1),
	)
}

func playSession() []byte {
	return encodeMessages(
		cmdMsg(0, "connect", 1, amf0.Object{{Key: "app", Value: "live"}}),
		cmdMsg(0, "createStream", 2, nil),
		cmdMsg(1, "play", 3, nil, "k", -2000),
	)
}

// FuzzServerConn feeds a server connection arbitrary messages after a
// valid handshake. Invariants: no panic, and the connection's goroutines
// end when the input does.
func FuzzServerConn(f *testing.F) {
	f.Add(publishSession())
	f.Add(playSession())
	f.Add(append(playSession(), publishSession()...))
	hs := make([]byte, 1+2*1536) // C0, C1, C2 of the plain handshake
	hs[0] = 3
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := NewServer(ServerConfig{PlayerQueue: 8})
		if err != nil {
			t.Fatal(err)
		}
		sub := s.Subscribe("live", "k", 4)
		s.wg.Add(1)
		s.handle(newScriptConn(append(append([]byte(nil), hs...), in...)))
		sub.Close()
		s.Close()
	})
}

// FuzzCommand decodes arbitrary command messages: no panic.
func FuzzCommand(f *testing.F) {
	for _, m := range []message{cmdMsg(0, "connect", 1, amf0.Object{{Key: "app", Value: "a"}}), cmdMsg(0, "onStatus", 0, nil, statusObject("error", codePublishBadName, "x"))} {
		f.Add(m.Payload)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, typ := range []uint8{typeCommandAMF0, typeCommandAMF3} {
			m := message{Type: typ, Payload: in}
			if cmd, err := parseCommand(&m); err == nil {
				_, _, _ = cmd.info()
			}
		}
	})
}

// FuzzParseURL: no panic, and neither errors nor String reveal the
// password or stream key.
func FuzzParseURL(f *testing.F) {
	f.Add("rtmp://u:PASSWORD@h:1935/live/KEY?x=1")
	f.Add("rtmps://h/app/inst/KEY")
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := ParseURL(raw)
		if err != nil {
			return
		}
		s := u.String()
		if u.Password() != "" && len(u.Password()) > 4 && bytes.Contains([]byte(s), []byte(":"+u.Password()+"@")) {
			t.Fatalf("password in %q", s)
		}
		if u.Stream != "" && len(u.Stream) > 8 && bytes.HasSuffix([]byte(s), []byte("/"+u.Stream)) {
			t.Fatalf("stream key in %q", s)
		}
	})
}
