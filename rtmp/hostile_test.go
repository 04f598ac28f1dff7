package rtmp

import (
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/rtmp/amf0"
	"github.com/sipstream/sipstream/rtmp/chunk"
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
		ping := chunk.UserControl(chunk.EventPingRequest, 7)
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
			if ev, _, err := m.UserEvent(); m.Type == chunk.TypeUserControl && err == nil && ev == chunk.EventPingResponse {
				break
			}
		}
		synced <- nil
		<-release
	})
}

// TestHostileServerCompletedMessagesNotRetained: a server sends one large
// (but allowed) message on each of many chunk streams. The reader kept
// every chunk stream's buffer at its largest size after the message was
// done: ≈ 0.5 GiB per connection with 32 streams of 16 MiB.
func TestHostileServerCompletedMessagesNotRetained(t *testing.T) {
	const streams, size = 60, 1000 * 1000 // 60 MB through the connection
	payload := make([]byte, size)
	synced, release := make(chan error, 1), make(chan struct{})
	url := hostileServer(t, func(c *conn) error {
		if err := c.setChunkSize(64 << 10); err != nil {
			return err
		}
		for i := 0; i < streams; i++ {
			m := chunk.Message{ChunkStreamID: uint32(10 + i), Type: chunk.TypeAudio, StreamID: 1, Payload: payload}
			if err := c.write(&m); err != nil {
				return err
			}
		}
		return nil
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
	var during runtime.MemStats
	select {
	case err := <-synced:
		require.NoError(t, err)
		during = memStats()
	case err := <-dialErr:
		close(release)
		t.Fatalf("Dial ended early: %v", err)
	}
	close(release)
	<-dialErr
	held := int64(during.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap held by the client after %d messages of %d bytes on %d chunk streams: %d bytes", streams, size, streams, held)
	assert.Less(t, held, int64(4<<20))
}

// TestHostileServerPartialMessages: a server opens many chunk streams and
// leaves a large message half sent on each. The partial messages together
// must stay under a few MiB: the Client closes the connection with an
// error beyond that.
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
			h = append(h, 0, 0, 0, byte(size>>16), byte(size>>8), byte(size), chunk.TypeVideo, 1, 0, 0, 0)
			if _, err := c.nc.Write(append(h, body...)); err != nil {
				return nil // the client hung up: what we want
			}
		}
		return nil
	}, synced, release)
	defer close(release)

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
	_, err := Dial(testCtx(t), url, ClientConfig{DialTimeout: 20 * time.Second})
	close(stop)
	<-sampled
	require.ErrorIs(t, err, chunk.ErrTooLarge)
	t.Logf("Dial: %v; peak heap growth %d bytes", err, int64(peak)-int64(before.HeapAlloc))
	assert.Less(t, int64(peak)-int64(before.HeapAlloc), int64(16<<20))
}

// TestHostileServerHugeMessage: a message longer than the Client accepts
// ends the connection at its header, before anything is allocated.
func TestHostileServerHugeMessage(t *testing.T) {
	synced, release := make(chan error, 1), make(chan struct{})
	url := hostileServer(t, func(c *conn) error {
		h := []byte{3, 0, 0, 0, 0xff, 0xff, 0xf0, chunk.TypeCommandAMF0, 0, 0, 0, 0}
		_, _ = c.nc.Write(h)
		return nil
	}, synced, release)
	defer close(release)
	_, err := Dial(testCtx(t), url, ClientConfig{DialTimeout: 10 * time.Second})
	require.ErrorIs(t, err, chunk.ErrTooLarge)
	assert.NotContains(t, err.Error(), "SECRET")
}

// TestHostileServerAMF0NullArray: a _result whose argument is a strict
// array of nulls cost 16 bytes of memory per byte of input.
func TestHostileServerAMF0NullArray(t *testing.T) {
	const n = 1000 * 1000
	msg, err := amf0.Append(nil, "_result", 1.0, nil)
	require.NoError(t, err)
	msg = append(msg, amf0.MarkerStrictArray)
	msg = binary.BigEndian.AppendUint32(msg, n)
	for i := 0; i < n; i++ {
		msg = append(msg, amf0.MarkerNull)
	}
	synced, release := make(chan error, 1), make(chan struct{})
	url := hostileServer(t, func(c *conn) error {
		if err := c.setChunkSize(64 << 10); err != nil {
			return err
		}
		m := chunk.Message{ChunkStreamID: csidCommand, Type: chunk.TypeCommandAMF0, Payload: msg}
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
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated while reading a %d-byte strict array of nulls: %d bytes", len(msg), alloc)
	// Reading the message itself takes about twice its size (the chunk
	// stream's buffer grows to it); decoding was 16 bytes per null (23 MB
	// in all before the cap), now at most amf0.MaxValues values.
	assert.Less(t, alloc, uint64(8<<20))
}
