package session

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/media/rtpdtmf"
)

// writeRTP sends one RTP packet of the stream's own source: header built
// in place, payload appended, encrypted when SRTP is on.
func (st *stream) writeRTP(now time.Time, pt uint8, marker bool, ts uint32, payload []byte) {
	b := st.sendBuf[:12]
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], st.seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], st.localSSRC)
	b = append(b, payload...)
	st.seq++
	if st.srtpOut != nil {
		var err error
		if b, err = st.srtpOut.EncryptRTP(st.encBuf[:0], b, nil); err != nil {
			return
		}
	}
	dst := st.destination()
	if !sendable(dst) {
		return
	}
	if _, err := st.rtpSock.conn.WriteToUDPAddrPort(b, dst); err != nil {
		return
	}
	st.c.PacketsSent++
	st.sentSince = true
	st.sentPackets++
	st.sentOctets += uint32(len(payload))
	st.lastSentAt = now
}

// Silence goes out one 20 ms packet per ptime, but the owner goroutine
// wakes for it only once two packets are due (silenceSlack late): a call
// that receives nothing wakes 25 times a second instead of 50, and one
// that receives audio sends its silence from the wake-ups of arriving
// packets. The peer sees two packets 20 ms apart in timestamp arrive
// together, which its jitter buffer absorbs; it only ever plays silence.
const (
	silencePtime = 20 * time.Millisecond
	silenceSlack = silencePtime
)

// sendSilence sends the silence packets due at now (one per 20 ms), or
// the injected source's audio in their place (inject.go). While a
// DTMF event is being sent the audio timestamps advance without packets
// (RFC 4733 §2.5.1.2). After a stall longer than 200 ms it skips ahead
// rather than burst.
func (st *stream) sendSilence(now time.Time) {
	if !st.sending {
		return
	}
	const ptime = silencePtime
	step := st.sendRate / 50
	if now.Sub(st.nextSilence) > 10*ptime {
		missed := now.Sub(st.nextSilence) / ptime
		st.ts += uint32(missed) * step
		st.nextSilence = st.nextSilence.Add(missed * ptime)
		st.marker = true
	}
	for !now.Before(st.nextSilence) {
		if st.s.dtmf.active(st) {
			if st.src != nil {
				st.injected() // the event has priority: the sound's samples for this slot are dropped
			}
			st.ts += step
			st.marker = true // the audio after the event starts a talkspurt
		} else {
			payload := st.silence
			if st.src != nil {
				payload = st.injected()
			}
			st.writeRTP(now, st.sendPT, st.marker, st.ts, payload)
			st.marker = false
			st.ts += step
		}
		st.nextSilence = st.nextSilence.Add(ptime)
	}
}

// dtmfJob is one SendDTMF call.
type dtmfJob struct {
	digits   []rune
	done     chan error
	canceled atomic.Bool
}

// dtmfState sends queued digits one at a time on the audio stream.
type dtmfState struct {
	queue []*dtmfJob
	st    *stream
	sched []rtpdtmf.TimedPacket
	idx   int
	start time.Time
	pause time.Time // no event before this (the gap after a digit)
	ts    uint32
}

func dtmfCode(d rune) (uint8, bool) { return rtpdtmf.EventCode(d) }

func (s *Session) queueDTMF(job *dtmfJob) error {
	st := s.audio
	if !s.started {
		return ErrNotStarted
	}
	if st == nil || !st.configured || !st.hasDTMF || !st.sending {
		return ErrNoDTMF
	}
	s.dtmf.queue = append(s.dtmf.queue, job)
	return nil
}

// active reports whether an event is being sent on st.
func (d *dtmfState) active(st *stream) bool { return d.sched != nil && d.st == st }

func (d *dtmfState) deadline() (time.Time, bool) {
	if d.sched != nil {
		return d.start.Add(d.sched[d.idx].At), true
	}
	if len(d.queue) > 0 {
		return d.pause, true
	}
	return time.Time{}, false
}

func (d *dtmfState) abort(err error) {
	for _, j := range d.queue {
		j.done <- err
	}
	d.queue = nil
	d.sched = nil
}

// run sends the DTMF packets due at now and starts the next digit.
func (d *dtmfState) run(s *Session, now time.Time) {
	for {
		if d.sched != nil {
			for d.idx < len(d.sched) && !now.Before(d.start.Add(d.sched[d.idx].At)) {
				p := &d.sched[d.idx].Packet
				d.st.writeRTP(now, p.PayloadType, p.Marker, d.ts, p.Payload)
				d.idx++
			}
			if d.idx < len(d.sched) {
				return
			}
			d.sched = nil
			d.pause = now.Add(s.cfg.DTMFGap)
			d.st.c.DTMFSent++
			j := d.queue[0]
			j.digits = j.digits[1:]
			if len(j.digits) == 0 {
				j.done <- nil
				d.queue = d.queue[1:]
			}
		}
		if len(d.queue) == 0 || now.Before(d.pause) {
			return
		}
		j := d.queue[0]
		if len(j.digits) == 0 {
			j.done <- nil
			d.queue = d.queue[1:]
			continue
		}
		st := s.audio
		if j.canceled.Load() || st == nil || !st.sending || !st.hasDTMF {
			if !j.canceled.Load() {
				j.done <- ErrNoDTMF
			}
			d.queue = d.queue[1:]
			continue
		}
		code, _ := dtmfCode(j.digits[0])
		enc, err := rtpdtmf.NewEncoder(rtpdtmf.EncoderConfig{PayloadType: st.dtmfPT, SSRC: st.localSSRC, ClockRate: st.dtmfRate})
		if err != nil {
			j.done <- err
			d.queue = d.queue[1:]
			continue
		}
		// The event takes the place of the next audio packet: its
		// timestamp and its time slot.
		if st.nextSilence.Before(now) {
			st.sendSilence(now)
		}
		sched, err := enc.Encode(rtpdtmf.Event{Code: code, Duration: s.cfg.DTMFDuration, Volume: 10}, st.ts)
		if err != nil {
			j.done <- err
			d.queue = d.queue[1:]
			continue
		}
		d.st, d.sched, d.idx, d.start, d.ts = st, sched, 0, st.nextSilence, st.ts
	}
}

// sendable reports whether packets may go to dst: not to port 0, and not
// to 0.0.0.0, which old-style hold (RFC 2543, c=0.0.0.0) uses to mean
// "send nothing" and which Linux would deliver to the local host.
func sendable(dst netip.AddrPort) bool {
	return dst.IsValid() && dst.Port() != 0 && !dst.Addr().IsUnspecified()
}
