package netsim

import (
	"container/heap"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// RecvConn is a UDP socket whose received path goes through a simulated
// network: a goroutine reads each datagram as the kernel delivers it,
// decides its fate with a Sim on the wall clock (time since the socket was
// opened: loss, delay, jitter keeping order, reordering, duplication) and
// hands it to ReadFromUDPAddrPort when it is due. Writes go straight to the
// socket.
//
// Its method set is that of media/session.PacketConn, so a test can put a
// bad link in front of the gateway's own RTP sockets without root:
//
//	listen := func(a netip.AddrPort) (session.PacketConn, error) { return netsim.ListenRecv(a, cfg) }
//
// Close stops the goroutines, drops what is in flight, closes the socket
// and makes blocked and later reads return net.ErrClosed.
type RecvConn struct {
	conn  PacketConn
	start time.Time
	wake  chan struct{}
	ready chan datagram
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	mu       sync.Mutex
	sim      *Sim
	queue    recvQueue
	seq      uint64
	overflow uint64
}

// PacketConn is a UDP socket as RecvConn uses it (and media/session
// does): *net.UDPConn implements it, and so does a test's wrapper that
// looks at what the socket receives before the simulated network does.
type PacketConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

// readyDepth is how many due datagrams wait for a reader before new ones
// are dropped, like a full socket receive buffer.
const readyDepth = 4096

type datagram struct {
	data []byte
	from netip.AddrPort
}

type recvItem struct {
	due time.Time
	seq uint64
	datagram
}

type recvQueue []recvItem

func (q recvQueue) Len() int { return len(q) }
func (q recvQueue) Less(i, j int) bool {
	if q[i].due.Equal(q[j].due) {
		return q[i].seq < q[j].seq
	}
	return q[i].due.Before(q[j].due)
}
func (q recvQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *recvQueue) Push(x any)   { *q = append(*q, x.(recvItem)) }
func (q *recvQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// ListenRecv opens a UDP socket on addr (port 0: any free port) and wraps
// it with NewRecvConn.
func ListenRecv(addr netip.AddrPort, cfg Config) (*RecvConn, error) {
	if _, err := New(cfg); err != nil {
		return nil, err
	}
	network := "udp4"
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, err
	}
	r, err := NewRecvConn(c, cfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	return r, nil
}

// NewRecvConn impairs what conn receives. It takes ownership of conn:
// Close closes it, and nothing else may read from it. Closing conn must
// unblock its reads with an error wrapping net.ErrClosed.
func NewRecvConn(conn PacketConn, cfg Config) (*RecvConn, error) {
	sim, err := New(cfg)
	if err != nil {
		return nil, err
	}
	r := &RecvConn{
		conn:  conn,
		start: time.Now(),
		wake:  make(chan struct{}, 1),
		ready: make(chan datagram, readyDepth),
		done:  make(chan struct{}),
		sim:   sim,
	}
	r.wg.Add(2)
	go r.receive()
	go r.deliver()
	return r, nil
}

// Stats returns what the simulated network did so far.
func (r *RecvConn) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sim.Stats()
}

// Overflows returns how many due datagrams were dropped because readers
// left readyDepth (4096) of them unread.
func (r *RecvConn) Overflows() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.overflow
}

// LocalAddr returns the socket's address.
func (r *RecvConn) LocalAddr() net.Addr { return r.conn.LocalAddr() }

// WriteToUDPAddrPort sends b to addr at once, unimpaired.
func (r *RecvConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	select {
	case <-r.done:
		return 0, net.ErrClosed
	default:
	}
	return r.conn.WriteToUDPAddrPort(b, addr)
}

// ReadFromUDPAddrPort returns the next datagram the simulated network
// delivers, copied into b (truncated if b is short, as UDP does). It
// blocks until one is due or the connection is closed (net.ErrClosed).
func (r *RecvConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case <-r.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	default:
	}
	select {
	case d := <-r.ready:
		return copy(b, d.data), d.from, nil
	case <-r.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

// receive reads the real socket and schedules every datagram.
func (r *RecvConn) receive() {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A transient error (an ICMP port unreachable surfacing on
			// Linux, say): keep reading unless closing.
			select {
			case <-r.done:
				return
			case <-time.After(time.Millisecond):
			}
			continue
		}
		now := time.Now()
		r.mu.Lock()
		arr, k := r.sim.Fate(now.Sub(r.start))
		for i := 0; i < k; i++ {
			r.seq++
			heap.Push(&r.queue, recvItem{due: r.start.Add(arr[i]), seq: r.seq,
				datagram: datagram{data: append([]byte(nil), buf[:n]...), from: from}})
		}
		r.mu.Unlock()
		if k > 0 {
			select {
			case r.wake <- struct{}{}:
			default:
			}
		}
	}
}

// deliver moves datagrams whose time has come to the readers.
func (r *RecvConn) deliver() {
	defer r.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var due []datagram
		wait := time.Duration(-1)
		now := time.Now()
		r.mu.Lock()
		for r.queue.Len() > 0 {
			if d := r.queue[0].due.Sub(now); d > 0 {
				wait = d
				break
			}
			due = append(due, heap.Pop(&r.queue).(recvItem).datagram)
		}
		r.mu.Unlock()
		for _, d := range due {
			select {
			case r.ready <- d:
			default:
				r.mu.Lock()
				r.overflow++
				r.mu.Unlock()
			}
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-r.done:
			return
		case <-r.wake:
		case <-timer.C:
		}
		if wait >= 0 && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// Close stops receiving and delivering, drops the datagrams in flight,
// closes the socket and waits for the goroutines. Blocked and later reads
// return net.ErrClosed. It is idempotent.
func (r *RecvConn) Close() error {
	var err error
	r.once.Do(func() {
		close(r.done)
		err = r.conn.Close()
		r.wg.Wait()
	})
	return err
}
