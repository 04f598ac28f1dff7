package session

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Receive buffers are shared by all sessions of the process: a reader
// takes a batch from a pool only once its socket has data (on Linux) or
// while it waits in a single read (elsewhere), and the owner goroutine
// returns it as soon as the batch is processed. An idle session therefore
// holds no receive buffer at all on Linux, and one per socket elsewhere.
const (
	// bufSize is one datagram: MTU plus SRTP tag and MKI.
	bufSize = 1500 + 64
	// batchSize is how many datagrams one recvmmsg call reads: an H.264
	// IDR of a phone is 10-60 packets, so a burst costs a few wake-ups.
	batchSize = 16
	// inBatches is how many batches wait for the owner at most; beyond
	// that readers stop reading and the socket's receive buffer
	// (Config.AudioReadBuffer, Config.VideoReadBuffer) takes the backlog.
	inBatches = 4
)

// rxPacket is one datagram of a batch.
type rxPacket struct {
	n    int
	from netip.AddrPort
}

// rxBatch is the datagrams one read returned, handed from a reader
// goroutine to the owner in a single channel send. The owner returns it
// to its pool after use.
type rxBatch struct {
	sock  *socket
	at    time.Time // arrival (when the read returned)
	n     int       // datagrams in pkts
	pkts  []rxPacket
	mem   []byte // len(pkts) buffers of bufSize
	drops uint32 // the socket's kernel drop counter (SO_RXQ_OVFL), if haveDrops
	// haveDrops says a datagram of the batch carried the drop counter
	// (the kernel adds it once the socket has dropped anything).
	haveDrops bool
	sys       sysBatch // per-platform read state (recvmmsg headers)
}

// buf returns the buffer of datagram i.
func (b *rxBatch) buf(i int) []byte {
	return b.mem[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
}

// release returns b to its pool.
func (b *rxBatch) release() {
	b.sock, b.n, b.haveDrops = nil, 0, false
	if len(b.pkts) == 1 {
		singlePool.Put(b)
	} else {
		multiPool.Put(b)
	}
}

// Process-wide pools: batches of batchSize for batched reads, batches of
// one for single reads.
var (
	multiPool  = sync.Pool{New: func() any { return newBatch(batchSize) }}
	singlePool = sync.Pool{New: func() any { return newBatch(1) }}
)

func newBatch(n int) *rxBatch {
	b := &rxBatch{pkts: make([]rxPacket, n), mem: make([]byte, n*bufSize)}
	b.sys.init(b)
	return b
}

func getBatch(pool *sync.Pool) *rxBatch { return pool.Get().(*rxBatch) }

// read is a socket's reader goroutine: it hands what it reads to the
// owner goroutine, a batch at a time.
func (s *Session) read(sk *socket) {
	defer s.wg.Done()
	if r, ok := newBatchReader(sk.conn); ok {
		s.readBatches(sk, r)
		return
	}
	s.readSingle(sk)
}

// readSingle reads one datagram at a time (a PacketConn that is not a
// *net.UDPConn, or a system without recvmmsg).
func (s *Session) readSingle(sk *socket) {
	errs := 0
	for {
		if isDone(s.done) {
			return
		}
		b := getBatch(&singlePool)
		n, from, err := sk.conn.ReadFromUDPAddrPort(b.buf(0))
		if err != nil {
			b.release()
			if errors.Is(err, net.ErrClosed) || isDone(s.done) {
				return
			}
			// ICMP errors and the like: go on, but never spin.
			if errs++; errs > 1000 {
				return
			}
			continue
		}
		errs = 0
		b.pkts[0] = rxPacket{n: n, from: netip.AddrPortFrom(from.Addr().Unmap(), from.Port())}
		b.n = 1
		if !s.hand(sk, b) {
			return
		}
	}
}

// readBatches reads with r until the socket is closed.
func (s *Session) readBatches(sk *socket, r batchReader) {
	errs := 0
	for {
		b, err := r.readBatch()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || isDone(s.done) {
				return
			}
			if errs++; errs > 1000 {
				return
			}
			continue
		}
		errs = 0
		if !s.hand(sk, b) {
			return
		}
	}
}

// hand gives a batch to the owner; false when the session is closed.
func (s *Session) hand(sk *socket, b *rxBatch) bool {
	b.sock, b.at = sk, s.clock.Now()
	select {
	case s.in <- b:
		return true
	case <-s.done:
		b.release()
		return false
	}
}

// batchReader reads datagrams a batch at a time.
type batchReader interface {
	// readBatch blocks until at least one datagram arrived and returns
	// the batch holding it (from a pool; the caller releases it).
	readBatch() (*rxBatch, error)
}

func isDone(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// readBufferSetter is a socket whose kernel receive buffer can be sized
// (*net.UDPConn).
type readBufferSetter interface {
	SetReadBuffer(bytes int) error
}
