package session

import (
	"net/netip"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtcpx"
)

// loop is the owner goroutine.
func (s *Session) loop() {
	defer s.wg.Done()
	timer := s.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-s.done:
			s.dtmf.abort(ErrClosed)
			if s.audio != nil {
				s.audio.endSource(ErrClosed)
			}
			return
		case b := <-s.in:
			s.receiveBatch(b)
		case fn := <-s.reqs:
			fn()
		case <-s.wake:
		case <-timer.C():
		}
		now := s.clock.Now()
		s.poll(now)
		if next, ok := s.nextDeadline(now); ok {
			timer.Reset(max(next.Sub(now), 0))
		} else {
			timer.Reset(time.Hour)
		}
	}
}

// receiveBatch dispatches a batch of datagrams of one socket, in order,
// and returns the batch to its pool.
func (s *Session) receiveBatch(b *rxBatch) {
	sk := b.sock
	if b.haveDrops {
		// The counter is the socket's total: count what it grew by.
		sk.st.c.KernelDrops += uint64(b.drops - sk.drops)
		sk.drops = b.drops
	}
	for i := 0; i < b.n; i++ {
		p := &b.pkts[i]
		s.receive(sk, b.buf(i)[:p.n], p.from, b.at)
	}
	b.release()
}

// receive dispatches one datagram (the receive path's entry point).
func (s *Session) receive(sk *socket, b []byte, from netip.AddrPort, now time.Time) {
	st := sk.st
	// RTCP on the RTP port: rtcp-mux, or a peer that muxes anyway (RTP
	// payload types 64-95, which would collide, are never used).
	if sk.rtcp || rtcpx.IsRTCP(b) {
		st.receiveRTCP(b, from, now, sk.rtcp)
		return
	}
	st.receiveRTP(b, from, now) // counters are published by the poll that follows
}

// noteMedia records that RTP arrived (for the media timeouts).
func (s *Session) noteMedia(now time.Time) {
	s.lastMedia = now
	s.gotMedia = true
	if s.stopped {
		s.stopped = false
		s.emit(Event{Type: EventMediaResumed, Time: now})
	}
}

func (s *Session) streams() []*stream {
	out := make([]*stream, 0, 2)
	for _, st := range []*stream{s.audio, s.video} {
		if st != nil && st.configured {
			out = append(out, st)
		}
	}
	return out
}

// receiving reports whether any stream expects media from the peer.
func (s *Session) receiving() bool {
	for _, st := range []*stream{s.audio, s.video} {
		if st != nil && st.configured && st.spec.Direction.Receives() {
			return true
		}
	}
	return false
}

// poll does everything that is due at now.
func (s *Session) poll(now time.Time) {
	if !s.started {
		return
	}
	asked := s.keyframeAsked.Swap(false)
	s.dtmf.run(s, now) // before silence: an event due now takes this slot
	for _, st := range [2]*stream{s.audio, s.video} {
		if st == nil || !st.configured {
			continue
		}
		st.drain(now)
		if st.kind == media.KindVideo {
			if asked {
				st.need |= needAsked
			}
			st.pollNACK(now)
			st.keyframes(now)
		}
		st.sendSilence(now)
		if !now.Before(st.nextRTCP) {
			st.sendReport(now)
			st.nextRTCP = now.Add(s.cfg.RTCPInterval)
		}
		st.publish()
	}
	s.timeouts(now)
}

func (s *Session) timeouts(now time.Time) {
	if !s.receiving() {
		// On hold (or inactive): nothing expected; count again from now.
		s.lastMedia = now
		if !s.gotMedia {
			s.startedAt = now
		}
		return
	}
	if !s.gotMedia {
		if s.cfg.MediaTimeout > 0 && !s.timeoutFired && now.Sub(s.startedAt) >= s.cfg.MediaTimeout {
			s.timeoutFired = true
			s.emit(Event{Type: EventMediaTimeout, Time: now, Detail: "no RTP received since start"})
		}
		return
	}
	if s.cfg.IdleTimeout > 0 && !s.stopped && now.Sub(s.lastMedia) >= s.cfg.IdleTimeout {
		s.stopped = true
		s.emit(Event{Type: EventMediaStopped, Time: now, Detail: "RTP stopped"})
	}
}

// nextDeadline returns when poll has something to do next.
func (s *Session) nextDeadline(now time.Time) (time.Time, bool) {
	if !s.started {
		return time.Time{}, false
	}
	var next time.Time
	have := false
	at := func(t time.Time) {
		if !have || t.Before(next) {
			next, have = t, true
		}
	}
	for _, st := range [2]*stream{s.audio, s.video} {
		if st == nil || !st.configured {
			continue
		}
		if st.jb != nil {
			if d, ok := st.jb.NextDeadline(); ok {
				at(d)
			}
		}
		at(st.nextRTCP)
		if st.sending && !s.dtmf.active(st) {
			if st.src != nil {
				at(st.nextSilence) // injected audio leaves on time, not in pairs
			} else {
				at(st.nextSilence.Add(silenceSlack))
			}
		}
		if st.kind == media.KindVideo {
			if d, ok := st.nextKeyframe(); ok {
				at(d)
			}
			if d, ok := st.nackDeadline(); ok {
				at(d)
			}
		}
	}
	if d, ok := s.dtmf.deadline(); ok {
		at(d)
	}
	if s.receiving() {
		if !s.gotMedia && s.cfg.MediaTimeout > 0 && !s.timeoutFired {
			at(s.startedAt.Add(s.cfg.MediaTimeout))
		}
		if s.gotMedia && s.cfg.IdleTimeout > 0 && !s.stopped {
			at(s.lastMedia.Add(s.cfg.IdleTimeout))
		}
	}
	return next, have
}
