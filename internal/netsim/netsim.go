// Package netsim simulates an impaired network path for tests: packet
// loss, delay jitter, reordering and duplication, all drawn from a seeded
// generator so that a test sees the same impairments on every run.
//
// Sim decides each packet's fate on a virtual clock (for unit tests that
// build a whole arrival schedule); Conn applies the same impairments in real
// time to the packets written through a net.PacketConn (for session tests;
// the machines that run CI have no tc netem).
package netsim

import (
	"errors"
	"math/rand/v2"
	"sort"
	"time"
)

// Config describes the impairments. The zero value is a perfect path.
type Config struct {
	// Seed seeds the generator: equal seeds give equal impairments.
	Seed uint64
	// Loss is the probability (0-1) that a packet is lost.
	Loss float64
	// Delay is the base one-way delay.
	Delay time.Duration
	// Jitter is the largest extra delay; each packet gets a uniform draw
	// in [0, Jitter]. Jitter alone never reorders: like a real queue, a
	// packet never overtakes the one sent before it.
	Jitter time.Duration
	// Reorder is the probability (0-1) that a packet is held back and
	// overtaken by the packets sent after it.
	Reorder float64
	// ReorderDelay is the largest extra hold of a reordered packet (a
	// uniform draw in (0, ReorderDelay]). Zero means 20 ms.
	ReorderDelay time.Duration
	// Duplicate is the probability (0-1) that a packet arrives twice.
	Duplicate float64
}

// Stats counts what a Sim did to the packets.
type Stats struct {
	Sent, Lost, Reordered, Duplicated uint64
}

// Sim decides the fate of packets on a virtual clock. It is not safe for
// concurrent use.
type Sim struct {
	cfg      Config
	rng      *rand.Rand
	lastFIFO time.Duration
	stats    Stats
}

// New validates cfg and returns a Sim.
func New(cfg Config) (*Sim, error) {
	for _, p := range []float64{cfg.Loss, cfg.Reorder, cfg.Duplicate} {
		if p < 0 || p > 1 {
			return nil, errors.New("netsim: probability outside [0, 1]")
		}
	}
	if cfg.Delay < 0 || cfg.Jitter < 0 || cfg.ReorderDelay < 0 {
		return nil, errors.New("netsim: negative duration")
	}
	if cfg.ReorderDelay == 0 {
		cfg.ReorderDelay = 20 * time.Millisecond
	}
	return &Sim{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}, nil
}

// Stats returns the counters.
func (s *Sim) Stats() Stats { return s.stats }

func (s *Sim) uniform(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(s.rng.Int64N(int64(d) + 1))
}

// Fate decides what happens to a packet sent at virtual time sent: it
// returns its arrival times (none when lost, two when duplicated).
// Packets must be passed in send order.
func (s *Sim) Fate(sent time.Duration) (arrivals [2]time.Duration, n int) {
	s.stats.Sent++
	// Draw every number for every packet so that one impairment's
	// setting does not shift the others' random sequence.
	lost := s.rng.Float64() < s.cfg.Loss
	jit := s.uniform(s.cfg.Jitter)
	reorder := s.rng.Float64() < s.cfg.Reorder
	hold := s.uniform(s.cfg.ReorderDelay-1) + 1
	dup := s.rng.Float64() < s.cfg.Duplicate
	dupJit := s.uniform(s.cfg.Jitter)
	if lost {
		s.stats.Lost++
		return arrivals, 0
	}
	at := max(sent+s.cfg.Delay+jit, s.lastFIFO)
	if reorder {
		s.stats.Reordered++
		at += hold
	} else {
		s.lastFIFO = at
	}
	arrivals[0] = at
	n = 1
	if dup {
		s.stats.Duplicated++
		arrivals[1] = at + dupJit
		n = 2
	}
	return arrivals, n
}

// Packet is a packet on the virtual clock: when it was sent or arrives,
// and its bytes.
type Packet struct {
	At   time.Duration
	Data []byte
	// Index is the packet's position in the sent schedule.
	Index int
}

// Schedule runs sent (in send order) through a new Sim with cfg and returns
// the packets as they arrive, sorted by arrival time (ties keep send
// order). Duplicates share Data with their original.
func Schedule(cfg Config, sent []Packet) ([]Packet, Stats, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, Stats{}, err
	}
	out := make([]Packet, 0, len(sent))
	for i, p := range sent {
		arr, n := s.Fate(p.At)
		for k := 0; k < n; k++ {
			out = append(out, Packet{At: arr[k], Data: p.Data, Index: i})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out, s.Stats(), nil
}
