package session

import (
	"errors"
	"net"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtcpx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// fakeClock is a Clock that moves only when Advance is called.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1), at: c.now.Add(d), on: true}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	now := c.now
	for _, t := range c.timers {
		if t.on && !t.at.After(now) {
			t.on = false
			select {
			case t.ch <- now:
			default:
			}
		}
	}
	c.mu.Unlock()
}

type fakeTimer struct {
	c  *fakeClock
	ch chan time.Time
	at time.Time
	on bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }
func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	select {
	case <-t.ch:
	default:
	}
	t.at = t.c.now.Add(d)
	t.on = true
	if !t.at.After(t.c.now) {
		t.on = false
		t.ch <- t.c.now
	}
}
func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.on = false
}

// memNet is an in-memory UDP network: conns bound to addresses, writes
// logged and delivered to a bound destination if any.
type memNet struct {
	mu    sync.Mutex
	conns map[netip.AddrPort]*memConn
	next  uint16
	sent  []sentPacket
	now   func() time.Time // stamps sent packets; nil: zero time
}

type sentPacket struct {
	from, to netip.AddrPort
	data     []byte
	at       time.Time
}

func newMemNet() *memNet { return &memNet{conns: map[netip.AddrPort]*memConn{}, next: 20000} }

func (n *memNet) listen(addr netip.AddrPort) (PacketConn, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if addr.Port() == 0 {
		addr = netip.AddrPortFrom(addr.Addr(), n.next)
		n.next += 2
	}
	if _, ok := n.conns[addr]; ok {
		return nil, errors.New("address in use")
	}
	c := &memConn{n: n, addr: addr, in: make(chan sentPacket, 1024), done: make(chan struct{})}
	n.conns[addr] = c
	return c, nil
}

// take returns and forgets the packets written so far to addr.
func (n *memNet) take(to netip.AddrPort) [][]byte {
	var out [][]byte
	for _, p := range n.takeTimed(to) {
		out = append(out, p.data)
	}
	return out
}

// takeTimed is take with the packets' send times.
func (n *memNet) takeTimed(to netip.AddrPort) []sentPacket {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []sentPacket
	rest := n.sent[:0]
	for _, p := range n.sent {
		if p.to == to {
			out = append(out, p)
		} else {
			rest = append(rest, p)
		}
	}
	n.sent = rest
	return out
}

type memConn struct {
	n    *memNet
	addr netip.AddrPort
	in   chan sentPacket
	done chan struct{}
	once sync.Once
}

func (c *memConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case p := <-c.in:
		return copy(b, p.data), p.from, nil
	case <-c.done:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (c *memConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	c.n.mu.Lock()
	defer c.n.mu.Unlock()
	p := sentPacket{from: c.addr, to: to, data: append([]byte(nil), b...)}
	if c.n.now != nil {
		p.at = c.n.now()
	}
	c.n.sent = append(c.n.sent, p)
	if d, ok := c.n.conns[to]; ok {
		select {
		case d.in <- p:
		default:
		}
	}
	return len(b), nil
}

func (c *memConn) LocalAddr() net.Addr { return net.UDPAddrFromAddrPort(c.addr) }

func (c *memConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.n.mu.Lock()
		delete(c.n.conns, c.addr)
		c.n.mu.Unlock()
	})
	return nil
}

// harness drives a session's owner functions directly, on a virtual clock,
// without goroutines.
type harness struct {
	t      testing.TB
	s      *Session
	net    *memNet
	now    time.Time
	frames map[media.Kind][]media.Frame // copies
	events []Event
	dtmf   []rune
}

var peerAudio = netip.MustParseAddrPort("10.0.0.9:4000")
var peerVideo = netip.MustParseAddrPort("10.0.0.9:4002")

func newHarness(t testing.TB, cfg Config) *harness {
	h := &harness{t: t, net: newMemNet(), now: t0, frames: map[media.Kind][]media.Frame{}}
	h.net.now = func() time.Time { return h.now }
	cfg.Listen = h.net.listen
	cfg.IP = netip.MustParseAddr("127.0.0.1")
	if cfg.OnFrame == nil {
		cfg.OnFrame = func(f *media.Frame) {
			c := *f
			c.Payload = append([]byte(nil), f.Payload...)
			h.frames[f.Kind()] = append(h.frames[f.Kind()], c)
		}
	}
	cfg.OnEvent = func(ev Event) { h.events = append(h.events, ev) }
	cfg.OnDTMF = func(d rune, _ time.Duration) { h.dtmf = append(h.dtmf, d) }
	clk := newFakeClock()
	cfg.Clock = clk
	s, err := newSession(cfg)
	require.NoError(t, err)
	h.s = s
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return h
}

func (h *harness) start(specs ...media.StreamSpec) {
	h.s.clock.(*fakeClock).now = h.now
	require.NoError(h.t, h.s.start(specs))
	h.s.poll(h.now) // as the owner loop does after every request
}

// deliver feeds one datagram to the stream's RTP socket at time at, after
// polling everything due before it (as the owner loop would).
func (h *harness) deliver(k media.Kind, from netip.AddrPort, b []byte, at time.Time) {
	h.advance(at)
	st := h.s.stream(k)
	h.s.receive(st.rtpSock, b, from, at)
	h.s.poll(at)
}

func (h *harness) deliverRTCP(k media.Kind, from netip.AddrPort, b []byte, at time.Time) {
	h.advance(at)
	st := h.s.stream(k)
	h.s.receive(st.rtcpSock, b, from, at)
}

// advance runs the owner's timers up to at, then polls at at.
func (h *harness) advance(at time.Time) {
	h.timerPolls(at)
	if at.After(h.now) {
		h.now = at
	}
	h.s.poll(h.now)
}

// timerPolls runs the owner's timers up to at and returns how many times
// the timer fired (on the fake clock every deadline reached is one wake-up
// of the real owner goroutine).
func (h *harness) timerPolls(at time.Time) int {
	n := 0
	for {
		next, ok := h.s.nextDeadline(h.now)
		if !ok || next.After(at) {
			break
		}
		if next.After(h.now) {
			h.now = next
		}
		h.s.poll(h.now)
		if n2, ok := h.s.nextDeadline(h.now); ok && !n2.After(h.now) {
			// something stays due at this instant (should not happen)
			h.t.Fatalf("deadline %v does not move past %v", n2, h.now)
		}
		n++
	}
	return n
}

func (h *harness) eventsOf(typ EventType) []Event {
	var out []Event
	for _, e := range h.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func audioSpec(remote netip.AddrPort) media.StreamSpec {
	return media.StreamSpec{
		Kind: media.KindAudio,
		Formats: []media.PayloadFormat{
			{PayloadType: 8, Codec: media.CodecPCMA, ClockRate: 8000},
			{PayloadType: 0, Codec: media.CodecPCMU, ClockRate: 8000},
			{PayloadType: 101, Codec: media.CodecTelephoneEvent, ClockRate: 8000},
		},
		Remote:    remote,
		Direction: media.SendRecv,
	}
}

func videoSpec(remote netip.AddrPort, fb media.Feedback) media.StreamSpec {
	return media.StreamSpec{
		Kind: media.KindVideo,
		Formats: []media.PayloadFormat{
			{PayloadType: 96, Codec: media.CodecH264, ClockRate: 90000, Fmtp: "packetization-mode=1"},
			{PayloadType: 97, Codec: media.CodecVP8, ClockRate: 90000},
		},
		Remote:    remote,
		Direction: media.RecvOnly,
		Feedback:  fb,
	}
}

func marshalRTP(t testing.TB, p *rtp.Packet) []byte {
	b, err := p.Marshal()
	require.NoError(t, err)
	return b
}

// rtcpTypes parses compound RTCP packets written by the session.
func rtcpPackets(t testing.TB, raw [][]byte) []rtcp.Packet {
	var out []rtcp.Packet
	for _, b := range raw {
		if !rtcpx.IsRTCP(b) {
			continue
		}
		ps, err := rtcp.Unmarshal(b)
		require.NoError(t, err)
		out = append(out, ps...)
	}
	return out
}

func mustAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// rtcpAddr is the address add ports above a.
func rtcpAddr(a netip.AddrPort, add uint16) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr(), a.Port()+add)
}

func sortSlice[T any](s []T, less func(i, j int) bool) { sort.SliceStable(s, less) }
