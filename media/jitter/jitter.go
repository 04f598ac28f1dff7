// Package jitter is sipstream's per-stream RTP jitter buffer: it puts
// packets back in sequence order, drops duplicates and waits a bounded time
// for missing packets before declaring them lost.
//
// Unlike pion/interceptor's jitterbuffer, which starts playing once it
// holds a count of packets (50 by default) and whose Pop fails for as long
// as the packet due next is missing, it is bounded by time, not by a
// packet count, never stalls on a lost packet, keeps one buffer per
// stream, and owns a copy of every payload it holds.
//
// Sequence numbers are extended to 64 bits across the 16-bit wrap (RFC 3550
// §A.1). The interarrival jitter estimate is RFC 3550 §6.4.1's.
package jitter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/pion/rtp"
)

// Config configures a Buffer. The zero value is usable: a fixed 60 ms
// delay.
type Config struct {
	// Delay is how long a packet waits for missing earlier packets before
	// they are declared lost (when not Adaptive). Packets that arrive in
	// order are released at once: the delay only applies behind a gap.
	// Zero means 60 ms.
	Delay time.Duration
	// Adaptive makes the delay follow the measured interarrival jitter
	// (four times RFC 3550's estimate), between MinDelay and MaxDelay,
	// starting from Delay. It needs ClockRate.
	Adaptive bool
	// MinDelay is the adaptive delay's floor. Zero means 20 ms.
	MinDelay time.Duration
	// MaxDelay is the adaptive delay's ceiling. Zero means 300 ms.
	MaxDelay time.Duration
	// ClockRate is the stream's RTP clock rate, used for the jitter
	// estimate. Zero disables the estimate (and is an error with
	// Adaptive).
	ClockRate uint32
	// Capacity is the number of packet slots, the widest span of sequence
	// numbers held at once; a packet further ahead restarts the buffer
	// (after a second packet confirms the jump). Zero means 512; other
	// values are rounded up to a power of two.
	Capacity int
	// MaxPacketSize is the largest RTP packet accepted. Zero means 1500.
	MaxPacketSize int
}

// Stats counts what a Buffer did. Counters only grow.
type Stats struct {
	Received  uint64 // packets given to Push
	Released  uint64 // packets returned by Pop
	Lost      uint64 // sequence numbers declared lost (their wait ended)
	Late      uint64 // packets that arrived after their slot was released or declared lost
	Duplicate uint64 // second copies of a packet
	Invalid   uint64 // packets rejected as malformed or too large
	Flushed   uint64 // held packets discarded by a restart
	Resets    uint64 // restarts (SSRC change, sequence jump)
	// Jitter is the current interarrival jitter estimate.
	Jitter time.Duration
	// Delay is the current wait for missing packets.
	Delay time.Duration
}

// Errors of Push.
var (
	ErrInvalid  = errors.New("jitter: malformed RTP packet")
	ErrTooLarge = errors.New("jitter: RTP packet larger than MaxPacketSize")
)

type slotState uint8

const (
	slotEmpty slotState = iota
	slotHeld
	slotReleased
	slotLost
)

// slot is one sequence number's place. Only held slots (and the one Pop
// returned last) have a packet: packets live in entries, taken from the
// buffer's free list, so memory follows the packets held, not the slots
// (a video stream's 256 slots would otherwise keep 256 MTU-sized buffers).
type slot struct {
	ext     uint64
	arrival time.Time
	e       *entry
	state   slotState
}

// entry is a packet's storage: its bytes and the parsed packet aliasing
// them.
type entry struct {
	buf []byte
	pkt rtp.Packet
}

// maxMisorder is how far behind the head a packet is taken as late rather
// than as a restarted sequence (RFC 3550 §A.1).
const maxMisorder = 100

// adaptiveFactor multiplies the jitter estimate into the adaptive delay.
const adaptiveFactor = 4

// Buffer is a jitter buffer for one RTP stream (one SSRC at a time). Feed it
// with Push and drain it with Pop; both take the current time, so tests
// drive it with a fake clock. It allocates nothing per packet once every
// slot has held a packet of the stream's usual size. A Buffer is not safe
// for concurrent use.
type Buffer struct {
	cfg   Config
	slots []slot
	mask  uint64

	started bool
	ssrc    uint32
	head    uint64 // extended sequence number of the next packet to release
	highest uint64 // one past the highest held extended sequence number
	held    int

	minArrival      time.Time // earliest arrival among held packets
	minArrivalValid bool

	// probation: a far jump is accepted when the next packet follows it
	probe      slot
	probeValid bool

	delay    time.Duration
	lossWait time.Duration

	// RFC 3550 jitter estimate
	haveTransit bool
	lastArrival time.Time
	lastTS      uint32
	jitter      float64 // nanoseconds

	free     []*entry // storage not in use
	returned []*entry // packets Pop returned, freed by the next Push or Reset
	scratch  []byte
	stats    Stats
}

// New validates cfg and returns a Buffer.
func New(cfg Config) (*Buffer, error) {
	if cfg.Delay < 0 || cfg.MinDelay < 0 || cfg.MaxDelay < 0 || cfg.Capacity < 0 || cfg.MaxPacketSize < 0 {
		return nil, errors.New("jitter: negative configuration value")
	}
	if cfg.Delay == 0 {
		cfg.Delay = 60 * time.Millisecond
	}
	if cfg.MinDelay == 0 {
		cfg.MinDelay = 20 * time.Millisecond
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 300 * time.Millisecond
	}
	if cfg.Adaptive {
		if cfg.ClockRate == 0 {
			return nil, errors.New("jitter: Adaptive needs ClockRate")
		}
		if cfg.MinDelay > cfg.MaxDelay {
			return nil, fmt.Errorf("jitter: MinDelay %v above MaxDelay %v", cfg.MinDelay, cfg.MaxDelay)
		}
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = 512
	}
	if cfg.Capacity > 1<<15 {
		return nil, errors.New("jitter: Capacity above 32768")
	}
	n := 1
	for n < cfg.Capacity || n < 2*maxMisorder {
		n <<= 1
	}
	cfg.Capacity = n
	if cfg.MaxPacketSize == 0 {
		cfg.MaxPacketSize = 1500
	}
	b := &Buffer{
		cfg:     cfg,
		slots:   make([]slot, n),
		mask:    uint64(n - 1),
		delay:   cfg.Delay,
		scratch: make([]byte, cfg.MaxPacketSize),
	}
	if cfg.Adaptive {
		b.delay = min(max(cfg.Delay, cfg.MinDelay), cfg.MaxDelay)
	}
	return b, nil
}

// Stats returns the buffer's counters and estimates.
func (b *Buffer) Stats() Stats {
	s := b.stats
	s.Jitter = time.Duration(b.jitter)
	s.Delay = b.delay
	return s
}

// Len returns the number of packets held.
func (b *Buffer) Len() int { return b.held }

// Reset forgets every held packet and the current sequence, as for a new
// stream (the session calls it on re-INVITE or codec change if it wants a
// clean start; an SSRC change resets by itself).
func (b *Buffer) Reset() {
	b.stats.Flushed += uint64(b.held)
	b.recycle()
	for i := range b.slots {
		s := &b.slots[i]
		s.state = slotEmpty
		if s.e != nil {
			b.free = append(b.free, s.e)
			s.e = nil
		}
	}
	b.held = 0
	b.started = false
	b.probeValid = false
	b.minArrivalValid = false
	b.haveTransit = false
}

// restart begins a new sequence space at seq.
func (b *Buffer) restart(seq uint16, ssrc uint32) {
	if b.started {
		b.stats.Resets++
	}
	b.Reset()
	b.started = true
	b.ssrc = ssrc
	b.head = 1<<32 | uint64(seq)
	b.highest = b.head
}

// PushPacket is Push for a packet already parsed; it is marshalled into the
// buffer's own storage.
func (b *Buffer) PushPacket(pkt *rtp.Packet, now time.Time) error {
	n, err := pkt.MarshalTo(b.scratch)
	if err != nil {
		b.stats.Received++
		b.stats.Invalid++
		return ErrTooLarge
	}
	return b.Push(b.scratch[:n], now)
}

// Push stores a copy of the RTP packet in b (it does not retain b) that
// arrived at now. Late and duplicate packets are counted and dropped
// without error; malformed ones give ErrInvalid, oversized ones
// ErrTooLarge.
func (b *Buffer) Push(data []byte, now time.Time) error {
	b.stats.Received++
	b.recycle()
	if len(data) < 12 || data[0]>>6 != 2 {
		b.stats.Invalid++
		return ErrInvalid
	}
	if len(data) > b.cfg.MaxPacketSize {
		b.stats.Invalid++
		return ErrTooLarge
	}
	seq := binary.BigEndian.Uint16(data[2:])
	ssrc := binary.BigEndian.Uint32(data[8:])
	if !b.started || ssrc != b.ssrc {
		b.restart(seq, ssrc)
	}
	delta := int64(int16(seq - uint16(b.head)))
	ext := uint64(int64(b.head) + delta)
	switch {
	case delta < -maxMisorder || delta >= int64(len(b.slots)):
		return b.jump(data, seq, now)
	case delta < 0:
		s := &b.slots[ext&b.mask]
		if s.ext == ext && s.state == slotReleased {
			b.stats.Duplicate++
		} else {
			b.stats.Late++
		}
		return nil
	}
	b.probeValid = false
	return b.insert(data, ext, now)
}

// jump handles a packet far from the current sequence: the first one is set
// aside; if the next packet follows it, the buffer restarts there (RFC 3550
// §A.1's probation), so one stray packet neither resets the stream nor
// floods the loss counter.
func (b *Buffer) jump(data []byte, seq uint16, now time.Time) error {
	if b.probeValid && seq == uint16(b.probe.ext)+1 {
		probeSeq := uint16(b.probe.ext)
		b.restart(probeSeq, b.ssrc)
		// Move the probe packet into its slot.
		s := &b.slots[b.head&b.mask]
		s.e, b.probe.e = b.probe.e, s.e
		s.ext = b.head
		s.state = slotHeld
		s.arrival = b.probe.arrival
		b.held++
		b.highest = b.head + 1
		b.minArrival = s.arrival
		b.minArrivalValid = true
		b.probeValid = false
		return b.insert(data, b.head+1, now)
	}
	p := &b.probe
	if p.e == nil {
		p.e = b.entry(len(data))
	}
	p.e.buf = grow(p.e.buf, len(data), b.cfg.MaxPacketSize)
	p.e.buf = append(p.e.buf[:0], data...)
	if err := p.e.pkt.Unmarshal(p.e.buf); err != nil {
		b.stats.Invalid++
		b.probeValid = false
		return ErrInvalid
	}
	p.ext = uint64(seq)
	p.arrival = now
	b.probeValid = true
	return nil
}

func (b *Buffer) insert(data []byte, ext uint64, now time.Time) error {
	s := &b.slots[ext&b.mask]
	if s.ext == ext && s.state == slotHeld {
		b.stats.Duplicate++
		return nil
	}
	if s.e == nil {
		s.e = b.entry(len(data))
	}
	e := s.e
	e.buf = grow(e.buf, len(data), b.cfg.MaxPacketSize)
	e.buf = append(e.buf[:0], data...)
	if err := e.pkt.Unmarshal(e.buf); err != nil {
		s.state = slotEmpty
		b.free = append(b.free, e)
		s.e = nil
		b.stats.Invalid++
		return ErrInvalid
	}
	s.ext = ext
	s.state = slotHeld
	s.arrival = now
	b.held++
	if ext >= b.highest {
		b.highest = ext + 1
	}
	if b.minArrivalValid && now.Before(b.minArrival) {
		b.minArrival = now
	}
	b.estimate(e.pkt.Timestamp, now)
	return nil
}

// entry returns storage for a packet of n bytes from the free list, or new
// storage.
func (b *Buffer) entry(n int) *entry {
	if k := len(b.free); k > 0 {
		e := b.free[k-1]
		b.free[k-1] = nil
		b.free = b.free[:k-1]
		return e
	}
	return &entry{buf: make([]byte, 0, bufCap(n, b.cfg.MaxPacketSize))}
}

// recycle frees the storage of the packets Pop returned (its contract:
// valid until the next Push or Reset).
func (b *Buffer) recycle() {
	for i, e := range b.returned {
		b.free = append(b.free, e)
		b.returned[i] = nil
	}
	b.returned = b.returned[:0]
}

// bufCap is the capacity given to a buffer for n bytes: small for audio;
// once a stream needs more, the maximum, so that it never grows again.
func bufCap(n, maxSize int) int {
	if n <= 256 {
		return 256
	}
	return maxSize
}

// grow returns buf with room for n bytes.
func grow(buf []byte, n, maxSize int) []byte {
	if cap(buf) >= n {
		return buf
	}
	return make([]byte, 0, bufCap(n, maxSize))
}

// estimate updates the RFC 3550 §6.4.1 interarrival jitter.
func (b *Buffer) estimate(ts uint32, now time.Time) {
	if b.cfg.ClockRate == 0 {
		return
	}
	if b.haveTransit {
		media := float64(int32(ts-b.lastTS)) * 1e9 / float64(b.cfg.ClockRate)
		d := float64(now.Sub(b.lastArrival)) - media
		if d < 0 {
			d = -d
		}
		b.jitter += (d - b.jitter) / 16
		if b.cfg.Adaptive {
			b.delay = min(max(time.Duration(adaptiveFactor*b.jitter), b.cfg.MinDelay), b.cfg.MaxDelay)
		}
	}
	b.haveTransit = true
	b.lastArrival = now
	b.lastTS = ts
}

// gapDeadline returns when the missing packet at the head is given up: the
// earliest arrival among held packets plus the delay.
func (b *Buffer) gapDeadline() time.Time {
	if !b.minArrivalValid {
		first := true
		for e := b.head; e < b.highest; e++ {
			s := &b.slots[e&b.mask]
			if s.state == slotHeld && s.ext == e && (first || s.arrival.Before(b.minArrival)) {
				b.minArrival = s.arrival
				first = false
			}
		}
		b.minArrivalValid = true
	}
	return b.minArrival.Add(max(b.delay, b.lossWait))
}

// SetLossWait makes the wait for a missing packet at least d, whatever the
// delay: the time a retransmission asked for with a NACK needs to arrive
// (the round trip plus jitter). Packets that arrive in order still leave at
// once; only the packets behind a gap wait longer. Zero (or negative)
// restores the plain delay.
func (b *Buffer) SetLossWait(d time.Duration) { b.lossWait = max(d, 0) }

// Pop returns the next packet in sequence order if it may leave the buffer
// at now: at once when it is the next expected packet, or once the wait for
// the missing ones before it has expired (they are then counted lost and
// skipped; the gap shows in the sequence numbers). It returns false when
// nothing may leave yet; call it again at NextDeadline.
//
// The packet and its payload belong to the buffer: they are valid until the
// next call to Push, PushPacket or Reset.
func (b *Buffer) Pop(now time.Time) (*rtp.Packet, bool) {
	for b.held > 0 {
		s := &b.slots[b.head&b.mask]
		if s.state == slotHeld && s.ext == b.head {
			s.state = slotReleased
			b.held--
			b.head++
			b.stats.Released++
			if b.minArrivalValid && !s.arrival.After(b.minArrival) {
				b.minArrivalValid = false
			}
			e := s.e
			s.e = nil
			b.returned = append(b.returned, e)
			return &e.pkt, true
		}
		if now.Before(b.gapDeadline()) {
			return nil, false
		}
		s.ext = b.head
		s.state = slotLost
		b.head++
		b.stats.Lost++
	}
	return nil, false
}

// NextDeadline returns when Pop will next release a packet, if the buffer
// holds any: a time not after now when one is ready, else the end of the
// wait for the missing packet at the head.
func (b *Buffer) NextDeadline() (time.Time, bool) {
	if b.held == 0 {
		return time.Time{}, false
	}
	s := &b.slots[b.head&b.mask]
	if s.state == slotHeld && s.ext == b.head {
		return s.arrival, true
	}
	return b.gapDeadline(), true
}
