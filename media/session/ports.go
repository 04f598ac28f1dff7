package session

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
)

// ErrPortsExhausted is returned by New when no RTP/RTCP port pair of the
// pool can be bound.
var ErrPortsExhausted = errors.New("session: RTP port pool exhausted")

// PacketConn is a UDP socket as the session uses it. *net.UDPConn
// implements it; tests substitute in-memory or impaired connections. On
// Linux a *net.UDPConn is read with recvmmsg, many datagrams per system
// call, and reports the kernel's drops (StreamStats.KernelDrops); any
// other PacketConn is read one datagram at a time with
// ReadFromUDPAddrPort. A PacketConn with a SetReadBuffer method gets
// Config.AudioReadBuffer or Config.VideoReadBuffer.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// ListenFunc opens a UDP socket bound to addr (port 0: any free port).
type ListenFunc func(addr netip.AddrPort) (PacketConn, error)

// ListenUDP is the default ListenFunc: net.ListenUDP on udp4 or udp6.
func ListenUDP(addr netip.AddrPort) (PacketConn, error) {
	network := "udp4"
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		network = "udp6"
	}
	return net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
}

// PortPool hands out RTP/RTCP port pairs: an even RTP port and the odd
// port above it for RTCP (RFC 3550 §11), from a range shared by all
// sessions of a process, in random order. It is safe for concurrent use.
type PortPool struct {
	mu     sync.Mutex
	lo, hi int // even bounds of RTP ports, inclusive
	used   map[int]bool
}

// NewPortPool returns a pool of the port pairs within [lo, hi]: RTP ports
// are the even ports from lo (rounded up to even) whose successor is still
// at most hi.
func NewPortPool(lo, hi int) (*PortPool, error) {
	if lo%2 != 0 {
		lo++
	}
	if lo < 2 || hi > 65535 || lo+1 > hi {
		return nil, fmt.Errorf("session: port range %d-%d holds no RTP/RTCP pair", lo, hi)
	}
	top := hi - 1
	if top%2 != 0 {
		top--
	}
	return &PortPool{lo: lo, hi: top, used: map[int]bool{}}, nil
}

// Size returns the number of port pairs of the pool.
func (p *PortPool) Size() int { return (p.hi-p.lo)/2 + 1 }

// InUse returns the number of pairs currently handed out.
func (p *PortPool) InUse() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// allocate binds a free pair on ip, chosen at random, skipping ports other
// programs hold.
func (p *PortPool) allocate(ip netip.Addr, listen ListenFunc) (rtpc, rtcpc PacketConn, port int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.Size()
	// Start at a random pair: ports handed out in order tell a stranger
	// which port the next call gets (RTP injection), and random ones make
	// it unlikely that a port is reused while the last call's peer still
	// sends to it.
	start := rand.IntN(n)
	for i := 0; i < n; i++ {
		port := p.lo + 2*((start+i)%n)
		if p.used[port] {
			continue
		}
		a, b, err := bindPair(ip, port, listen)
		if err != nil {
			continue // taken by someone else
		}
		p.used[port] = true
		return a, b, port, nil
	}
	return nil, nil, 0, fmt.Errorf("%w (%d-%d on %v, %d pairs in use)", ErrPortsExhausted, p.lo, p.hi+1, ip, len(p.used))
}

func (p *PortPool) release(port int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.used, port)
}

func bindPair(ip netip.Addr, port int, listen ListenFunc) (PacketConn, PacketConn, error) {
	a, err := listen(netip.AddrPortFrom(ip, uint16(port)))
	if err != nil {
		return nil, nil, err
	}
	b, err := listen(netip.AddrPortFrom(ip, uint16(port+1)))
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// anyPair binds an even port chosen by the system and the port above it.
func anyPair(ip netip.Addr, listen ListenFunc) (PacketConn, PacketConn, int, error) {
	var lastErr error
	for i := 0; i < 64; i++ {
		a, err := listen(netip.AddrPortFrom(ip, 0))
		if err != nil {
			return nil, nil, 0, err
		}
		port := localPort(a)
		if port%2 != 0 || port >= 65535 {
			a.Close()
			continue
		}
		b, err := listen(netip.AddrPortFrom(ip, uint16(port+1)))
		if err != nil {
			lastErr = err
			a.Close()
			continue
		}
		return a, b, port, nil
	}
	return nil, nil, 0, fmt.Errorf("session: no free RTP/RTCP port pair on %v: %v", ip, lastErr)
}

func localPort(c PacketConn) int {
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok {
		return a.Port
	}
	if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
		return int(ap.Port())
	}
	return 0
}
