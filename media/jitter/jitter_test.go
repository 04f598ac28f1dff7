package jitter

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

func raw(seq uint16, ssrc uint32, payload ...byte) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: seq, Timestamp: uint32(seq) * 160, SSRC: ssrc}, Payload: payload}
	b, err := p.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// drain pops everything that may leave at now and returns the sequence
// numbers.
func drain(b *Buffer, now time.Time) []uint16 {
	var out []uint16
	for {
		p, ok := b.Pop(now)
		if !ok {
			return out
		}
		out = append(out, p.SequenceNumber)
	}
}

// op is one step of a golden scenario: push seq at time at (ms), or, when
// seq is negative, pop at time at; want lists what the pops return.
type op struct {
	at   int
	push int // sequence number to push; -1: pop only
	ssrc uint32
	want []uint16
}

// cases is the golden table of scenarios with the default 60 ms delay; it
// also seeds the fuzz target.
var cases = []struct {
	name  string
	ops   []op
	stats Stats
}{
	{
		name: "in order: released at once",
		ops: []op{
			{at: 0, push: 10, want: []uint16{10}},
			{at: 20, push: 11, want: []uint16{11}},
			{at: 40, push: 12, want: []uint16{12}},
		},
		stats: Stats{Received: 3, Released: 3},
	},
	{
		name: "reordered within the delay",
		ops: []op{
			{at: 0, push: 10, want: []uint16{10}},
			{at: 20, push: 12},
			{at: 25, push: 13},
			{at: 30, push: 11, want: []uint16{11, 12, 13}},
		},
		stats: Stats{Received: 4, Released: 4},
	},
	{
		name: "loss declared after the delay, late packet counted",
		ops: []op{
			{at: 0, push: 10, want: []uint16{10}},
			{at: 20, push: 12},
			{at: 40, push: 13},
			{at: 79, push: -1},
			{at: 80, push: -1, want: []uint16{12, 13}},
			{at: 90, push: 11},
			{at: 100, push: 14, want: []uint16{14}},
		},
		stats: Stats{Received: 5, Released: 4, Lost: 1, Late: 1},
	},
	{
		name: "duplicates dropped, held or released",
		ops: []op{
			{at: 0, push: 10, want: []uint16{10}},
			{at: 1, push: 10},
			{at: 2, push: 12},
			{at: 3, push: 12},
			{at: 4, push: 11, want: []uint16{11, 12}},
		},
		stats: Stats{Received: 5, Released: 3, Duplicate: 2},
	},
	{
		name: "sequence wrap",
		ops: []op{
			{at: 0, push: 65534, want: []uint16{65534}},
			{at: 20, push: 0},
			{at: 21, push: 65535, want: []uint16{65535, 0}},
			{at: 40, push: 1, want: []uint16{1}},
		},
		stats: Stats{Received: 4, Released: 4},
	},
	{
		name: "SSRC change restarts",
		ops: []op{
			{at: 0, push: 10, want: []uint16{10}},
			{at: 20, push: 12},
			{at: 40, push: 5000, ssrc: 2, want: []uint16{5000}},
			{at: 60, push: 5001, ssrc: 2, want: []uint16{5001}},
		},
		stats: Stats{Received: 4, Released: 3, Flushed: 1, Resets: 1},
	},
	{
		name: "large jump: one stray packet ignored, a confirmed jump restarts",
		ops: []op{
			{at: 0, push: 10, want: []uint16{10}},
			{at: 20, push: 30000},
			{at: 40, push: 11, want: []uint16{11}},
			{at: 60, push: 40000},
			{at: 80, push: 40001, want: []uint16{40000, 40001}},
			{at: 200, push: -1},
		},
		stats: Stats{Received: 5, Released: 4, Resets: 1},
	},
}

func TestCases(t *testing.T) {
	for _, ca := range cases {
		t.Run(ca.name, func(t *testing.T) {
			b, err := New(Config{})
			require.NoError(t, err)
			for i, o := range ca.ops {
				if o.push >= 0 {
					ssrc := o.ssrc
					if ssrc == 0 {
						ssrc = 1
					}
					require.NoError(t, b.Push(raw(uint16(o.push), ssrc, byte(o.push)), ms(o.at)))
				}
				got := drain(b, ms(o.at))
				require.Equal(t, o.want, got, "op %d", i)
			}
			st := b.Stats()
			st.Jitter, st.Delay = 0, 0
			require.Equal(t, ca.stats, st)
		})
	}
}

func TestPayloadCopied(t *testing.T) {
	b, err := New(Config{})
	require.NoError(t, err)
	in := raw(2, 1, 0xaa, 0xbb)
	require.NoError(t, b.Push(raw(1, 1, 1), t0))
	_, ok := b.Pop(t0)
	require.True(t, ok)
	require.NoError(t, b.Push(raw(3, 1, 3), t0))
	require.NoError(t, b.Push(in, t0))
	in[12] = 0 // the caller reuses its read buffer
	p, ok := b.Pop(t0)
	require.True(t, ok)
	require.Equal(t, []byte{0xaa, 0xbb}, p.Payload)
}

func TestNextDeadline(t *testing.T) {
	b, err := New(Config{Delay: 50 * time.Millisecond})
	require.NoError(t, err)
	_, ok := b.NextDeadline()
	require.False(t, ok)
	require.NoError(t, b.Push(raw(1, 1), ms(0)))
	d, ok := b.NextDeadline()
	require.True(t, ok)
	require.False(t, d.After(ms(0)))
	drain(b, ms(0))
	require.NoError(t, b.Push(raw(3, 1), ms(10)))
	require.NoError(t, b.Push(raw(4, 1), ms(15)))
	d, ok = b.NextDeadline()
	require.True(t, ok)
	require.Equal(t, ms(60), d)
	require.Empty(t, drain(b, ms(59)))
	require.Equal(t, []uint16{3, 4}, drain(b, d))
}

func TestInvalid(t *testing.T) {
	b, err := New(Config{MaxPacketSize: 100})
	require.NoError(t, err)
	require.ErrorIs(t, b.Push([]byte{0x80, 0}, t0), ErrInvalid)
	require.ErrorIs(t, b.Push(make([]byte, 20), t0), ErrInvalid) // version 0
	require.ErrorIs(t, b.Push(raw(1, 1, make([]byte, 100)...), t0), ErrTooLarge)
	bad := raw(1, 1)
	bad[0] |= 0x20 // padding bit without padding
	require.ErrorIs(t, b.Push(bad, t0), ErrInvalid)
	require.Equal(t, uint64(4), b.Stats().Invalid)

	_, err = New(Config{Adaptive: true})
	require.Error(t, err)
	_, err = New(Config{Delay: -1})
	require.Error(t, err)
	_, err = New(Config{Adaptive: true, ClockRate: 8000, MinDelay: time.Second, MaxDelay: time.Millisecond})
	require.Error(t, err)
}

// TestAdaptive: steady 20 ms packets keep the delay at the floor; packets
// with ±15 ms arrival jitter raise it.
func TestAdaptive(t *testing.T) {
	b, err := New(Config{Adaptive: true, ClockRate: 8000, MinDelay: 10 * time.Millisecond, MaxDelay: 200 * time.Millisecond})
	require.NoError(t, err)
	for i := 0; i < 100; i++ {
		require.NoError(t, b.Push(raw(uint16(i), 1), ms(20*i)))
		drain(b, ms(20*i))
	}
	require.Equal(t, 10*time.Millisecond, b.Stats().Delay)
	for i := 100; i < 300; i++ {
		off := 0
		if i%2 == 0 {
			off = 15
		}
		require.NoError(t, b.Push(raw(uint16(i), 1), ms(20*i+off)))
		drain(b, ms(20*i+off))
	}
	st := b.Stats()
	require.InDelta(t, float64(15*time.Millisecond), float64(st.Jitter), float64(2*time.Millisecond))
	require.InDelta(t, float64(4*st.Jitter), float64(st.Delay), 1000)
}

func TestZeroAllocs(t *testing.T) {
	b, err := New(Config{Capacity: 256})
	require.NoError(t, err)
	pkts := make([][]byte, 1024)
	for i := range pkts {
		pkts[i] = raw(uint16(i), 1, make([]byte, 160)...)
	}
	i := 0
	step := func() {
		raw := pkts[i%len(pkts)]
		seq := uint16(i ^ 1) // pairs swapped: every other packet out of order
		raw[2], raw[3] = byte(seq>>8), byte(seq)
		if err := b.Push(raw, ms(i)); err != nil {
			panic(err)
		}
		for {
			if _, ok := b.Pop(ms(i)); !ok {
				break
			}
		}
		i++
	}
	for range 2048 {
		step()
	}
	require.Zero(t, testing.AllocsPerRun(1000, step))
	st := b.Stats()
	// The first packet (seq 1) starts the stream, so seq 0 is late; the
	// last one pushed waits for its pair.
	require.Equal(t, st.Received-2, st.Released)
	require.Equal(t, uint64(1), st.Late)
	require.Zero(t, st.Lost+st.Duplicate)
}

// TestLossWait: a loss wait longer than the delay holds the packets behind
// a gap until a retransmission can arrive, and a retransmission that comes
// within it fills the hole; in-order packets are not delayed.
func TestLossWait(t *testing.T) {
	b, err := New(Config{Delay: 50 * time.Millisecond})
	require.NoError(t, err)
	b.SetLossWait(150 * time.Millisecond)
	require.NoError(t, b.Push(raw(1, 1), ms(0)))
	require.Equal(t, []uint16{1}, drain(b, ms(0)))
	require.NoError(t, b.Push(raw(3, 1), ms(40)))
	d, ok := b.NextDeadline()
	require.True(t, ok)
	require.Equal(t, ms(190), d)
	require.Empty(t, drain(b, ms(100)), "the plain delay has passed, the loss wait has not")
	require.NoError(t, b.Push(raw(2, 1), ms(120))) // the retransmission
	require.Equal(t, []uint16{2, 3}, drain(b, ms(120)))
	require.Zero(t, b.Stats().Lost)
	// a packet that never comes is given up at the loss wait
	require.NoError(t, b.Push(raw(5, 1), ms(200)))
	require.Empty(t, drain(b, ms(349)))
	require.Equal(t, []uint16{5}, drain(b, ms(350)))
	require.Equal(t, uint64(1), b.Stats().Lost)
	// back to the plain delay
	b.SetLossWait(0)
	require.NoError(t, b.Push(raw(7, 1), ms(400)))
	require.Equal(t, []uint16{7}, drain(b, ms(450)))
}

// TestMemoryFollowsHeldPackets: a buffer's storage grows with the packets
// it holds at once, not with its slots: a long in-order video stream of
// MTU-sized packets, with a burst of reordering and a loss, leaves a
// handful of packet buffers, not one per slot.
func TestMemoryFollowsHeldPackets(t *testing.T) {
	b, err := New(Config{Capacity: 256})
	require.NoError(t, err)
	raw := make([]byte, 1200)
	raw[0] = 0x80
	push := func(seq uint16, at time.Duration) {
		raw[2], raw[3] = byte(seq>>8), byte(seq)
		require.NoError(t, b.Push(raw, time.Unix(0, 0).Add(at)))
	}
	pop := func(at time.Duration) int {
		n := 0
		for {
			p, ok := b.Pop(time.Unix(0, 0).Add(at))
			if !ok {
				return n
			}
			require.Len(t, p.Payload, 1200-12)
			n++
		}
	}
	for i := range 5000 {
		push(uint16(i), time.Duration(i)*time.Millisecond)
		pop(time.Duration(i) * time.Millisecond)
	}
	// Eight packets behind a missing one, then the gap gives up.
	for i := 5001; i < 5009; i++ {
		push(uint16(i), 5*time.Second)
	}
	assert.Zero(t, pop(5*time.Second), "waiting for 5000")
	assert.Equal(t, 8, pop(6*time.Second))
	storage := len(b.free) + len(b.returned)
	for _, s := range b.slots {
		if s.e != nil {
			storage++
		}
	}
	if b.probe.e != nil {
		storage++
	}
	assert.LessOrEqual(t, storage, 10, "packet buffers kept for 256 slots")
	assert.Equal(t, uint64(1), b.Stats().Lost)
}
