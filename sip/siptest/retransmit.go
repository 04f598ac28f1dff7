package siptest

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/sipstream/sipstream/media"
)

// Bounds of the retransmission history: the last historyPackets packets
// sent, none older than historyAge (a receiver does not wait longer for a
// retransmission).
const (
	historyPackets = 1024
	historyAge     = 2 * time.Second
)

// sentPacket is one packet of the history, as sent.
type sentPacket struct {
	seq  uint16
	at   time.Time
	data []byte
}

// history keeps the latest packets sent on one SSRC, indexed by sequence
// number. Safe for concurrent use.
type history struct {
	mu     sync.Mutex
	slots  []sentPacket // slot seq % len(slots); data nil when empty
	maxAge time.Duration
}

func newHistory(packets int, maxAge time.Duration) *history {
	return &history{slots: make([]sentPacket, packets), maxAge: maxAge}
}

// add records packet seq, sent at now. data must not be modified later.
func (h *history) add(seq uint16, data []byte, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.slots[int(seq)%len(h.slots)] = sentPacket{seq: seq, at: now, data: data}
}

// get returns packet seq as sent, if it is still kept at now. The slice
// must not be modified.
func (h *history) get(seq uint16, now time.Time) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.slots[int(seq)%len(h.slots)]
	if p.data == nil || p.seq != seq || now.Sub(p.at) > h.maxAge {
		return nil, false
	}
	return p.data, true
}

// retransmit answers a generic NACK (RFC 4585 §6.2.1) on the video stream:
// every requested packet still in the history is resent at once (once per
// NACK however often it is listed), as RFC
// 4588 RTX when an rtx format for the H.264 payload type was negotiated,
// else unchanged. NACKs for another SSRC, or with Script.NoRetransmit, are
// ignored.
func (s *rtpStream) retransmit(n *rtcp.TransportLayerNack) {
	v := s.video.Load()
	if v == nil || s.c.script.NoRetransmit || n.MediaSSRC != v.sd.ssrc {
		return
	}
	spec := s.currentSpec()
	if !canSend(spec) {
		return
	}
	rtxPT, useRTX := v.rtxPayloadType(spec)
	now := v.now()
	var resent, missing int
	// Each packet once per NACK: a forged NACK of a few hundred pairs
	// cannot make the peer send more than its history.
	asked := make(map[uint16]bool)
	for _, pair := range n.Nacks {
		for _, seq := range pair.PacketList() {
			if asked[seq] {
				continue
			}
			asked[seq] = true
			b, ok := v.hist.get(seq, now)
			if ok && useRTX {
				b, ok = v.rtxPacket(b, rtxPT)
			}
			if !ok {
				missing++
				continue
			}
			if err := s.writeTo(s.rtp, b, false, spec, spec.Remote); err == nil {
				resent++
			}
		}
	}
	c := s.c
	c.mu().Lock()
	c.video.Retransmitted += resent
	if useRTX {
		c.video.RetransmittedRTX += resent
	}
	c.video.NotRetransmitted += missing
	c.p.n.broadcast()
	c.mu().Unlock()
}

// rtxPayloadType returns the negotiated rtx payload type whose apt is the
// H.264 payload type being sent, if any.
func (v *videoOut) rtxPayloadType(spec media.StreamSpec) (uint8, bool) {
	pt := payloadType(spec, media.CodecH264, v.pt)
	for _, f := range spec.Formats {
		if apt, ok := f.AssociatedPayloadType(); ok && apt == pt {
			return f.PayloadType, true
		}
	}
	return 0, false
}

// rtxPacket builds the RFC 4588 §4 retransmission of orig: the RTX SSRC
// and payload type, the next RTX sequence number, the original timestamp,
// marker and CSRCs, and a payload of the original sequence number followed
// by the original payload.
func (v *videoOut) rtxPacket(orig []byte, pt uint8) ([]byte, bool) {
	var p rtp.Packet
	if err := p.Unmarshal(orig); err != nil {
		return nil, false
	}
	payload := make([]byte, 2, 2+len(p.Payload))
	binary.BigEndian.PutUint16(payload, p.SequenceNumber)
	payload = append(payload, p.Payload...)
	v.rtxMu.Lock()
	seq := v.rtxSeq
	v.rtxSeq++
	v.rtxMu.Unlock()
	p.SSRC, p.PayloadType, p.SequenceNumber = v.rtxSSRC, pt, seq
	p.Payload = payload
	p.Padding, p.PaddingSize = false, 0
	b, err := p.Marshal()
	if err != nil {
		return nil, false
	}
	return b, true
}
