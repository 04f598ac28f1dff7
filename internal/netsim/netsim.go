// Package netsim simulates an impaired network path for tests: packet
// loss (random, or in bursts with the Gilbert–Elliott model), delay
// jitter, reordering and duplication, all drawn from a seeded generator so
// that a test sees the same impairments on every run.
//
// Sim decides each packet's fate on a virtual clock (for unit tests that
// build a whole arrival schedule); Conn applies the same impairments in real
// time to the packets written through a net.PacketConn, and RecvConn to the
// packets a UDP socket receives (for session and interop tests: a real
// phone on a bad link; the machines that run CI have no tc netem).
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
	// Burst adds Gilbert–Elliott burst loss on top of Loss (a packet is
	// lost when either says so). The zero value adds none.
	Burst GilbertElliott
}

// GilbertElliott is the two-state burst loss model: the path is either
// Good or Bad, it moves from Good to Bad with probability P and back with
// probability R at each packet, and loses a packet with probability
// LossGood or LossBad depending on the state it is in.
//
// With LossGood 0 and LossBad 1 (the Gilbert model, what BurstLoss
// returns) the average loss is P/(P+R) and bursts last 1/R packets on
// average; for 2 % average loss in bursts of about 3 packets take R = 1/3
// and P = R·0.02/0.98 ≈ 0.0068. In general the average loss is
// (R·LossGood + P·LossBad)/(P+R).
//
// The model draws from its own generator (seeded from Config.Seed), so
// enabling it does not change the other impairments' random sequence.
type GilbertElliott struct {
	// P is the probability (0-1) of moving from Good to Bad at a packet.
	// Zero disables the model.
	P float64
	// R is the probability (0-1) of moving from Bad to Good at a packet.
	// It must be positive when P is.
	R float64
	// LossGood is the loss probability (0-1) in the Good state.
	LossGood float64
	// LossBad is the loss probability (0-1) in the Bad state. Zero means 1
	// (every packet of a burst is lost).
	LossBad float64
}

// BurstLoss returns the Gilbert model (no loss in Good, all lost in Bad)
// with average loss avg (0-1) in bursts of meanBurst packets on average
// (at least 1).
func BurstLoss(avg, meanBurst float64) GilbertElliott {
	if avg <= 0 {
		return GilbertElliott{}
	}
	meanBurst = max(meanBurst, 1)
	r := 1 / meanBurst
	return GilbertElliott{P: r * avg / (1 - avg), R: r, LossBad: 1}
}

// AverageLoss returns the model's long-run loss probability.
func (g GilbertElliott) AverageLoss() float64 {
	if g.P <= 0 {
		return 0
	}
	bad := g.LossBad
	if bad == 0 {
		bad = 1
	}
	return (g.R*g.LossGood + g.P*bad) / (g.P + g.R)
}

// Stats counts what a Sim did to the packets.
type Stats struct {
	Sent, Lost, Reordered, Duplicated uint64
	// Bursts counts the runs of consecutive lost packets; Lost/Bursts is
	// the mean burst length and LongestBurst the longest run.
	Bursts, LongestBurst uint64
}

// Sim decides the fate of packets on a virtual clock. It is not safe for
// concurrent use.
type Sim struct {
	cfg      Config
	rng      *rand.Rand
	geRNG    *rand.Rand // Gilbert–Elliott draws, apart from rng
	bad      bool       // Gilbert–Elliott state
	run      uint64     // current run of lost packets
	lastFIFO time.Duration
	stats    Stats
}

// New validates cfg and returns a Sim.
func New(cfg Config) (*Sim, error) {
	for _, p := range []float64{cfg.Loss, cfg.Reorder, cfg.Duplicate, cfg.Burst.P, cfg.Burst.R, cfg.Burst.LossGood, cfg.Burst.LossBad} {
		if p < 0 || p > 1 {
			return nil, errors.New("netsim: probability outside [0, 1]")
		}
	}
	if cfg.Delay < 0 || cfg.Jitter < 0 || cfg.ReorderDelay < 0 {
		return nil, errors.New("netsim: negative duration")
	}
	if cfg.Burst.P > 0 && cfg.Burst.R <= 0 {
		return nil, errors.New("netsim: Gilbert–Elliott P without R would stay in the Bad state for good")
	}
	if cfg.ReorderDelay == 0 {
		cfg.ReorderDelay = 20 * time.Millisecond
	}
	if cfg.Burst.LossBad == 0 {
		cfg.Burst.LossBad = 1
	}
	return &Sim{
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		geRNG: rand.New(rand.NewPCG(cfg.Seed^0x6a09e667f3bcc909, cfg.Seed+0xbb67ae8584caa73b)),
	}, nil
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
	if s.burstLost() {
		lost = true
	}
	if lost {
		s.stats.Lost++
		s.run++
		if s.run == 1 {
			s.stats.Bursts++
		}
		s.stats.LongestBurst = max(s.stats.LongestBurst, s.run)
		return arrivals, 0
	}
	s.run = 0
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

// burstLost steps the Gilbert–Elliott chain by one packet and says
// whether it loses the packet: the state is drawn first, then the loss in
// that state.
func (s *Sim) burstLost() bool {
	g := s.cfg.Burst
	if g.P <= 0 {
		return false
	}
	move, loss := s.geRNG.Float64(), s.geRNG.Float64()
	if s.bad {
		if move < g.R {
			s.bad = false
		}
	} else if move < g.P {
		s.bad = true
	}
	if s.bad {
		return loss < g.LossBad
	}
	return loss < g.LossGood
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
