package sip

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// tcpGuard wraps the TCP (or, under TLS, the raw TCP) listener given to
// sipgo: at most max connections are open at once (further ones are closed
// on accept), and a connection that sends nothing for idle is closed — sipgo
// v1.7.2 reads incoming connections without any deadline, so an idle
// stranger held a goroutine, a buffer and a descriptor forever.
type tcpGuard struct {
	net.Listener
	idle    time.Duration // <= 0: none
	max     int           // <= 0: no cap
	active  atomic.Int64
	refused atomic.Uint64
}

func (l *tcpGuard) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.max > 0 && l.active.Load() >= int64(l.max) {
			l.refused.Add(1)
			_ = c.Close()
			continue
		}
		l.active.Add(1)
		return &idleConn{Conn: c, idle: l.idle, l: l}, nil
	}
}

// idleConn sets a read deadline idle from now before every read.
type idleConn struct {
	net.Conn
	idle time.Duration
	l    *tcpGuard
	once sync.Once
}

func (c *idleConn) Read(b []byte) (int, error) {
	if c.idle > 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.idle)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Read(b)
}

func (c *idleConn) Close() error {
	c.once.Do(func() { c.l.active.Add(-1) })
	return c.Conn.Close()
}
