package session

import (
	"encoding/binary"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux: datagrams are read with recvmmsg(2), up to batchSize per system
// call, into a batch taken from the process-wide pool only once the socket
// has data: the call is made non-blocking from within RawConn.Read, which
// waits in the runtime's network poller (holding no buffer) when there is
// nothing to read. The kernel's per-socket drop counter comes with each
// datagram (SO_RXQ_OVFL). golang.org/x/net/ipv4's ReadBatch does the same
// system call, but allocates a net.Addr per datagram and needs its
// buffers while it blocks.

// mmsghdr is struct mmsghdr of <sys/socket.h>.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// oobWords sizes the control buffer of a datagram: room for the
// SO_RXQ_OVFL message (and a spare one), 8-byte aligned.
const oobWords = 8

// sysBatch holds a batch's recvmmsg headers, pointing at the batch's own
// buffers once and for all.
type sysBatch struct {
	hs    []mmsghdr
	iov   []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for IPv4 and IPv6
	oob   [][oobWords]uint64
}

func (sb *sysBatch) init(b *rxBatch) {
	n := len(b.pkts)
	sb.hs = make([]mmsghdr, n)
	sb.iov = make([]unix.Iovec, n)
	sb.names = make([]unix.RawSockaddrInet6, n)
	sb.oob = make([][oobWords]uint64, n)
	for i := range sb.hs {
		buf := b.buf(i)
		sb.iov[i].Base = &buf[0]
		sb.iov[i].SetLen(len(buf))
		h := &sb.hs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&sb.names[i]))
		h.Iov = &sb.iov[i]
		h.SetIovlen(1)
		h.Control = (*byte)(unsafe.Pointer(&sb.oob[i][0]))
	}
}

// reset prepares the headers for a read.
func (sb *sysBatch) reset() {
	for i := range sb.hs {
		h := &sb.hs[i]
		h.hdr.Namelen = unix.SizeofSockaddrInet6
		h.hdr.SetControllen(oobWords * 8)
		h.hdr.Flags = 0
		h.n = 0
	}
}

// mmsgReader reads a *net.UDPConn with recvmmsg.
type mmsgReader struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool // r.attempt, bound once
	b   *rxBatch              // result of the last attempt
	err error
}

func newBatchReader(c PacketConn) (batchReader, bool) {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return nil, false
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil, false
	}
	r := &mmsgReader{rc: rc}
	r.fn = r.attempt
	return r, true
}

func (r *mmsgReader) readBatch() (*rxBatch, error) {
	r.b, r.err = nil, nil
	if err := r.rc.Read(r.fn); err != nil {
		return nil, err
	}
	if r.err != nil {
		return nil, r.err
	}
	return r.b, nil
}

// attempt is one non-blocking recvmmsg; false asks the poller to wait
// until the socket is readable.
func (r *mmsgReader) attempt(fd uintptr) bool {
	b := getBatch(&multiPool)
	sb := &b.sys
	sb.reset()
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&sb.hs[0])), uintptr(len(sb.hs)), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno == unix.EAGAIN || (errno == 0 && n == 0):
			b.release()
			return false
		case errno != 0:
			b.release()
			r.err = errno
			return true
		}
		b.n = int(n)
		for i := 0; i < b.n; i++ {
			b.parse(i)
		}
		r.b = b
		return true
	}
}

// parse fills pkts[i] (and the drop counter) from recvmmsg's header i.
func (b *rxBatch) parse(i int) {
	sb := &b.sys
	h := &sb.hs[i]
	p := &b.pkts[i]
	p.n = min(int(h.n), bufSize) // a longer datagram was truncated
	sa := &sb.names[i]
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p.from = netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), ntohs(&sa4.Port))
	case unix.AF_INET6:
		p.from = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), ntohs(&sa.Port))
	default:
		p.from = netip.AddrPort{}
	}
	c := unsafe.Slice((*byte)(unsafe.Pointer(&sb.oob[i][0])), oobWords*8)
	c = c[:min(int(h.hdr.Controllen), len(c))]
	for len(c) >= unix.SizeofCmsghdr {
		cm := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
		l := int(cm.Len)
		if l < unix.SizeofCmsghdr || l > len(c) {
			return
		}
		if cm.Level == unix.SOL_SOCKET && cm.Type == unix.SO_RXQ_OVFL && l >= unix.CmsgLen(4) {
			b.drops = binary.NativeEndian.Uint32(c[unix.CmsgLen(0):])
			b.haveDrops = true
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next >= len(c) {
			return
		}
		c = c[next:]
	}
}

// ntohs reads a port stored in network byte order.
func ntohs(p *uint16) uint16 {
	return binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(p))[:])
}

// enableDropCounter asks the kernel to attach the socket's drop counter
// to received datagrams (SO_RXQ_OVFL). Best effort.
func enableDropCounter(c PacketConn) {
	if uc, ok := c.(*net.UDPConn); ok {
		if rc, err := uc.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
			})
		}
	}
}

// readBufferSize returns the socket's receive buffer as the kernel reports
// it (SO_RCVBUF: twice what was granted, bookkeeping included), 0 when
// unknown.
func readBufferSize(c PacketConn) int {
	uc, ok := c.(*net.UDPConn)
	if !ok {
		return 0
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0
	}
	size := 0
	_ = rc.Control(func(fd uintptr) {
		size, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	return size
}
