package netsim

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func sent(n int, every time.Duration) []Packet {
	out := make([]Packet, n)
	for i := range out {
		out[i] = Packet{At: time.Duration(i) * every, Data: []byte{byte(i >> 8), byte(i)}}
	}
	return out
}

func TestDeterministic(t *testing.T) {
	cfg := Config{Seed: 42, Loss: 0.05, Jitter: 30 * time.Millisecond, Reorder: 0.02, Duplicate: 0.01}
	a, sa, err := Schedule(cfg, sent(2000, 20*time.Millisecond))
	require.NoError(t, err)
	b, sb, err := Schedule(cfg, sent(2000, 20*time.Millisecond))
	require.NoError(t, err)
	require.Equal(t, a, b)
	require.Equal(t, sa, sb)
	cfg.Seed = 43
	c, _, err := Schedule(cfg, sent(2000, 20*time.Millisecond))
	require.NoError(t, err)
	require.NotEqual(t, a, c)
}

func TestRates(t *testing.T) {
	cfg := Config{Seed: 1, Loss: 0.05, Delay: 10 * time.Millisecond, Jitter: 30 * time.Millisecond, Reorder: 0.02, Duplicate: 0.01}
	const n = 20000
	out, st, err := Schedule(cfg, sent(n, 5*time.Millisecond))
	require.NoError(t, err)
	require.InDelta(t, 0.05*n, float64(st.Lost), 0.05*n*0.15)
	require.InDelta(t, 0.02*n*0.95, float64(st.Reordered), 0.02*n*0.2)
	require.InDelta(t, 0.01*n*0.95, float64(st.Duplicated), 0.01*n*0.25)
	require.Equal(t, int(st.Sent-st.Lost+st.Duplicated), len(out))
	// Delays stay within the configured bounds, and packets overtaken
	// exist only because of explicit reordering.
	inversions := 0
	maxIdx := -1
	for _, p := range out {
		d := p.At - time.Duration(p.Index)*5*time.Millisecond
		require.GreaterOrEqual(t, d, 10*time.Millisecond)
		require.LessOrEqual(t, d, 10*time.Millisecond+30*time.Millisecond+20*time.Millisecond+30*time.Millisecond)
		if p.Index < maxIdx {
			inversions++
		}
		maxIdx = max(maxIdx, p.Index)
	}
	require.Greater(t, inversions, 0)
	require.LessOrEqual(t, inversions, int(st.Reordered+st.Duplicated))
}

func TestJitterAloneKeepsOrder(t *testing.T) {
	out, _, err := Schedule(Config{Seed: 7, Jitter: 50 * time.Millisecond}, sent(1000, time.Millisecond))
	require.NoError(t, err)
	require.Len(t, out, 1000)
	for i, p := range out {
		require.Equal(t, i, p.Index)
	}
}

func TestConfigErrors(t *testing.T) {
	_, err := New(Config{Loss: 1.5})
	require.Error(t, err)
	_, err = New(Config{Jitter: -1})
	require.Error(t, err)
}

func TestConn(t *testing.T) {
	rx, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer rx.Close()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	c, err := NewConn(pc, Config{Seed: 3, Loss: 0.2, Delay: 5 * time.Millisecond, Jitter: 10 * time.Millisecond})
	require.NoError(t, err)

	const n = 200
	for i := 0; i < n; i++ {
		_, err := c.WriteTo([]byte{byte(i)}, rx.LocalAddr())
		require.NoError(t, err)
	}
	st := c.Stats()
	want := int(st.Sent - st.Lost)
	require.Less(t, want, n)
	require.NoError(t, rx.SetReadDeadline(time.Now().Add(5*time.Second)))
	buf := make([]byte, 10)
	last := -1
	for k := 0; k < want; k++ {
		m, _, err := rx.ReadFrom(buf)
		require.NoError(t, err)
		require.Equal(t, 1, m)
		require.Greater(t, int(buf[0]), last, "jitter alone must not reorder")
		last = int(buf[0])
	}
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	_, err = c.WriteTo([]byte{1}, rx.LocalAddr())
	require.ErrorIs(t, err, net.ErrClosed)
}

func TestConnCloseDropsInFlight(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	c, err := NewConn(pc, Config{Delay: time.Hour})
	require.NoError(t, err)
	_, err = c.WriteTo([]byte{1}, pc.LocalAddr())
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { _ = c.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
}

func TestBurstLoss(t *testing.T) {
	g := BurstLoss(0.02, 3)
	require.InDelta(t, 0.02, g.AverageLoss(), 1e-9)
	require.InDelta(t, 1.0/3, g.R, 1e-9)
	const n = 200000
	_, st, err := Schedule(Config{Seed: 11, Burst: g}, sent(n, time.Millisecond))
	require.NoError(t, err)
	loss := float64(st.Lost) / n
	meanBurst := float64(st.Lost) / float64(st.Bursts)
	t.Logf("Gilbert 2%%/3: lost %.4f in %d bursts, mean %.2f, longest %d", loss, st.Bursts, meanBurst, st.LongestBurst)
	require.InDelta(t, 0.02, loss, 0.003)
	require.InDelta(t, 3, meanBurst, 0.3)
	require.GreaterOrEqual(t, st.LongestBurst, uint64(10), "geometric bursts have a long tail")

	// Random loss at the same rate has bursts of about 1/(1-p) packets.
	_, st, err = Schedule(Config{Seed: 11, Loss: 0.02}, sent(n, time.Millisecond))
	require.NoError(t, err)
	require.InDelta(t, 1.02, float64(st.Lost)/float64(st.Bursts), 0.05)

	// Elliott's variant: lossy Good state, partly lossy Bad state.
	ge := GilbertElliott{P: 0.01, R: 0.1, LossGood: 0.005, LossBad: 0.5}
	_, st, err = Schedule(Config{Seed: 5, Burst: ge}, sent(n, time.Millisecond))
	require.NoError(t, err)
	require.InDelta(t, ge.AverageLoss(), float64(st.Lost)/n, 0.005)

	// Burst loss draws apart: the other impairments are unchanged by it
	// (without jitter, which depends on the packets before).
	base := Config{Seed: 9, Delay: 10 * time.Millisecond, Reorder: 0.05, Duplicate: 0.02}
	a, _, err := Schedule(base, sent(500, 10*time.Millisecond))
	require.NoError(t, err)
	withBurst := base
	withBurst.Burst = BurstLoss(0.05, 2)
	b, _, err := Schedule(withBurst, sent(500, 10*time.Millisecond))
	require.NoError(t, err)
	at := map[int]time.Duration{}
	for _, p := range a {
		at[p.Index] = p.At
	}
	require.Less(t, len(b), len(a))
	for _, p := range b {
		require.Equal(t, at[p.Index], p.At, "packet %d", p.Index)
	}

	_, err = New(Config{Burst: GilbertElliott{P: 0.1}})
	require.Error(t, err, "P without R")
	_, err = New(Config{Burst: GilbertElliott{P: 0.1, R: 2}})
	require.Error(t, err)
}
