package rtph264

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
)

// EncoderConfig configures an Encoder.
type EncoderConfig struct {
	// PayloadType is the negotiated H.264 payload type (dynamic, 96-127).
	PayloadType uint8
	// SSRC of the packets, used as given.
	SSRC uint32
	// InitialSequenceNumber is the sequence number of the first packet,
	// used as given (pick it at random for a new stream, RFC 3550 §5.1).
	InitialSequenceNumber uint16
	// MTU is the maximum RTP packet size (12-byte header plus payload).
	// Zero means 1200, which fits common tunnels and SRTP overhead.
	MTU int
	// SingleNALOnly selects packetization-mode=0: every NAL unit in its own
	// packet, no STAP-A or FU-A; Encode then fails on a NAL unit that does
	// not fit the MTU. The zero value is packetization-mode=1.
	SingleNALOnly bool
}

const rtpHeaderSize = 12

// Encoder turns access units into RTP packets: a NAL unit that fits the MTU
// goes alone (single NAL unit packet) or aggregated with its small neighbours
// (STAP-A, as for SPS+PPS), a larger one is split into FU-A fragments. The
// last packet of an access unit carries the marker bit (RFC 6184 §5.1). An
// Encoder is not safe for concurrent use.
type Encoder struct {
	cfg EncoderConfig
	seq uint16
}

// NewEncoder validates cfg and returns an Encoder.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if cfg.PayloadType < 96 || cfg.PayloadType > 127 {
		return nil, fmt.Errorf("rtph264: payload type %d is not dynamic (96-127)", cfg.PayloadType)
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1200
	}
	if cfg.MTU < rtpHeaderSize+3+1 {
		return nil, fmt.Errorf("rtph264: MTU %d too small", cfg.MTU)
	}
	return &Encoder{cfg: cfg, seq: cfg.InitialSequenceNumber}, nil
}

// NextSequenceNumber returns the sequence number the next packet will get.
func (e *Encoder) NextSequenceNumber() uint16 { return e.seq }

// Encode packetizes one access unit (its NAL units without start codes or
// length prefixes, in decoding order) with RTP timestamp ts (90 kHz). The
// packets and their payloads are newly allocated and owned by the caller.
func (e *Encoder) Encode(nalus [][]byte, ts uint32) ([]*rtp.Packet, error) {
	if len(nalus) == 0 {
		return nil, errors.New("rtph264: empty access unit")
	}
	maxPayload := e.cfg.MTU - rtpHeaderSize
	var payloads [][]byte
	for i := 0; i < len(nalus); {
		n := nalus[i]
		if len(n) == 0 {
			return nil, errors.New("rtph264: empty NAL unit")
		}
		if len(n) > maxPayload {
			if e.cfg.SingleNALOnly {
				return nil, fmt.Errorf("rtph264: NAL unit of %d bytes exceeds the MTU in packetization-mode 0", len(n))
			}
			payloads = appendFUA(payloads, n, maxPayload)
			i++
			continue
		}
		// Aggregate following NAL units while they fit (mode 1 only).
		j := i + 1
		size := 1 + 2 + len(n)
		var nri byte = n[0] & 0x60
		for !e.cfg.SingleNALOnly && j < len(nalus) && len(nalus[j]) > 0 && size+2+len(nalus[j]) <= maxPayload {
			size += 2 + len(nalus[j])
			if r := nalus[j][0] & 0x60; r > nri {
				nri = r
			}
			j++
		}
		if j == i+1 {
			payloads = append(payloads, append([]byte(nil), n...))
			i++
			continue
		}
		// STAP-A header: F=0, NRI = the highest of the aggregated units.
		p := make([]byte, 0, size)
		p = append(p, nri|byte(h264.NALUTypeSTAPA))
		for _, u := range nalus[i:j] {
			p = binary.BigEndian.AppendUint16(p, uint16(len(u)))
			p = append(p, u...)
		}
		payloads = append(payloads, p)
		i = j
	}
	pkts := make([]*rtp.Packet, len(payloads))
	for i, p := range payloads {
		pkts[i] = &rtp.Packet{
			Header: rtp.Header{
				Version:        2,
				Marker:         i == len(payloads)-1,
				PayloadType:    e.cfg.PayloadType,
				SequenceNumber: e.seq,
				Timestamp:      ts,
				SSRC:           e.cfg.SSRC,
			},
			Payload: p,
		}
		e.seq++
	}
	return pkts, nil
}

// appendFUA splits one NAL unit into FU-A payloads of at most maxPayload
// bytes (RFC 6184 §5.8).
func appendFUA(out [][]byte, n []byte, maxPayload int) [][]byte {
	indicator := n[0]&0xe0 | byte(h264.NALUTypeFUA)
	typ := n[0] & 0x1f
	data := n[1:]
	chunk := maxPayload - 2
	first := true
	for len(data) > 0 {
		c := min(chunk, len(data))
		hdr := typ
		if first {
			hdr |= 0x80
		}
		if c == len(data) {
			hdr |= 0x40
		}
		p := make([]byte, 0, 2+c)
		p = append(p, indicator, hdr)
		p = append(p, data[:c]...)
		out = append(out, p)
		data = data[c:]
		first = false
	}
	return out
}
