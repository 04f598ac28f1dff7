package session

// Loss recovery on a receiving video stream: NACK and RTX (RFC 4585,
// RFC 4588), keyframe requests that do not give up (PLI → FIR → the SIP
// INFO fallback, repeated after the peer's measured response time), early
// keyframe requests that keep the keyframe interval under a bound, and the
// freeze accounting that shows how well it all worked.

import (
	"encoding/binary"
	"time"

	"github.com/pion/rtcp"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtcpx"
	"github.com/sipstream/sipstream/media/rtph264"
)

// LossPolicy says what a video stream delivers after a loss that NACK did
// not repair.
type LossPolicy uint8

const (
	// LossFreeze never delivers a broken video frame: after a loss the
	// stream holds the last good picture until the keyframe it asks the
	// peer for arrives (as soon as the round trip allows). Viewers see a
	// short freeze; what they see is always correct.
	LossFreeze LossPolicy = iota
	// LossConceal delivers what arrived of a broken frame and the frames
	// after it, and leaves concealment to the viewers' decoders, while the
	// keyframe that cleans the picture up is asked for. Viewers see motion
	// go on with a smear or blocky patches until that keyframe, instead of
	// a freeze; platforms accept such streams, but some decoders log
	// errors for them.
	LossConceal
)

// String returns "freeze" or "conceal".
func (p LossPolicy) String() string {
	if p == LossConceal {
		return "conceal"
	}
	return "freeze"
}

// Why a stream wants a keyframe.
const (
	needDecoder uint8 = 1 << iota // the depacketizer waits for one (loss, start)
	needAsked                     // RequestKeyframe (a sink connected)
	needEarly                     // the keyframe interval nears MaxKeyframeInterval
)

// Keyframe request pacing.
const (
	// maxAskedTries bounds the requests made for needAsked and needEarly
	// alone when no keyframe comes (a peer that ignores them).
	maxAskedTries = 3
	// maxKeyframeRetry caps the time between requests while frozen.
	maxKeyframeRetry = 2 * time.Second
	// fallbackGap is the least time between two SIP INFO requests (each is
	// a SIP transaction).
	fallbackGap = time.Second
	// defaultResponse is the assumed keyframe response time until one is
	// measured and no round trip is known.
	defaultResponse = 250 * time.Millisecond
	// defaultFrame is the assumed video frame interval until one is seen.
	defaultFrame = 40 * time.Millisecond
)

// NACK pacing.
const (
	// maxNACK is the widest gap asked for: a wider one is a restart or a
	// long outage, which a keyframe repairs better.
	maxNACK = 64
	// maxNACKEntries bounds the sequence numbers awaited at once.
	maxNACKEntries = 256
	// maxNACKTries is how often one sequence number is asked for.
	maxNACKTries = 2
	// trustNACK is how many packets are asked for before a peer that has
	// never retransmitted one is taken as one that does not: the stream
	// then stops holding frames for retransmissions (it still asks).
	trustNACK = 12
)

type nackEntry struct {
	seq         uint16
	first, last time.Time
	tries       uint8
}

// unwrapRTX turns an RFC 4588 retransmission into the packet it resends,
// in st.rtxBuf: the original sequence number from the payload's first two
// bytes, the original payload type and the media stream's SSRC. It
// returns false for a packet too short to be one.
func (st *stream) unwrapRTX(b []byte, apt uint8) ([]byte, bool) {
	hl := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < hl+4 {
			return nil, false
		}
		hl += 4 + 4*int(binary.BigEndian.Uint16(b[hl+2:]))
	}
	end := len(b)
	if b[0]&0x20 != 0 && end > 0 {
		end -= int(b[end-1])
	}
	if hl+2 > end {
		return nil, false
	}
	out := append(st.rtxBuf[:0], b[:hl]...)
	out[0] &^= 0x20 // padding dropped
	out[1] = out[1]&0x80 | apt
	copy(out[2:4], b[hl:hl+2])
	binary.BigEndian.PutUint32(out[8:], st.ssrc)
	out = append(out, b[hl+2:end]...)
	st.rtxBuf = out
	return out, true
}

// nackEnabled reports whether the stream asks for retransmissions.
func (st *stream) nackEnabled() bool {
	return st.kind == media.KindVideo && st.spec.Feedback.NACK && st.s.cfg.RetransmitWait >= 0
}

// peerRetransmits reports whether waiting for retransmissions is worth it:
// until trustNACK packets were asked for, or once one came back.
func (st *stream) peerRetransmits() bool {
	return st.c.NACKedPackets < trustNACK || st.c.PacketsRecovered > 0
}

// lossWait is how long packets behind a gap wait for the missing one:
// time for two requests and their answers (the first retransmission may
// be lost too), each a round trip plus the jitter, at most RetransmitWait.
// The packets leave as soon as the gap is filled, so the wait costs only
// when nothing comes.
func (st *stream) lossWait() time.Duration {
	if !st.nackEnabled() {
		return 0
	}
	return min(2*st.renack()+10*time.Millisecond, st.s.cfg.RetransmitWait)
}

// renack is how long to wait for a retransmission before asking again.
func (st *stream) renack() time.Duration {
	rtt := st.s.rtt
	if rtt == 0 {
		rtt = 60 * time.Millisecond
	}
	return rtt + st.recv.Jitter() + 10*time.Millisecond
}

// arrived looks at a video packet as it arrives, before the jitter buffer
// (packet b of format f, sequence number seq, timestamp ts): a forward
// jump in sequence numbers is a loss, seen here a jitter-buffer wait
// before the depacketizer sees it. A peer that retransmits is asked for
// the missing packets at once (NACK); from one that does not, the keyframe
// that repairs the loss is asked for at once, and asked again at once when
// the loss breaks the very keyframe that answers the request: a loss next
// to one of its packets, before (its SPS, or an SEI that comes first) or
// after.
func (st *stream) arrived(seq uint16, ts uint32, b []byte, f *format, now time.Time) {
	answering := st.need != 0 && st.kfSent > 0
	if answering && f.pf.Codec == media.CodecH264 && rtph264.IsKeyframePacket(rtpPayload(b)) {
		if st.haveGapTS && st.gapTS == ts && (!st.haveKeyTS || st.keyTS != ts) {
			st.brokenAnswer(now)
		}
		st.keyTS, st.haveKeyTS = ts, true
	}
	prev := st.prevTS
	st.prevTS = ts
	if gap := st.trackSeq(seq, now); gap == 0 || (st.nackEnabled() && st.peerRetransmits()) {
		return
	}
	st.gapTS, st.haveGapTS = ts, true
	if answering && st.haveKeyTS && (ts == st.keyTS || prev == st.keyTS) {
		st.brokenAnswer(now)
	}
	st.need |= needDecoder
}

// brokenAnswer notes that the keyframe answering the last request lost a
// packet: it is asked for again without waiting. While no response time
// is known, this answer gives it: the keyframe that finally comes, timed
// from the first request, would overstate it (342 ms seen for a phone
// that answers in 120 ms, which kept its retries 400-500 ms apart for
// seconds).
func (st *stream) brokenAnswer(now time.Time) {
	st.kfAgain = true
	if st.kfResp == 0 {
		st.kfResp = now.Sub(st.kfLast)
	}
}

// rtpPayload returns the payload of an RTP packet that the jitter buffer
// will validate (nil when the header does not fit).
func rtpPayload(b []byte) []byte {
	hl := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 {
		if len(b) < hl+4 {
			return nil
		}
		hl += 4 + 4*int(binary.BigEndian.Uint16(b[hl+2:]))
	}
	if hl > len(b) {
		return nil
	}
	return b[hl:]
}

// trackSeq notes an RTP sequence number that arrived (before the jitter
// buffer) and returns how many packets a forward jump skipped. With NACK
// it clears the number from those awaited, and asks at once for the ones
// the jump skipped.
func (st *stream) trackSeq(seq uint16, now time.Time) int {
	for i := range st.nacks {
		if st.nacks[i].seq == seq {
			st.nacks = append(st.nacks[:i], st.nacks[i+1:]...)
			st.c.PacketsRecovered++
			return 0
		}
	}
	if !st.haveHigh {
		st.haveHigh, st.highSeq = true, seq
		return 0
	}
	diff := seq - st.highSeq
	if diff == 0 || diff >= 0x8000 {
		return 0 // old, duplicate or reordered
	}
	st.highSeq = seq
	if diff == 1 || diff > maxNACK {
		return 0 // in order, or a restart rather than a loss
	}
	if st.nackEnabled() {
		st.nackBuf = st.nackBuf[:0]
		for s := seq - diff + 1; s != seq; s++ {
			st.nackBuf = append(st.nackBuf, s)
			if len(st.nacks) < maxNACKEntries {
				st.nacks = append(st.nacks, nackEntry{seq: s, first: now, last: now, tries: 1})
			}
		}
		st.sendNACK(now)
	}
	return int(diff - 1)
}

// sendNACK sends a generic NACK for the sequence numbers in st.nackBuf.
func (st *stream) sendNACK(now time.Time) {
	if len(st.nackBuf) == 0 {
		return
	}
	st.writeRTCP(now, &rtcp.ReceiverReport{SSRC: st.localSSRC}, &rtcp.TransportLayerNack{
		SenderSSRC: st.localSSRC, MediaSSRC: st.ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(st.nackBuf),
	})
	st.c.NACKSent++
	st.c.NACKedPackets += uint64(len(st.nackBuf))
}

// pollNACK forgets the sequence numbers the jitter buffer no longer waits
// for and asks once more for those whose retransmission is overdue but
// could still arrive in time.
func (st *stream) pollNACK(now time.Time) {
	if len(st.nacks) == 0 {
		return
	}
	retry, hold := st.renack(), st.lossWait()
	st.nackBuf = st.nackBuf[:0]
	kept := st.nacks[:0]
	for _, e := range st.nacks {
		if now.Sub(e.first) >= st.s.cfg.RetransmitWait {
			continue
		}
		if at, ok := renackAt(e, retry, hold); ok && !now.Before(at) {
			e.tries++
			e.last = now
			st.nackBuf = append(st.nackBuf, e.seq)
		}
		kept = append(kept, e)
	}
	st.nacks = kept
	st.sendNACK(now)
}

// renackAt is when an awaited sequence number is asked for again: retry
// after the last request, if it has tries left and an answer to it could
// still arrive within hold of the first request.
func renackAt(e nackEntry, retry, hold time.Duration) (time.Time, bool) {
	at := e.last.Add(retry)
	if e.tries >= maxNACKTries || at.Add(retry).Sub(e.first) >= hold {
		return time.Time{}, false
	}
	return at, true
}

// nackDeadline returns when pollNACK has something to do.
func (st *stream) nackDeadline() (time.Time, bool) {
	if len(st.nacks) == 0 {
		return time.Time{}, false
	}
	var next time.Time
	retry, hold := st.renack(), st.lossWait()
	for i, e := range st.nacks {
		d := e.first.Add(st.s.cfg.RetransmitWait)
		if at, ok := renackAt(e, retry, hold); ok {
			d = minTime(d, at)
		}
		if i == 0 || d.Before(next) {
			next = d
		}
	}
	return next, true
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// roundTrip takes the round trip from the report blocks of an SR or RR
// about this stream's own SRs.
func (st *stream) roundTrip(p rtcpx.Packet, now time.Time) {
	_ = rtcpx.ReportBlocks(p, func(blk rtcpx.ReportBlock) {
		if blk.SSRC != st.localSSRC {
			return
		}
		if rtt, ok := rtcpx.RoundTrip(blk, now); ok {
			st.s.noteRTT(rtt)
		}
	})
}

// noteRTT folds a round-trip sample into the session's estimate (all
// streams of a call share the path).
func (s *Session) noteRTT(rtt time.Duration) {
	if s.rtt == 0 {
		s.rtt = rtt
		return
	}
	s.rtt += (rtt - s.rtt) / 4
}

// frameInterval is the stream's measured frame interval.
func (st *stream) frameInterval() time.Duration {
	if st.frameDur == 0 {
		return defaultFrame
	}
	return st.frameDur
}

// response is the expected time from a keyframe request to the keyframe:
// measured, else the round trip and three frames, else a default.
func (st *stream) response() time.Duration {
	switch {
	case st.kfResp > 0:
		return st.kfResp
	case st.s.rtt > 0:
		return st.s.rtt + 3*st.frameInterval()
	}
	return defaultResponse
}

// retryInterval is the time between keyframe requests while none comes:
// the response time and a frame, at least KeyframeMinGap, backing off
// after the fourth unanswered request up to maxKeyframeRetry.
func (st *stream) retryInterval() time.Duration {
	d := max(st.response()+st.frameInterval(), st.s.cfg.KeyframeMinGap)
	if n := st.kfSent - 4; n > 0 {
		d <<= min(n, 5)
	}
	return min(d, maxKeyframeRetry)
}

// earlyAfter is how long after a keyframe the stream asks for the next one
// with MaxKeyframeInterval: early enough that even a request that has to
// be repeated once is answered in time.
func (st *stream) earlyAfter() time.Duration {
	max := st.s.cfg.MaxKeyframeInterval
	lead := 2*(st.response()+st.frameInterval()) + st.frameInterval()
	return max - min(lead, max/2)
}

// nextKeyframe returns when keyframes has something to do.
func (st *stream) nextKeyframe() (time.Time, bool) {
	if !st.spec.Direction.Receives() {
		return time.Time{}, false
	}
	if st.need != 0 {
		if st.kfSent == 0 {
			return time.Time{}, true
		}
		return st.retryAt(), true
	}
	if st.s.cfg.MaxKeyframeInterval > 0 && st.haveKeyAt {
		return st.lastKeyAt.Add(st.earlyAfter()), true
	}
	return time.Time{}, false
}

// keyframes asks the peer for a keyframe when the stream needs one and the
// previous request went unanswered for retryInterval: PLI, then PLI, FIR
// and the fallback (SIP INFO picture_fast_update) in turn, each as the
// peer accepts it.
func (st *stream) keyframes(now time.Time) {
	if !st.spec.Direction.Receives() {
		st.need, st.kfSent = 0, 0
		return
	}
	if st.need == 0 && st.s.cfg.MaxKeyframeInterval > 0 && st.haveKeyAt && now.Sub(st.lastKeyAt) >= st.earlyAfter() {
		st.need |= needEarly
	}
	if st.need == 0 {
		return
	}
	if st.kfSent > 0 && now.Before(st.retryAt()) {
		return
	}
	if st.need&needDecoder == 0 && st.kfSent >= maxAskedTries {
		// Asked (or early) only, and the peer ignores us: wait for the
		// next keyframe it sends by itself, or the next reason.
		st.need, st.kfSent = 0, 0
		if st.haveKeyAt {
			st.lastKeyAt = now // ask early again one interval from now
		}
		return
	}
	fb := st.spec.Feedback
	pli, fir := fb.PLI && st.haveSSRC, fb.FIR && st.haveSSRC
	fallback := st.s.cfg.RequestKeyframeFallback != nil
	if !st.haveSSRC && (fb.PLI || fb.FIR) {
		// The peer's SSRC is not known yet (no video yet): PLI and FIR
		// need it, and the peer that accepts them would rather get them
		// than a SIP INFO. Try again later.
		st.kfLast = now
		st.kfSent = max(st.kfSent, 1)
		return
	}
	var method string
	switch st.kfSent % 4 {
	case 0, 1:
		method = pick(pli, "pli", fir, "fir")
	case 2:
		method = pick(fir, "fir", pli, "pli")
	case 3:
		if fallback && (!st.haveFallback || now.Sub(st.lastFallback) >= fallbackGap) {
			method = "fallback"
		} else {
			method = pick(pli, "pli", fir, "fir")
		}
	}
	if method == "" {
		method = "fallback" // retryAt kept it a second after the last one
	}
	switch method {
	case "pli":
		st.writeRTCP(now, &rtcp.ReceiverReport{SSRC: st.localSSRC}, &rtcp.PictureLossIndication{SenderSSRC: st.localSSRC, MediaSSRC: st.ssrc})
		st.c.PLISent++
	case "fir":
		st.firSeq++
		st.writeRTCP(now, &rtcp.ReceiverReport{SSRC: st.localSSRC}, &rtcp.FullIntraRequest{SenderSSRC: st.localSSRC, MediaSSRC: st.ssrc,
			FIR: []rtcp.FIREntry{{SSRC: st.ssrc, SequenceNumber: st.firSeq}}})
		st.c.FIRSent++
	default:
		select {
		case st.s.fallback <- struct{}{}:
		default: // one already pending
		}
		st.c.KeyframeFallbacks++
		st.lastFallback, st.haveFallback = now, true
	}
	if st.kfSent == 0 {
		st.kfFirst = now
	}
	st.kfSent++
	st.kfLast = now
	st.kfAgain, st.haveKeyTS, st.haveGapTS = false, false, false
	st.s.emit(Event{Type: EventKeyframeRequested, Kind: st.kind, Time: now, SSRC: st.ssrc, Detail: method})
}

// retryAt is when an unanswered request is repeated: retryInterval after
// the last one (KeyframeMinGap after it when the answer came broken), and
// at least fallbackGap after the last fallback when the fallback is the
// only way to ask.
func (st *stream) retryAt() time.Time {
	at := st.kfLast.Add(st.retryInterval())
	if st.kfAgain {
		at = st.kfLast.Add(st.s.cfg.KeyframeMinGap)
	}
	fb := st.spec.Feedback
	if onlyFallback := !(fb.PLI || fb.FIR); onlyFallback && st.haveFallback {
		if f := st.lastFallback.Add(fallbackGap); f.After(at) {
			at = f
		}
	}
	return at
}

// pick returns the first name whose condition holds, or "".
func pick(c1 bool, n1 string, c2 bool, n2 string) string {
	switch {
	case c1:
		return n1
	case c2:
		return n2
	}
	return ""
}

// gotKeyframe notes a keyframe delivered at now: it ends the requests and
// measures the response time.
func (st *stream) gotKeyframe(now time.Time) {
	st.c.KeyframesReceived++
	// One request: its response time. Several: from the first, which
	// overestimates when the first answer was lost, so it is used only
	// while nothing better is known.
	if st.kfSent == 1 || (st.kfSent > 1 && st.kfResp == 0) {
		if d := now.Sub(st.kfFirst); d > 0 && d < maxKeyframeRetry {
			if st.kfResp == 0 {
				st.kfResp = d
			} else {
				st.kfResp += (d - st.kfResp) / 4
			}
		}
	}
	st.need, st.kfSent = 0, 0
	st.kfAgain, st.haveKeyTS, st.haveGapTS = false, false, false
	st.lastKeyAt, st.haveKeyAt = now, true
}

// noteFrameTS measures the frame interval from consecutive video frames.
func (st *stream) noteFrameTS(ts, rate uint32) {
	if st.haveFrameTS && rate > 0 {
		if d := int32(ts - st.lastFrameTS); d > 0 && int64(d) < int64(rate) {
			dur := time.Duration(int64(d) * int64(time.Second) / int64(rate))
			if st.frameDur == 0 {
				st.frameDur = dur
			} else {
				st.frameDur += (dur - st.frameDur) / 8
			}
		}
	}
	st.lastFrameTS, st.haveFrameTS = ts, true
}

// delivered accounts a video frame delivered at pts: the end of a freeze
// (the time the last picture stayed on screen beyond one frame).
func (st *stream) delivered(pts time.Duration) {
	if st.frozen && st.haveOut {
		if d := pts - st.lastOut - st.frameInterval(); d > 0 {
			st.c.Freezes++
			st.c.FrozenTime += d
			st.c.LongestFreeze = max(st.c.LongestFreeze, d)
		}
	}
	st.frozen = false
	st.lastOut, st.haveOut = pts, true
}
