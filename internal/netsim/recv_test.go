package netsim

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sendTo sends n one-packet datagrams numbered 0..n-1 (2 bytes, big
// endian), pacing them every.
func sendTo(t *testing.T, dst net.Addr, n int, every time.Duration) {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer c.Close()
	start := time.Now()
	for i := 0; i < n; i++ {
		if d := time.Until(start.Add(time.Duration(i) * every)); d > 0 {
			time.Sleep(d)
		}
		_, err := c.WriteTo([]byte{byte(i >> 8), byte(i)}, dst)
		require.NoError(t, err)
	}
}

// readAll reads until nothing arrives for quiet and returns the numbers
// read, in order, and each one's arrival time.
func readAll(t *testing.T, r *RecvConn, quiet time.Duration) ([]int, []time.Time) {
	t.Helper()
	type got struct {
		n  int
		at time.Time
	}
	ch := make(chan got, 1<<16)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 16)
		for {
			n, _, err := r.ReadFromUDPAddrPort(buf)
			if err != nil {
				done <- err
				return
			}
			if n == 2 {
				ch <- got{int(buf[0])<<8 | int(buf[1]), time.Now()}
			}
		}
	}()
	var nums []int
	var ats []time.Time
	for {
		select {
		case g := <-ch:
			nums = append(nums, g.n)
			ats = append(ats, g.at)
			continue
		case <-time.After(quiet):
		}
		break
	}
	require.NoError(t, r.Close())
	require.ErrorIs(t, <-done, net.ErrClosed)
	return nums, ats
}

func TestRecvConnRatesAndOrder(t *testing.T) {
	cfg := Config{Seed: 21, Loss: 0.1, Delay: 30 * time.Millisecond, Jitter: 25 * time.Millisecond}
	r, err := ListenRecv(netip.MustParseAddrPort("127.0.0.1:0"), cfg)
	require.NoError(t, err)
	const n = 1000
	sentAt := time.Now()
	go sendTo(t, r.LocalAddr(), n, time.Millisecond)
	nums, ats := readAll(t, r, 500*time.Millisecond)
	st := r.Stats()
	require.Equal(t, uint64(n), st.Sent)
	require.Equal(t, int(st.Sent-st.Lost), len(nums))
	require.InDelta(t, 0.1*n, float64(st.Lost), 0.1*n*0.3)
	// The seeded run loses the same packets every time: the losses depend
	// on the packets' order only, not on timing.
	sim, err := New(cfg)
	require.NoError(t, err)
	var want []int
	for i := 0; i < n; i++ {
		if _, k := sim.Fate(0); k > 0 {
			want = append(want, i)
		}
	}
	require.Equal(t, want, nums, "jitter alone keeps the order; the seed decides the losses")
	// Nothing arrives before the base delay.
	require.GreaterOrEqual(t, ats[0].Sub(sentAt), 30*time.Millisecond)
}

func TestRecvConnBurstDuplicateReorder(t *testing.T) {
	cfg := Config{Seed: 4, Burst: BurstLoss(0.05, 3), Duplicate: 0.05, Reorder: 0.05, ReorderDelay: 15 * time.Millisecond}
	r, err := ListenRecv(netip.MustParseAddrPort("127.0.0.1:0"), cfg)
	require.NoError(t, err)
	const n = 2000
	go sendTo(t, r.LocalAddr(), n, 500*time.Microsecond)
	nums, _ := readAll(t, r, 500*time.Millisecond)
	st := r.Stats()
	require.Equal(t, uint64(n), st.Sent)
	require.Equal(t, int(st.Sent-st.Lost+st.Duplicated), len(nums))
	require.Greater(t, float64(st.Lost)/float64(st.Bursts), 1.8, "losses come in bursts: %+v", st)
	inversions, seen := 0, map[int]int{}
	for i, v := range nums {
		seen[v]++
		if i > 0 && v < nums[i-1] {
			inversions++
		}
	}
	require.Greater(t, inversions, 0)
	dups := 0
	for _, c := range seen {
		dups += c - 1
	}
	require.Equal(t, int(st.Duplicated), dups)
}

func TestRecvConnWritesPassThrough(t *testing.T) {
	r, err := ListenRecv(netip.MustParseAddrPort("127.0.0.1:0"), Config{Loss: 1})
	require.NoError(t, err)
	defer r.Close()
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer peer.Close()
	_, err = r.WriteToUDPAddrPort([]byte("hi"), peer.LocalAddr().(*net.UDPAddr).AddrPort())
	require.NoError(t, err)
	require.NoError(t, peer.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 8)
	k, from, err := peer.ReadFromUDPAddrPort(buf)
	require.NoError(t, err)
	require.Equal(t, "hi", string(buf[:k]))
	require.Equal(t, r.LocalAddr().(*net.UDPAddr).Port, int(from.Port()))
}

func TestRecvConnCloseUnblocksReaders(t *testing.T) {
	r, err := ListenRecv(netip.MustParseAddrPort("127.0.0.1:0"), Config{Delay: time.Hour})
	require.NoError(t, err)
	// A datagram in flight for an hour, and three readers waiting.
	go sendTo(t, r.LocalAddr(), 1, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := r.ReadFromUDPAddrPort(make([]byte, 10))
			errs <- err
		}()
	}
	require.Eventually(t, func() bool { return r.Stats().Sent == 1 }, 5*time.Second, 5*time.Millisecond)
	closed := make(chan struct{})
	go func() { _ = r.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.True(t, errors.Is(err, net.ErrClosed), "%v", err)
	}
	require.NoError(t, r.Close(), "idempotent")
	_, _, err = r.ReadFromUDPAddrPort(make([]byte, 10))
	require.ErrorIs(t, err, net.ErrClosed)
	_, err = r.WriteToUDPAddrPort([]byte{1}, netip.MustParseAddrPort("127.0.0.1:9"))
	require.ErrorIs(t, err, net.ErrClosed)
}

func TestRecvConnBadConfig(t *testing.T) {
	_, err := ListenRecv(netip.MustParseAddrPort("127.0.0.1:0"), Config{Loss: 2})
	require.Error(t, err)
}
