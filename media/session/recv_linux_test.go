package session

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

// listenLoopback opens a UDP socket on 127.0.0.1.
func listenLoopback(t testing.TB) (*net.UDPConn, netip.AddrPort) {
	c, err := ListenUDP(netip.AddrPortFrom(loopback, 0))
	require.NoError(t, err)
	uc := c.(*net.UDPConn)
	t.Cleanup(func() { uc.Close() })
	return uc, uc.LocalAddr().(*net.UDPAddr).AddrPort()
}

// TestReadBatch: datagrams waiting in the socket come out batchSize at a
// time, in order, each with its length and source, and the reader holds
// no batch while nothing waits (a batch is taken only once data is there).
func TestReadBatch(t *testing.T) {
	conn, addr := listenLoopback(t)
	tx, txAddr := listenLoopback(t)
	const n = batchSize + 4
	for i := 0; i < n; i++ {
		p := make([]byte, 100+i)
		binary.BigEndian.PutUint16(p, uint16(i))
		_, err := tx.WriteToUDPAddrPort(p, addr)
		require.NoError(t, err)
	}
	r, ok := newBatchReader(conn)
	require.True(t, ok)
	got := 0
	for got < n {
		b, err := r.readBatch()
		require.NoError(t, err)
		require.Positive(t, b.n)
		if got == 0 {
			require.Equal(t, batchSize, b.n, "a full batch in one call")
		}
		for i := 0; i < b.n; i++ {
			p := b.pkts[i]
			require.Equal(t, txAddr, p.from)
			require.Equal(t, 100+got, p.n)
			require.Equal(t, uint16(got), binary.BigEndian.Uint16(b.buf(i)))
			got++
		}
		require.False(t, b.haveDrops)
		b.release()
	}
}

// TestReadBatchIPv6: the source of an IPv6 datagram.
func TestReadBatchIPv6(t *testing.T) {
	c, err := ListenUDP(netip.MustParseAddrPort("[::1]:0"))
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	defer c.Close()
	tx, err := ListenUDP(netip.MustParseAddrPort("[::1]:0"))
	require.NoError(t, err)
	defer tx.Close()
	_, err = tx.WriteToUDPAddrPort([]byte{1, 2, 3}, c.LocalAddr().(*net.UDPAddr).AddrPort())
	require.NoError(t, err)
	r, ok := newBatchReader(c)
	require.True(t, ok)
	b, err := r.readBatch()
	require.NoError(t, err)
	defer b.release()
	require.Equal(t, 1, b.n)
	require.Equal(t, tx.LocalAddr().(*net.UDPAddr).AddrPort(), b.pkts[0].from)
	require.Equal(t, []byte{1, 2, 3}, b.buf(0)[:b.pkts[0].n])
}

// TestReadBatchDropCounter: a socket whose receive buffer overflowed
// reports the kernel's drop counter with the next datagrams.
func TestReadBatchDropCounter(t *testing.T) {
	conn, addr := listenLoopback(t)
	require.NoError(t, conn.SetReadBuffer(4096)) // the kernel's minimum or so
	enableDropCounter(conn)
	tx, _ := listenLoopback(t)
	p := make([]byte, 1000)
	const sent = 200
	for i := 0; i < sent; i++ {
		_, err := tx.WriteToUDPAddrPort(p, addr)
		require.NoError(t, err)
	}
	r, ok := newBatchReader(conn)
	require.True(t, ok)
	b, err := r.readBatch()
	require.NoError(t, err)
	read := b.n
	b.release()
	// Everything that fit was queued before the drops: drain it, then one
	// more datagram carries the counter.
	for {
		_, err := tx.WriteToUDPAddrPort(p, addr)
		require.NoError(t, err)
		b, err := r.readBatch()
		require.NoError(t, err)
		read += b.n
		have, drops := b.haveDrops, b.drops
		b.release()
		if have {
			t.Logf("read %d, kernel dropped %d of %d", read, drops, sent)
			require.Positive(t, drops)
			require.LessOrEqual(t, int(drops), sent)
			return
		}
		require.Less(t, read, sent+1, "no drop counter")
	}
}

// TestReadBufferSizes: the sessions' RTP sockets ask for the configured
// receive buffers (what the kernel grants is logged: it caps them at
// net.core.rmem_max).
func TestReadBufferSizes(t *testing.T) {
	s, err := New(Config{IP: loopback, Audio: true, Video: true})
	require.NoError(t, err)
	defer s.Close()
	a, v := readBufferSize(s.audio.rtpSock.conn), readBufferSize(s.video.rtpSock.conn)
	rtcp := readBufferSize(s.video.rtcpSock.conn)
	t.Logf("SO_RCVBUF (the kernel reports twice the granted size): audio RTP %d, video RTP %d, RTCP %d", a, v, rtcp)
	require.Greater(t, v, a, "video gets more than audio")
	require.Greater(t, a, rtcp, "audio gets more than the default")

	s2, err := New(Config{IP: loopback, Audio: true, AudioReadBuffer: -1})
	require.NoError(t, err)
	defer s2.Close()
	require.Equal(t, readBufferSize(s2.audio.rtcpSock.conn), readBufferSize(s2.audio.rtpSock.conn), "negative keeps the default")
}

// TestKernelDrops: while the owner goroutine is stuck, a burst overflows
// the video socket; the drops show in Stats once packets flow again.
func TestKernelDrops(t *testing.T) {
	tx, txAddr := listenLoopback(t)
	s, err := New(Config{IP: loopback, Video: true, VideoReadBuffer: 4096, OnFrame: func(*media.Frame) {}})
	require.NoError(t, err)
	defer s.Close()
	sp := videoSpec(txAddr, media.Feedback{})
	require.NoError(t, s.Start([]media.StreamSpec{sp}))
	dst := s.LocalAddr(media.KindVideo)

	release := make(chan struct{})
	blocked := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- s.do(func() error { close(blocked); <-release; return nil }) }()
	<-blocked
	pkt := make([]byte, 1000)
	pkt[0], pkt[1] = 0x80, 96
	const burst = 500
	seq := uint16(0)
	send := func() {
		binary.BigEndian.PutUint16(pkt[2:], seq)
		seq++
		_, err := tx.WriteToUDPAddrPort(pkt, dst)
		require.NoError(t, err)
	}
	for i := 0; i < burst; i++ {
		send()
	}
	close(release)
	require.NoError(t, <-done)
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Video.KernelDrops == 0 {
		require.True(t, time.Now().Before(deadline), "no kernel drops counted: %+v", s.Stats().Video)
		send() // carries the counter
		time.Sleep(10 * time.Millisecond)
	}
	st := s.Stats().Video
	t.Logf("burst of %d: received %d, kernel drops %d", burst, st.PacketsReceived, st.KernelDrops)
	require.LessOrEqual(t, st.KernelDrops, uint64(burst))
	require.LessOrEqual(t, st.PacketsReceived+st.KernelDrops, uint64(seq))
}

// BenchmarkUDPRead compares reading bursts of 16 datagrams from a loopback
// socket one read at a time (ReadFromUDPAddrPort, what the session did
// before) and with recvmmsg batches, per datagram (the sender's writes
// are included in both).
func BenchmarkUDPRead(b *testing.B) {
	run := func(b *testing.B, read func(conn *net.UDPConn, r batchReader) int) {
		conn, addr := listenLoopback(b)
		require.NoError(b, conn.SetReadBuffer(1<<20))
		tx, _ := listenLoopback(b)
		r, _ := newBatchReader(conn)
		p := make([]byte, 1200)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i += batchSize {
			for k := 0; k < batchSize; k++ {
				if _, err := tx.WriteToUDPAddrPort(p, addr); err != nil {
					b.Fatal(err)
				}
			}
			for got := 0; got < batchSize; {
				got += read(conn, r)
			}
		}
	}
	b.Run("single", func(b *testing.B) {
		buf := make([]byte, bufSize)
		run(b, func(conn *net.UDPConn, _ batchReader) int {
			if _, _, err := conn.ReadFromUDPAddrPort(buf); err != nil {
				b.Fatal(err)
			}
			return 1
		})
	})
	b.Run("batch", func(b *testing.B) {
		run(b, func(_ *net.UDPConn, r batchReader) int {
			bt, err := r.readBatch()
			if err != nil {
				b.Fatal(err)
			}
			n := bt.n
			bt.release()
			return n
		})
	})
}

// TestCloseReleasesSockets: sessions closed leave no file descriptor
// behind (goroutines are checked by goleak in TestMain).
func TestCloseReleasesSockets(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		require.NoError(t, err)
		return len(ents)
	}
	before := fds()
	var ss []*Session
	for i := 0; i < 20; i++ {
		s, err := New(Config{IP: loopback, Audio: true, Video: true})
		require.NoError(t, err)
		ss = append(ss, s)
	}
	require.Equal(t, before+20*4, fds(), "four sockets a session")
	for _, s := range ss {
		require.NoError(t, s.Close())
	}
	require.Equal(t, before, fds())
}
