package sip

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
)

// udpGuard stands between the UDP socket and sipgo's UDP transport.
//
// sipgo v1.7.2 (v1.7.3 too) adds the source address of every datagram it
// reads to its UDP connection pool, and to a private map of its read loop,
// and removes neither until the listener closes: on a public address every
// scanner's datagram is kept forever. The guard
//   - drops datagrams that cannot be SIP (and UDP CRLF keepalives, which
//     sipgo ignores anyway) before sipgo sees their source;
//   - remembers when each source was last heard and, in sweep, deletes
//     sources idle for UDPSourceTimeout from sipgo's pool;
//   - refuses datagrams from new sources while MaxUDPSources are known;
//   - makes sipgo's read loop start afresh (recycle) once it has seen many
//     more sources than are still live, which frees its private map. The
//     listener's own pool entry is replaced before the old loop ends, so
//     sending never finds the pool without it.
type udpGuard struct {
	net.PacketConn // the socket; Close closes it

	pool    *sipgox.ConnectionPool
	laddr   string
	timeout time.Duration
	max     int
	now     func() time.Time

	mu       sync.Mutex
	sources  map[netip.AddrPort]time.Time // last heard
	loopSeen int                          // distinct sources sipgo's current read loop has seen
	peak     int                          // most sources since the map was last rebuilt

	recycle atomic.Bool   // set by sweep: end sipgo's read loop at the next read
	dropped atomic.Uint64 // datagrams dropped (not SIP, or too many sources)
}

// recycleSlack is how many more sources than are live sipgo's read loop may
// have seen before it is recycled.
const recycleSlack = 256

func newUDPGuard(c net.PacketConn, timeout time.Duration, max int) *udpGuard {
	return &udpGuard{
		PacketConn: c,
		laddr:      c.LocalAddr().String(),
		timeout:    timeout,
		max:        max,
		now:        time.Now,
		sources:    map[netip.AddrPort]time.Time{},
	}
}

// ReadFrom returns the next datagram that may be SIP. When a recycle was
// asked for, it returns net.ErrClosed once so sipgo's read loop ends
// quietly; serveUDP then starts a new one.
func (g *udpGuard) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		if g.recycle.Load() {
			return 0, nil, g.endLoop()
		}
		n, addr, err := g.PacketConn.ReadFrom(b)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Only sweep sets a deadline, to wake us for a recycle
				// (checked at the top of the loop).
				_ = g.PacketConn.SetReadDeadline(time.Time{})
				continue
			}
			return n, addr, err
		}
		if !maybeSIP(b[:n]) {
			g.dropped.Add(1)
			continue
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		ap := ua.AddrPort()
		if !g.admit(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())) {
			g.dropped.Add(1)
			continue
		}
		return n, addr, nil
	}
}

// admit records that src was heard now; false when it is a new source and
// the table is full.
func (g *udpGuard) admit(src netip.AddrPort) bool {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.sources[src]; !ok {
		if len(g.sources) >= g.max {
			return false
		}
		g.loopSeen++
		g.peak = max(g.peak, len(g.sources)+1)
	}
	g.sources[src] = now
	return true
}

// endLoop prepares the pool for the read loop's end: a listener entry that
// is not the old loop's connection, so the old loop's clean-up leaves it
// alone (serveUDP's next Serve replaces it).
func (g *udpGuard) endLoop() error {
	_ = g.PacketConn.SetReadDeadline(time.Time{})
	if g.pool != nil {
		g.pool.Add(g.laddr, &sipgox.UDPConnection{PacketConn: g, PacketAddr: g.laddr, Listener: true})
	}
	g.mu.Lock()
	g.loopSeen = 0
	g.mu.Unlock()
	g.recycle.Store(false)
	return net.ErrClosed
}

// sweep forgets sources idle for the timeout and asks for a recycle when
// sipgo's read loop has seen many more sources than are live.
func (g *udpGuard) sweep() {
	cutoff := g.now().Add(-g.timeout)
	var idle []string
	g.mu.Lock()
	for src, last := range g.sources {
		if last.Before(cutoff) {
			delete(g.sources, src)
			idle = append(idle, src.String())
		}
	}
	live, seen := len(g.sources), g.loopSeen
	if g.peak > 64 && live < g.peak/4 {
		// A Go map keeps the room it once needed: rebuild it after a flood.
		m := make(map[netip.AddrPort]time.Time, live)
		for k, v := range g.sources {
			m[k] = v
		}
		g.sources, g.peak = m, live
	}
	g.mu.Unlock()
	if len(idle) > 0 && g.pool != nil {
		g.pool.DeleteMultiple(idle)
	}
	if seen > live+recycleSlack && !g.recycle.Load() {
		g.recycle.Store(true)
		// Wake the reader blocked on the socket.
		_ = g.PacketConn.SetReadDeadline(time.Now())
	}
}

// Close closes the socket. sipgo never closes a listener it was given.
func (g *udpGuard) Close() error { return g.PacketConn.Close() }

// size is the number of sources remembered.
func (g *udpGuard) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.sources)
}

// maybeSIP reports whether b starts like a SIP request or response: a first
// line "SIP/2.0 ddd …" or "METHOD uri SIP/2.0". Anything else (scanners,
// STUN, keepalive CRLFs, stray RTP) is not worth a parse or a table entry.
func maybeSIP(b []byte) bool {
	end := bytes.IndexByte(b, '\n')
	if end < 0 {
		return false
	}
	line := bytes.TrimSuffix(b[:end], []byte{'\r'})
	const ver = "SIP/2.0"
	if len(line) >= len(ver)+4 && bytes.EqualFold(line[:len(ver)], []byte(ver)) {
		if line[len(ver)] != ' ' {
			return false
		}
		for _, c := range line[len(ver)+1 : len(ver)+4] {
			if c < '0' || c > '9' {
				return false
			}
		}
		return true
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || len(line) < sp+2+len(ver)+1 {
		return false
	}
	for _, c := range line[:sp] {
		if !isTokenChar(c) {
			return false
		}
	}
	tail := line[len(line)-len(ver)-1:]
	return tail[0] == ' ' && bytes.EqualFold(tail[1:], []byte(ver))
}

// serveUDP runs sipgo's UDP read loop until the UA closes, starting it again
// after each recycle.
func (ua *UA) serveUDP() error {
	for {
		err := ua.srv.ServeUDP(ua.udpGuard)
		select {
		case <-ua.closing:
			return err
		default:
		}
		if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if isClosedConn(ua.udpConn) {
			return err
		}
	}
}

// isClosedConn reports whether c's socket was closed.
func isClosedConn(c net.PacketConn) bool {
	err := c.SetReadDeadline(time.Time{})
	return errors.Is(err, net.ErrClosed)
}

// sweepLoop runs the UDP source sweep until Close.
func (ua *UA) sweepLoop() {
	defer ua.wg.Done()
	every := ua.cfg.UDPSourceTimeout / 4
	if every < 10*time.Millisecond {
		every = 10 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ua.closing:
			return
		case <-t.C:
			ua.udpGuard.sweep()
		}
	}
}
