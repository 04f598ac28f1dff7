package rtmp

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/bluenviron/gortmplib/pkg/amf0"
)

// The API caller picks rtmpUrl, so the RTMP server a Client talks to may be
// hostile. These tests play such servers against Dial and measure what the
// Client's reader keeps.

func memStats() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// hostileServer answers the handshake, waits for connect, runs attack,
// then pings the client (so the client has read everything once the pong
// comes back), reports on synced and holds the connection until release is
// closed.
func hostileServer(t *testing.T, attack func(c *conn) error, synced chan<- error, release <-chan struct{}) string {
	return fakeServer(t, func(c *conn) {
		if _, err := nextCommand(c); err != nil {
			synced <- err
			return
		}
		if err := attack(c); err != nil {
			synced <- err
			return
		}
		ping := userControl(eventPingRequest, 7)
		if err := c.write(&ping); err != nil {
			synced <- err
			return
		}
		for {
			m, err := c.readMessage()
			if err != nil {
				synced <- err
				return
			}
			if ev, _, err := m.userEvent(); m.Type == typeUserControl && err == nil && ev == eventPingReply {
				break
			}
		}
		synced <- nil
		<-release
	})
}

// dialPeak dials url and samples the heap while Dial runs; it returns
// the peak heap growth and Dial's error.
func dialPeak(t *testing.T, url string) (int64, error) {
	before := memStats()
	var peak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	cl, err := Dial(testCtx(t), url, ClientConfig{DialTimeout: 20 * time.Second})
	if cl != nil {
		cl.Close()
	}
	close(stop)
	<-sampled
	return int64(peak) - int64(before.HeapAlloc), err
}

// TestHostileServerCompletedMessages: a server sends one large message on
// each of many chunk streams (60 MB in all). gortmplib's reader keeps a
// completed message's chunks referenced until that chunk stream's next
// message; the Client's read budget (a publisher expects about a byte a
// second from its server) ends the connection at 1 MiB instead.
func TestHostileServerCompletedMessages(t *testing.T) {
	const streams, size = 60, 1000 * 1000
	payload := make([]byte, size)
	synced, release := make(chan error, 1), make(chan struct{})
	url := hostileServer(t, func(c *conn) error {
		if err := c.setChunkSize(64 << 10); err != nil {
			return err
		}
		for i := 0; i < streams; i++ {
			m := message{ChunkStreamID: byte(4 + i), Type: typeAudio, StreamID: 1, Payload: payload}
			if err := c.write(&m); err != nil {
				return nil // the client hung up: what we want
			}
		}
		return nil
	}, synced, release)
	defer close(release)
	peak, err := dialPeak(t, url)
	require.ErrorIs(t, err, errReadBudget)
	assert.NotContains(t, err.Error(), "SECRET")
	t.Logf("Dial: %v; peak heap growth %d bytes", err, peak)
	assert.Less(t, peak, int64(16<<20))
}

// TestHostileServerPartialMessages: a server opens many chunk streams and
// sends half of a large message on each. gortmplib holds up to 10 MiB per
// partial message; the read budget stops the connection after 1 MiB.
func TestHostileServerPartialMessages(t *testing.T) {
	const streams = 60
	var size = 1000 * 1000
	body := make([]byte, size/2)
	synced, release := make(chan error, 1), make(chan struct{})
	url := hostileServer(t, func(c *conn) error {
		if err := c.setChunkSize(uint32(size / 2)); err != nil {
			return err
		}
		for i := 0; i < streams; i++ {
			// A type-0 header announcing size bytes, then only half of them.
			h := []byte{byte(4 + i%60)}
			h = append(h, 0, 0, 0, byte(size>>16), byte(size>>8), byte(size), typeVideo, 1, 0, 0, 0)
			if _, err := c.nc.Write(append(h, body...)); err != nil {
				return nil // the client hung up: what we want
			}
		}
		return nil
	}, synced, release)
	defer close(release)
	peak, err := dialPeak(t, url)
	require.ErrorIs(t, err, errReadBudget)
	t.Logf("Dial: %v; peak heap growth %d bytes", err, peak)
	assert.Less(t, peak, int64(16<<20))
}

// TestHostileServerHugeMessage: a message longer than gortmplib accepts
// (10 MiB) ends the connection at its first chunk, before the message is
// gathered.
func TestHostileServerHugeMessage(t *testing.T) {
	synced, release := make(chan error, 1), make(chan struct{})
	url := hostileServer(t, func(c *conn) error {
		h := []byte{3, 0, 0, 0, 0xff, 0xff, 0xf0, typeCommandAMF0, 0, 0, 0, 0}
		_, _ = c.nc.Write(append(h, make([]byte, 128)...)) // header and first chunk
		return nil
	}, synced, release)
	defer close(release)
	_, err := Dial(testCtx(t), url, ClientConfig{DialTimeout: 10 * time.Second})
	require.ErrorContains(t, err, "exceeds maximum")
	assert.NotContains(t, err.Error(), "SECRET")
}

// hostileAMF0 sends a _result for connect made of "_result", 1, null and
// then tail, and checks that the Client survives reading it: the command
// is not decoded (so not taken as connect's answer) and the connection
// goes on. It returns the bytes allocated meanwhile.
func hostileAMF0(t *testing.T, tail []byte) uint64 {
	msg, err := amf0.Data{"_result", 1.0, nil}.Marshal()
	require.NoError(t, err)
	msg = append(msg, tail...)
	synced, release := make(chan error, 1), make(chan struct{})
	url := hostileServer(t, func(c *conn) error {
		if err := c.setChunkSize(64 << 10); err != nil {
			return err
		}
		m := message{ChunkStreamID: csidCommand, Type: typeCommandAMF0, Payload: msg}
		return c.write(&m)
	}, synced, release)

	before := memStats()
	dialErr := make(chan error, 1)
	go func() {
		cl, err := Dial(testCtx(t), url, ClientConfig{DialTimeout: 20 * time.Second})
		if cl != nil {
			cl.Close()
		}
		dialErr <- err
	}()
	select {
	case err := <-synced:
		require.NoError(t, err)
	case err := <-dialErr:
		close(release)
		t.Fatalf("Dial ended early: %v", err)
	}
	after := memStats()
	close(release)
	<-dialErr
	return after.TotalAlloc - before.TotalAlloc
}

// TestHostileServerAMF0NullArray: a _result whose argument is a strict
// array of a million nulls (16 bytes of memory per byte of input once
// decoded) is over maxAMF0Body and never decoded.
func TestHostileServerAMF0NullArray(t *testing.T) {
	const n = 1000 * 1000
	tail := binary.BigEndian.AppendUint32([]byte{0x0a}, n) // strict array
	for i := 0; i < n; i++ {
		tail = append(tail, 0x05) // null
	}
	alloc := hostileAMF0(t, tail)
	t.Logf("allocated while reading a %d-byte strict array of nulls: %d bytes", len(tail), alloc)
	// Reading the message itself takes about twice its size.
	assert.Less(t, alloc, uint64(8<<20))
}

// TestHostileServerAMF0Nesting: gortmplib's AMF0 decoder recurses once per
// nesting level with no limit; 200 000 nested strict arrays would cost a
// deep stack (a stack overflow is fatal, not a panic). Bodies over
// maxAMF0Body are not decoded, and under it the depth stays harmless.
func TestHostileServerAMF0Nesting(t *testing.T) {
	var tail []byte
	for i := 0; i < 200000; i++ {
		tail = append(tail, 0x0a, 0, 0, 0, 1) // a strict array of one element
	}
	hostileAMF0(t, append(tail, 0x05))

	tail = tail[:(maxAMF0Body-64)/5*5]
	vals, err := decodeAMF0(append(append([]byte{0x02, 0, 1, 'x'}, tail...), 0x05))
	require.NoError(t, err, "13 000 levels decode")
	require.Len(t, vals, 2)
}
