package sip

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openFDs counts this process's open file descriptors (Linux), -1 elsewhere.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// waitFor polls cond until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// junkDatagram is either random bytes or a SIP response that matches no
// transaction (it gets past any "looks like SIP" check and through sipgo's
// parser, so only a bounded table saves us from it).
func junkDatagram(rng *rand.Rand, i int) []byte {
	if i%2 == 0 {
		b := make([]byte, 20+rng.Intn(400))
		rng.Read(b)
		return b
	}
	return fmt.Appendf(nil, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%d\r\n"+
		"From: <sip:a@x>;tag=%d\r\nTo: <sip:b@x>\r\nCall-ID: junk%d\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		1+rng.Intn(65000), rng.Int63(), i, i)
}

// TestUDPJunkFromManySourcesIsForgotten: 20,000 datagrams from 20,000
// source ports. sipgo v1.7.2 adds every source address to its UDP pool
// (and to a private map of its read loop) and never removes it: 4,703
// entries were left after such a flood. The UA must forget them.
func TestUDPJunkFromManySourcesIsForgotten(t *testing.T) {
	ua := newTestUA(t, func(c *Config) {
		c.UDPSourceTimeout = 300 * time.Millisecond
	})
	pool := ua.sua.TransportLayer().Pool("udp")
	basePool := pool.Size()
	baseG := runtime.NumGoroutine()
	baseFD := openFDs()
	baseHeap := heapAlloc()

	rng := rand.New(rand.NewSource(12))
	var heaps []uint64
	for round := 1; round <= 2; round++ {
		floodUDP(t, ua.ListenPort("udp"), rng, 20000)
		// The reader answers a real request only after what was queued before it.
		require.NoError(t, pingUA(ua))
		t.Logf("round %d: udp pool entries before %d, after the flood %d", round, basePool, pool.Size())

		ok := waitFor(10*time.Second, func() bool { return pool.Size() <= basePool && ua.udpGuard.size() == 0 })
		t.Logf("round %d: udp pool entries once idle: %d", round, pool.Size())
		require.True(t, ok, "pool still holds %d entries (baseline %d)", pool.Size(), basePool)

		require.True(t, waitFor(5*time.Second, func() bool { return runtime.NumGoroutine() <= baseG }),
			"goroutines %d, baseline %d", runtime.NumGoroutine(), baseG)
		require.LessOrEqual(t, openFDs(), baseFD)
		time.Sleep(500 * time.Millisecond) // a sweep or two: sipgo's read loop is recycled
		heaps = append(heaps, heapAlloc())
		t.Logf("round %d: heap before %d, after %d (delta %d)", round, baseHeap, heaps[round-1], int64(heaps[round-1])-int64(baseHeap))
	}
	// What stays is the room sipgo's pool map grew to (a Go map never
	// shrinks), bounded by MaxUDPSources: a second flood adds no more
	// entries. Remembering the 20,000 sources cost +1.83 MB a flood; the
	// bounds leave room for the heap's own noise (a few hundred KB under
	// -race on a loaded machine) and still catch that.
	assert.Less(t, int64(heaps[0])-int64(baseHeap), int64(1<<20))
	assert.Less(t, int64(heaps[1])-int64(baseHeap), int64(1<<20), "second flood grew the heap")
	assert.Less(t, int64(heaps[1])-int64(heaps[0]), int64(512<<10), "second flood grew the heap")

	// And the UA still works.
	require.NoError(t, pingUA(ua))
}

// floodUDP sends n junk datagrams to port, each from a new source port.
func floodUDP(t *testing.T, port int, rng *rand.Rand, n int) {
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	for i := 0; i < n; i++ {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		_, err = c.WriteTo(junkDatagram(rng, i), dst)
		c.Close()
		require.NoError(t, err)
		if i%500 == 499 {
			time.Sleep(2 * time.Millisecond) // let the reader keep up (loopback drops when the buffer fills)
		}
	}
}

// pingUA sends an OPTIONS to ua over UDP and waits for any answer.
func pingUA(ua *UA) error {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	defer c.Close()
	port := c.LocalAddr().(*net.UDPAddr).Port
	msg := "OPTIONS sip:x@127.0.0.1:" + strconv.Itoa(ua.ListenPort("udp")) + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:" + strconv.Itoa(port) + ";branch=z9hG4bKping" + strconv.Itoa(rand.Int()) + ";rport\r\n" +
		"From: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: ping" + strconv.Itoa(rand.Int()) + "\r\n" +
		"CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ua.ListenPort("udp")}
	buf := make([]byte, 4096)
	for try := 0; try < 5; try++ {
		if _, err := c.WriteTo([]byte(msg), dst); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		if _, _, err := c.ReadFrom(buf); err == nil {
			return nil
		}
	}
	return fmt.Errorf("no answer to OPTIONS")
}

// TestTCPIdleConnectionsClosed: 1,000 idle connections. sipgo reads incoming TCP without a
// deadline, so idle strangers held a goroutine, a 64 KiB buffer and a
// descriptor each, forever.
func TestTCPIdleConnectionsClosed(t *testing.T) {
	ua := newTestUA(t, func(c *Config) { c.TCPIdleTimeout = 500 * time.Millisecond })
	baseG := runtime.NumGoroutine()
	baseFD := openFDs()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ua.ListenPort("tcp")))
	const n = 1000 // the figure
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp4", addr)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	// A connection that sends keeps being served (each read rearms the
	// timeout). It is the last one dialled: dialling a thousand can take
	// longer than the idle timeout on a loaded machine.
	busy, idle := conns[n-1], conns[:n-1]
	closed := make(chan int, n)
	for _, c := range idle {
		go func(c net.Conn) {
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := c.Read(make([]byte, 1))
			if err != nil && !isTimeout(err) {
				closed <- 1
				return
			}
			closed <- 0
		}(c)
	}
	for i := 0; i < 6; i++ {
		time.Sleep(200 * time.Millisecond)
		// RFC 5626 ping; the UA answers a pong. A pong read before the
		// next ping keeps sipgo from seeing two pings as one 8-byte read.
		_, err := busy.Write([]byte("\r\n\r\n"))
		require.NoError(t, err)
		_ = busy.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = io.ReadFull(busy, make([]byte, 2))
		require.NoError(t, err, "the connection in use was closed")
	}
	got := 0
	for i := 0; i < n-1; i++ {
		got += <-closed
	}
	assert.Equal(t, n-1, got, "idle connections closed by the UA")
	for _, c := range idle {
		c.Close()
	}
	assert.True(t, waitFor(5*time.Second, func() bool { return runtime.NumGoroutine() <= baseG+1 }),
		"goroutines %d, baseline %d", runtime.NumGoroutine(), baseG)
	assert.True(t, waitFor(5*time.Second, func() bool { return openFDs() <= baseFD+2 }),
		"fds %d, baseline %d", openFDs(), baseFD)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestTCPConnectionCap: connections beyond MaxTCPConns are closed at once.
func TestTCPConnectionCap(t *testing.T) {
	ua := newTestUA(t, func(c *Config) { c.MaxTCPConns = 20 })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ua.ListenPort("tcp")))
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < 40; i++ {
		c, err := net.Dial("tcp4", addr)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	open := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		if isTimeout(err) {
			open++
		}
	}
	assert.Equal(t, 20, open)
	// Once some close, new connections are served again.
	for _, c := range conns[:5] {
		c.Close()
	}
	require.True(t, waitFor(2*time.Second, func() bool {
		g := ua.tcpLn.(*tcpGuard)
		return g.active.Load() <= 15
	}))
	c, err := net.Dial("tcp4", addr)
	require.NoError(t, err)
	conns = append(conns, c)
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err = c.Read(make([]byte, 1))
	assert.True(t, isTimeout(err), "new connection refused: %v", err)
}

// TestUDPSourceCap: while MaxUDPSources sources are known, new ones are
// dropped; known ones still get through.
func TestUDPSourceCap(t *testing.T) {
	ua := newTestUA(t, func(c *Config) { c.MaxUDPSources = 10; c.UDPSourceTimeout = time.Hour })
	rng := rand.New(rand.NewSource(1))
	floodUDP(t, ua.ListenPort("udp"), rng, 100)
	require.True(t, waitFor(2*time.Second, func() bool { return ua.udpGuard.size() == 10 }), "sources %d", ua.udpGuard.size())
	assert.Error(t, pingUA(ua), "a new source got through a full table")
	assert.LessOrEqual(t, ua.sua.TransportLayer().Pool("udp").Size(), 11)
}

func TestMaybeSIP(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"INVITE sip:bob@x SIP/2.0\r\nVia: x\r\n", true},
		{"OPTIONS sip:x SIP/2.0\n", true},
		{"SIP/2.0 200 OK\r\n", true},
		{"sip/2.0 180 Ringing\r\n", true},
		{"SIP/2.0 2x0 OK\r\n", false},
		{"SIP/2.0 200 OK", false}, // no end of line
		{"\r\n\r\n", false},
		{"GET / HTTP/1.1\r\n", false},
		{"INV<TE sip:x SIP/2.0\r\n", false},
		{" SIP/2.0\r\n", false},
		{"\x00\x01\x02\n", false},
		{"", false},
	} {
		assert.Equal(t, tc.ok, maybeSIP([]byte(tc.in)), "%q", tc.in)
	}
}

func FuzzMaybeSIP(f *testing.F) {
	f.Add([]byte("INVITE sip:bob@x SIP/2.0\r\n"))
	f.Add([]byte("SIP/2.0 200 OK\r\n"))
	f.Add([]byte("X SIP/2.0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if maybeSIP(b) && bytes.IndexByte(b, '\n') < 0 {
			t.Fatal("accepted without a line end")
		}
	})
}
