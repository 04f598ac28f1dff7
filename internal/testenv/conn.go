package testenv

import (
	"net"
	"sync/atomic"
)

// CountWrites wraps c so that every Write call on it (one write system
// call on a TCP connection) adds one to writes.
func CountWrites(c net.Conn, writes *atomic.Int64) net.Conn {
	return countConn{Conn: c, writes: writes}
}

type countConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}
