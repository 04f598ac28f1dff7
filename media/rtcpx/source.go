package rtcpx

import (
	"time"

	"github.com/pion/rtcp"
)

// Source keeps the reception statistics of one RTP source for Receiver
// Report blocks: extended highest sequence number, cumulative and
// interval loss, interarrival jitter, and the last SR's time. The zero
// value is ready; Reset starts over for a new source. It allocates nothing
// and is not safe for concurrent use.
type Source struct {
	started  bool
	maxSeq   uint16
	cycles   uint32
	baseSeq  uint32
	received uint32

	expectedPrior uint32
	receivedPrior uint32

	haveTransit bool
	transit     float64 // arrival minus timestamp, in timestamp units
	jitter      float64 // in timestamp units
	rate        uint32
	ref         time.Time

	haveSR    bool
	lastSR    uint32 // middle 32 bits of the SR's NTP timestamp
	lastSRArr time.Time
}

// maxDropout and maxMisorder are RFC 3550 §A.1's.
const (
	maxDropout  = 3000
	maxMisorder = 100
)

// Reset forgets everything (a new SSRC).
func (s *Source) Reset() { *s = Source{} }

// Received returns the number of packets counted.
func (s *Source) Received() uint32 { return s.received }

// Jitter returns the interarrival jitter estimate.
func (s *Source) Jitter() time.Duration {
	if s.rate == 0 {
		return 0
	}
	return time.Duration(s.jitter * float64(time.Second) / float64(s.rate))
}

// Update counts one packet with sequence number seq and RTP timestamp ts
// that arrived at arrival; clockRate is its payload format's clock (zero
// skips the jitter estimate, as for telephone-event packets).
func (s *Source) Update(seq uint16, ts uint32, arrival time.Time, clockRate uint32) {
	if !s.started {
		s.started = true
		s.maxSeq = seq
		s.baseSeq = uint32(seq)
		s.cycles = 0
		s.ref = arrival
	} else {
		udelta := seq - s.maxSeq
		switch {
		case udelta < maxDropout:
			if seq < s.maxSeq {
				s.cycles += 1 << 16
			}
			s.maxSeq = seq
		case udelta <= 0xffff-maxMisorder:
			// A large jump: the source restarted its sequence.
			s.maxSeq = seq
			s.baseSeq = uint32(seq)
			s.cycles = 0
			s.received = 0
			s.expectedPrior, s.receivedPrior = 0, 0
		default:
			// duplicate or reordered: counted, max unchanged
		}
	}
	s.received++
	if clockRate == 0 {
		return
	}
	if clockRate != s.rate {
		s.rate = clockRate
		s.haveTransit = false
		s.jitter = 0
	}
	arr := float64(arrival.Sub(s.ref)) * float64(clockRate) / float64(time.Second)
	transit := arr - float64(int32(ts))
	if s.haveTransit {
		d := transit - s.transit
		// the timestamp may wrap between two packets: bring d back
		for d > 1<<31 {
			d -= 1 << 32
		}
		for d < -(1 << 31) {
			d += 1 << 32
		}
		if d < 0 {
			d = -d
		}
		s.jitter += (d - s.jitter) / 16
	}
	s.transit = transit
	s.haveTransit = true
}

// SenderReport records the arrival of an SR from the source, for the LSR
// and DLSR fields.
func (s *Source) SenderReport(ntp uint64, arrival time.Time) {
	s.haveSR = true
	s.lastSR = uint32(ntp >> 16)
	s.lastSRArr = arrival
}

// Report returns the reception report block for the source with SSRC ssrc
// at now, and starts a new reporting interval (fraction lost is counted
// per interval).
func (s *Source) Report(ssrc uint32, now time.Time) rtcp.ReceptionReport {
	extMax := s.cycles + uint32(s.maxSeq)
	expected := extMax - s.baseSeq + 1
	if !s.started {
		expected = 0
	}
	lost := int64(expected) - int64(s.received)
	lost = max(min(lost, 0x7fffff), -0x800000)
	expInt := expected - s.expectedPrior
	recInt := s.received - s.receivedPrior
	s.expectedPrior, s.receivedPrior = expected, s.received
	var fraction uint8
	if lostInt := int64(expInt) - int64(recInt); expInt > 0 && lostInt > 0 {
		fraction = uint8(min(lostInt<<8/int64(expInt), 255))
	}
	rr := rtcp.ReceptionReport{
		SSRC:               ssrc,
		FractionLost:       fraction,
		TotalLost:          uint32(lost) & 0xffffff,
		LastSequenceNumber: extMax,
		Jitter:             uint32(s.jitter),
	}
	if s.haveSR {
		rr.LastSenderReport = s.lastSR
		rr.Delay = dlsr(now.Sub(s.lastSRArr))
	}
	return rr
}

// dlsr converts the delay since the last SR to the DLSR field's 1/65536 s
// units, saturating instead of overflowing: a peer that sent one SR and
// then stopped would otherwise make the product wrap after about 39 hours
// (time.Duration), or the field after about 18 hours.
func dlsr(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	sec := d / time.Second
	v := uint64(sec)<<16 + uint64(d%time.Second)*65536/uint64(time.Second)
	if v > 0xffffffff {
		return 0xffffffff
	}
	return uint32(v)
}
