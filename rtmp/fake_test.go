package rtmp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/bits"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/handshake"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"
)

// fakeServer accepts one connection, does the handshake and hands the
// connection to script, which plays a server. It returns the URL to dial.
func fakeServer(t testing.TB, script func(c *conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		if _, _, err := handshake.DoServer(nc, false); err != nil {
			return
		}
		script(newConn(nc, nc, 5*time.Second))
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return "rtmp://" + l.Addr().String() + "/live/SECRET"
}

// userControl is a user control message with one argument.
func userControl(ev uint16, arg uint32) message {
	b := binary.BigEndian.AppendUint16(nil, ev)
	return message{ChunkStreamID: csidControl, Type: typeUserControl, Payload: binary.BigEndian.AppendUint32(b, arg)}
}

// windowAckSize is a Window Acknowledgement Size message.
func windowAckSize(n uint32) message {
	return message{ChunkStreamID: csidControl, Type: typeWindowAckSize, Payload: binary.BigEndian.AppendUint32(nil, n)}
}

// userEvent decodes a user control message.
func (m *message) userEvent() (ev uint16, arg uint32, err error) {
	if m.Type != typeUserControl || len(m.Payload) < 6 {
		return 0, 0, errors.New("not a user control event")
	}
	return binary.BigEndian.Uint16(m.Payload), binary.BigEndian.Uint32(m.Payload[2:]), nil
}

// readRaw reads the next message as it is, control messages included.
func readRaw(c *conn) (message, error) {
	raw, err := c.r.Read()
	if err != nil {
		return message{}, err
	}
	return message{ChunkStreamID: raw.ChunkStreamID, Type: raw.Type, Timestamp: uint32(raw.Timestamp / time.Millisecond),
		StreamID: bits.ReverseBytes32(raw.MessageStreamID), Payload: raw.Body}, nil
}

// encodeMessages returns msgs as chunks (chunk size 128).
func encodeMessages(msgs ...message) []byte {
	var buf bytes.Buffer
	bc := bytecounter.NewWriter(&buf)
	w := rawmessage.NewWriter(bc, bc, false)
	for _, m := range msgs {
		_ = w.Write(&rawmessage.Message{ChunkStreamID: m.ChunkStreamID, Timestamp: time.Duration(m.Timestamp) * time.Millisecond,
			Type: m.Type, MessageStreamID: bits.ReverseBytes32(m.StreamID), Body: m.Payload})
	}
	return buf.Bytes()
}

// nextCommand reads until a command arrives.
func nextCommand(c *conn) (command, error) {
	for {
		m, err := c.readMessage()
		if err != nil {
			return command{}, err
		}
		if m.Type == typeCommandAMF0 {
			return parseCommand(&m)
		}
	}
}

func result(c *conn, txn float64, args ...any) error {
	return c.writeCommand(csidCommand, 0, typeCommandAMF0, append([]any{"_result", txn}, args...)...)
}

func onStatus(c *conn, level, code string) error {
	return c.writeCommand(csidCommand, 1, typeCommandAMF0, "onStatus", 0, nil, statusObject(level, code, "test"))
}

// serveUntil answers connect and createStream like a compliant server,
// ignores releaseStream and FCPublish, and calls onPublish for publish.
func serveUntilPublish(c *conn, onPublish func(cmd command) error) error {
	for {
		cmd, err := nextCommand(c)
		if err != nil {
			return err
		}
		switch cmd.name {
		case "connect":
			if err := result(c, cmd.txn, nil, statusObject("status", codeConnectSuccess, "ok")); err != nil {
				return err
			}
		case "createStream":
			if err := result(c, cmd.txn, nil, 1.0); err != nil {
				return err
			}
		case "publish":
			return onPublish(cmd)
		}
	}
}

func TestPublishSequenceFailures(t *testing.T) {
	for _, c := range []struct {
		name     string
		script   func(c *conn)
		stage    string
		code     string
		badName  bool
		rejected bool
	}{
		{name: "closed after handshake", script: func(c *conn) {}, stage: "connect"},
		{name: "connect rejected", stage: "connect", code: codeConnectRejected, rejected: true, script: func(c *conn) {
			cmd, _ := nextCommand(c)
			_ = c.writeCommand(csidCommand, 0, typeCommandAMF0, "_error", cmd.txn, nil, statusObject("error", codeConnectRejected, "no"))
			time.Sleep(100 * time.Millisecond)
		}},
		{name: "bad name", stage: "publish", code: codePublishBadName, badName: true, rejected: true, script: func(c *conn) {
			_ = serveUntilPublish(c, func(command) error { return onStatus(c, "error", codePublishBadName) })
			time.Sleep(100 * time.Millisecond)
		}},
		{name: "publish _error", stage: "publish", code: "_error", rejected: true, script: func(c *conn) {
			_ = serveUntilPublish(c, func(cmd command) error {
				return c.writeCommand(csidCommand, 0, typeCommandAMF0, "_error", cmd.txn, nil)
			})
			time.Sleep(100 * time.Millisecond)
		}},
		{name: "closed instead of publish status", stage: "publish", script: func(c *conn) {
			_ = serveUntilPublish(c, func(command) error { return nil })
		}},
		{name: "createStream _error", stage: "createStream", code: "NetStream.Failed", rejected: true, script: func(c *conn) {
			for {
				cmd, err := nextCommand(c)
				if err != nil {
					return
				}
				switch cmd.name {
				case "connect":
					_ = result(c, cmd.txn, nil, nil)
				case "createStream":
					_ = c.writeCommand(csidCommand, 0, typeCommandAMF0, "_error", cmd.txn, nil, statusObject("error", "NetStream.Failed", ""))
					time.Sleep(100 * time.Millisecond)
					return
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			url := fakeServer(t, c.script)
			_, err := Dial(testCtx(t), url, ClientConfig{})
			var pe *PublishError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, c.stage, pe.Stage)
			require.Equal(t, c.code, pe.Code)
			require.Equal(t, c.badName, errors.Is(err, ErrBadName))
			require.Equal(t, c.rejected, errors.Is(err, ErrRejected))
			require.NotContains(t, err.Error(), "SECRET")
		})
	}
}

// TestDialTimeout: a server that never answers createStream makes Dial
// give up after DialTimeout.
func TestDialTimeout(t *testing.T) {
	url := fakeServer(t, func(c *conn) {
		for {
			cmd, err := nextCommand(c)
			if err != nil {
				return
			}
			if cmd.name == "connect" {
				_ = result(c, cmd.txn, nil, nil)
			}
		}
	})
	_, err := Dial(testCtx(t), url, ClientConfig{DialTimeout: 300 * time.Millisecond})
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

// stalledServer accepts the publication and then never reads again. It
// returns when the client goes away or the test ends.
func stalledServer(t *testing.T) string {
	stop := make(chan struct{})
	url := fakeServer(t, func(c *conn) {
		if serveUntilPublish(c, func(command) error { return onStatus(c, "status", codePublishStart) }) != nil {
			return
		}
		<-stop
	})
	t.Cleanup(func() { close(stop) }) // runs before fakeServer's cleanup
	return url
}

func bigFrame() []byte {
	b := make([]byte, 256<<10)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	b[4] = 0x41
	return b
}

// TestStalledServer: with a server that stops reading, writes fail after
// WriteTimeout instead of queueing.
func TestStalledServer(t *testing.T) {
	url := stalledServer(t)
	c, err := Dial(testCtx(t), url, ClientConfig{WriteTimeout: 200 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	sps, pps := clipParamSets(t)
	require.NoError(t, c.WriteAVCConfig(sps, pps))
	frame := bigFrame()
	deadline := time.Now().Add(testTimeout)
	for err == nil && time.Now().Before(deadline) {
		err = c.WriteH264(0, 0, frame, true)
	}
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "%v", err)
	require.Equal(t, err, c.Err())
	require.Equal(t, err, c.WriteG711(0, true, []byte{1}), "the Client stays failed")
}

// TestCloseUnblocksWrite: Close ends a write blocked on a stalled server
// long before its WriteTimeout.
func TestCloseUnblocksWrite(t *testing.T) {
	url := stalledServer(t)
	c, err := Dial(testCtx(t), url, ClientConfig{WriteTimeout: time.Hour})
	require.NoError(t, err)
	sps, pps := clipParamSets(t)
	require.NoError(t, c.WriteAVCConfig(sps, pps))
	errc := make(chan error, 1)
	go func() {
		frame := bigFrame()
		for {
			if err := c.WriteH264(0, 0, frame, true); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // let the socket buffers fill
	require.NoError(t, c.Close())
	select {
	case err := <-errc:
		require.Error(t, err)
	case <-time.After(testTimeout):
		t.Fatal("write still blocked after Close")
	}
	require.ErrorIs(t, c.WriteG711(0, true, []byte{1}), ErrClosed)
}

// TestPingAndAcknowledgement: the Client answers a ping request and
// acknowledges bytes once the server's window is reached.
func TestPingAndAcknowledgement(t *testing.T) {
	type seen struct {
		pong uint32
		ack  uint32
	}
	res := make(chan seen, 1)
	url := fakeServer(t, func(c *conn) {
		if serveUntilPublish(c, func(command) error { return onStatus(c, "status", codePublishStart) }) != nil {
			return
		}
		win := windowAckSize(200)
		ping := userControl(eventPingRequest, 4242)
		_ = c.write(&win)
		_ = c.write(&ping)
		for i := 0; i < 10; i++ { // well over 200 bytes
			_ = onStatus(c, "status", "NetStream.Info.Filler")
		}
		var s seen
		for s.pong == 0 || s.ack == 0 {
			m, err := readRaw(c)
			if err != nil {
				return
			}
			switch m.Type {
			case typeUserControl:
				if ev, arg, err := m.userEvent(); err == nil && ev == eventPingReply {
					s.pong = arg
				}
			case typeAck:
				s.ack, _ = m.uint32()
			}
		}
		res <- s
	})
	c, err := Dial(testCtx(t), url, ClientConfig{})
	require.NoError(t, err)
	defer c.Close()
	select {
	case s := <-res:
		require.Equal(t, uint32(4242), s.pong)
		require.GreaterOrEqual(t, s.ack, uint32(200))
	case <-time.After(testTimeout):
		t.Fatal("no ping response or acknowledgement")
	}
}

// TestServerEndsStream: an error status while publishing fails the Client.
func TestServerEndsStream(t *testing.T) {
	url := fakeServer(t, func(c *conn) {
		if serveUntilPublish(c, func(command) error { return onStatus(c, "status", codePublishStart) }) != nil {
			return
		}
		// A late _error for FCPublish is harmless; the error status is not.
		_ = c.writeCommand(csidCommand, 0, typeCommandAMF0, "_error", 3, nil, statusObject("error", "NetStream.Publish.Denied", "x"))
		_ = onStatus(c, "error", "NetStream.Publish.Idle")
		_, _ = nextCommand(c) // until the client hangs up
	})
	c, err := Dial(testCtx(t), url, ClientConfig{})
	require.NoError(t, err)
	defer c.Close()
	select {
	case <-c.Done():
	case <-time.After(testTimeout):
		t.Fatal("Done not closed")
	}
	var pe *PublishError
	require.ErrorAs(t, c.Err(), &pe)
	require.Equal(t, "NetStream.Publish.Idle", pe.Code)
	require.ErrorIs(t, c.WriteG711(0, true, []byte{1}), ErrRejected)
}
