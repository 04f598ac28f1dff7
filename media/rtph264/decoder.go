package rtph264

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/sipstream/sipstream/media"
)

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	// AnnexB selects Annex-B output (each NAL unit preceded by the start
	// code 00 00 00 01). The zero value gives AVC output (each NAL unit
	// preceded by its 4-byte big-endian length), what FLV and Matroska
	// store.
	AnnexB bool
	// MaxAccessUnitSize bounds the memory one access unit may take; larger
	// ones are dropped. Zero means 8 MiB.
	MaxAccessUnitSize int
	// SPS and PPS are parameter sets known out of band (the SDP's
	// sprop-parameter-sets, see ParseSpropParameterSets), put in front of
	// IDRs until the stream carries its own. Nil means none. They are
	// copied.
	SPS, PPS []byte
	// Conceal selects the lossy-link policy: after the first IDR, an
	// access unit with a hole is emitted with the NAL units that arrived
	// whole (a NAL unit missing FU-A fragments is left out) instead of
	// being dropped, and later access units are emitted normally, so a
	// decoder shows a brief smear where the picture was damaged instead of
	// freezing until the next IDR. NeedKeyframe still reports true from
	// the loss until an IDR arrives (so the call asks the sender for one
	// while frames keep flowing), and DecoderStats.Concealed counts the
	// damaged access units emitted. An access unit with no whole slice
	// left is dropped, without waiting for an IDR. Before the first IDR,
	// and after a change of SSRC (a new encoder), there is nothing to
	// conceal from: the decoder waits for an IDR as without Conceal.
	//
	// The zero value (false) freezes instead: a damaged access unit is
	// dropped and so is everything up to the next IDR, so what is emitted
	// always decodes cleanly.
	Conceal bool
}

// DecoderStats counts what a Decoder did. All counters only grow.
type DecoderStats struct {
	AccessUnits    uint64 // access units emitted
	Dropped        uint64 // access units discarded (hole, invalid packet, or waiting for an IDR)
	Gaps           uint64 // sequence number gaps seen
	Invalid        uint64 // packets with an invalid or unsupported payload
	Stale          uint64 // duplicate or older packets ignored
	ParamsAttached uint64 // IDRs emitted with SPS/PPS put back in front
	Concealed      uint64 // damaged access units emitted anyway (Conceal), also counted in AccessUnits
}

// Decoder reassembles access units from RTP packets of one H.264 stream.
//
// Access unit boundaries are the marker bit (RFC 6184 §5.1) and, for senders
// that omit it, a change of RTP timestamp. A sequence number gap, a FU-A
// without its start or end, a truncated STAP-A or an unsupported packet type
// (STAP-B, MTAP, FU-B: packetization-mode 2) makes the access unit broken: it
// is dropped and the decoder waits for the next IDR, returning
// ErrNeedKeyframe for each access unit it drops meanwhile. It also waits for
// an IDR at the start. The latest SPS and PPS are kept and put back in front
// of an IDR that arrives without them. DecoderConfig.Conceal chooses a
// brief smear over that freeze on lossy links.
//
// Packets must come in sequence order (from a jitter buffer); a duplicate or
// older packet is ignored. The decoder allocates nothing per packet once its
// buffers have grown to the stream's largest access unit. A Decoder is not
// safe for concurrent use.
type Decoder struct {
	annexB  bool
	maxSize int

	bufs [2][]byte // access unit being assembled (bufs[cur]) and the one last emitted
	cur  int
	out  []byte // an IDR with parameter sets put in front

	started  bool   // an access unit is being assembled
	ts       uint32 // its RTP timestamp
	broken   bool   // it has a hole (and will be dropped)
	lossy    bool   // it has a hole but keeps its whole NAL units (Conceal)
	hasIDR   bool
	hasVCL   bool
	hasSPS   bool
	hasPPS   bool
	fuActive bool
	fuStart  int // offset of the FU-A NAL unit's 4-byte prefix

	haveSeq bool
	lastSeq uint16
	ssrc    uint32
	waitIDR bool
	conceal bool // DecoderConfig.Conceal
	gotIDR  bool // an IDR of the current source was emitted: concealment can start

	sps, pps []byte
	stats    DecoderStats
}

// NewDecoder returns a Decoder.
func NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	if cfg.MaxAccessUnitSize < 0 {
		return nil, errors.New("rtph264: negative MaxAccessUnitSize")
	}
	d := &Decoder{annexB: cfg.AnnexB, maxSize: cfg.MaxAccessUnitSize, waitIDR: true, conceal: cfg.Conceal}
	if d.maxSize == 0 {
		d.maxSize = 8 << 20
	}
	if len(cfg.SPS) > 0 {
		d.sps = append([]byte(nil), cfg.SPS...)
	}
	if len(cfg.PPS) > 0 {
		d.pps = append([]byte(nil), cfg.PPS...)
	}
	return d, nil
}

// Stats returns the decoder's counters.
func (d *Decoder) Stats() DecoderStats { return d.stats }

// NeedKeyframe reports whether the decoder is waiting for an IDR (at the
// start, and after a dropped access unit or, with Conceal, after a loss).
func (d *Decoder) NeedKeyframe() bool { return d.waitIDR }

// SPS returns the latest sequence parameter set seen (nil if none). It
// aliases the decoder's buffer until the next Decode.
func (d *Decoder) SPS() []byte { return d.sps }

// PPS returns the latest picture parameter set seen (nil if none). It
// aliases the decoder's buffer until the next Decode.
func (d *Decoder) PPS() []byte { return d.pps }

// Decode processes one RTP packet. When the packet completes an access unit
// it returns it as a Frame (Codec, Keyframe, Payload and ClockRate set; PTS
// and DTS are the caller's, from the returned RTP timestamp). Otherwise it
// returns ErrMorePacketsNeeded, ErrNeedKeyframe (an access unit was
// dropped), or an error describing an invalid payload (the access unit it
// belongs to will be dropped).
//
// The Frame's Payload aliases the decoder's buffers: it is valid until the
// next call of Decode.
func (d *Decoder) Decode(pkt *rtp.Packet) (media.Frame, uint32, error) {
	gap := false
	if d.haveSeq && pkt.SSRC != d.ssrc {
		gap = true // a new source (re-INVITE, failover): a new sequence space
		d.stats.Gaps++
		d.gotIDR = false // its pictures cannot reference the old source's
	} else if d.haveSeq {
		switch diff := pkt.SequenceNumber - d.lastSeq; {
		case diff == 0 || (diff >= 0x8000 && diff > 0x10000-maxMisorder):
			d.stats.Stale++
			return media.Frame{}, 0, ErrMorePacketsNeeded
		case diff != 1:
			// A loss, or a far jump backwards (a restarted sender).
			gap = true
			d.stats.Gaps++
		}
	}
	d.haveSeq = true
	d.lastSeq = pkt.SequenceNumber
	d.ssrc = pkt.SSRC

	var (
		fr     media.Frame
		frTS   uint32
		frErr  error
		result bool
	)
	if d.started && gap {
		d.hole() // the hole may be at the end of the current access unit
	}
	if d.started && pkt.Timestamp != d.ts {
		fr, frTS, frErr = d.finish()
		result = true
	}
	if !d.started {
		d.begin(pkt.Timestamp)
	}
	if gap {
		d.hole() // the hole may be at the start of this one
	}
	perr := d.add(pkt.Payload)
	if perr != nil {
		d.stats.Invalid++
	}
	if pkt.Marker && !result {
		// With an access unit already completed by a timestamp change in
		// this call (a sender that sets the marker only sometimes), this
		// one is completed by the next timestamp change instead.
		fr, frTS, frErr = d.finish()
		result = true
	}
	if result {
		if frErr == nil || perr == nil {
			return fr, frTS, frErr
		}
		return fr, frTS, errors.Join(frErr, perr)
	}
	if perr != nil {
		return media.Frame{}, 0, perr
	}
	return media.Frame{}, 0, ErrMorePacketsNeeded
}

func (d *Decoder) begin(ts uint32) {
	d.started = true
	d.ts = ts
	d.broken, d.lossy = false, false
	d.hasIDR, d.hasVCL, d.hasSPS, d.hasPPS = false, false, false, false
	d.fuActive = false
	d.bufs[d.cur] = d.bufs[d.cur][:0]
}

// concealing reports whether holes are concealed rather than dropped.
func (d *Decoder) concealing() bool { return d.conceal && d.gotIDR }

// hole marks the access unit being assembled as having lost data. Without
// concealment it is broken (dropped); with it, it is lossy and a NAL unit
// whose FU-A fragments are still being collected is cut off: its end, or
// its middle, is missing.
func (d *Decoder) hole() {
	if !d.concealing() {
		d.broken = true
		return
	}
	d.lossy = true
	if d.fuActive {
		d.bufs[d.cur] = d.bufs[d.cur][:d.fuStart]
		d.fuActive = false
	}
}

// finish ends the access unit being assembled.
func (d *Decoder) finish() (media.Frame, uint32, error) {
	d.started = false
	if d.fuActive {
		d.hole() // FU-A without its end
		d.fuActive = false
	}
	if d.broken {
		d.waitIDR = true
		d.stats.Dropped++
		return media.Frame{}, 0, ErrNeedKeyframe
	}
	if d.lossy {
		d.waitIDR = true // ask for an IDR; frames go on meanwhile
		if !d.hasVCL {
			d.stats.Dropped++ // no whole slice left
			return media.Frame{}, 0, ErrNeedKeyframe
		}
	}
	if !d.hasVCL {
		// Parameter sets or SEI alone (some cameras send SPS/PPS with
		// their own timestamp): kept, nothing to emit.
		return media.Frame{}, 0, ErrMorePacketsNeeded
	}
	if d.waitIDR && !d.hasIDR && !d.concealing() {
		d.stats.Dropped++
		return media.Frame{}, 0, ErrNeedKeyframe
	}
	payload := d.bufs[d.cur]
	if d.hasIDR && (!d.hasSPS || !d.hasPPS) {
		if (!d.hasSPS && d.sps == nil) || (!d.hasPPS && d.pps == nil) {
			// An IDR nobody can decode: keep waiting.
			d.waitIDR = true
			d.stats.Dropped++
			return media.Frame{}, 0, ErrNeedKeyframe
		}
		d.out = d.out[:0]
		if !d.hasSPS {
			d.out = d.appendPrefix(d.out, len(d.sps))
			d.out = append(d.out, d.sps...)
		}
		if !d.hasPPS {
			d.out = d.appendPrefix(d.out, len(d.pps))
			d.out = append(d.out, d.pps...)
		}
		d.out = append(d.out, payload...)
		payload = d.out
		d.stats.ParamsAttached++
	}
	if d.hasIDR && !d.lossy {
		d.waitIDR = false
	}
	if d.hasIDR {
		d.gotIDR = true
	}
	if d.lossy {
		d.stats.Concealed++
	}
	d.cur = 1 - d.cur // keep the emitted buffer intact while the next one fills
	d.stats.AccessUnits++
	return media.Frame{
		Codec:     media.CodecH264,
		Keyframe:  d.hasIDR,
		Payload:   payload,
		ClockRate: ClockRate,
	}, d.ts, nil
}

func (d *Decoder) appendPrefix(b []byte, n int) []byte {
	if d.annexB {
		return append(b, 0, 0, 0, 1)
	}
	return binary.BigEndian.AppendUint32(b, uint32(n))
}

// maxMisorder is how far behind the last packet a packet counts as a late
// duplicate rather than a restart of the sequence (RFC 3550 §A.1 uses 100).
const maxMisorder = 100

var (
	errEmpty       = errors.New("rtph264: empty payload")
	errSTAPA       = errors.New("rtph264: truncated STAP-A")
	errFUAShort    = errors.New("rtph264: truncated FU-A")
	errFUAStart    = errors.New("rtph264: FU-A fragment without its start")
	errFUAUnended  = errors.New("rtph264: FU-A start before the previous FU-A ended")
	errFUAInterrup = errors.New("rtph264: FU-A interrupted by another packet type")
	errTooLarge    = errors.New("rtph264: access unit exceeds MaxAccessUnitSize")
	errForbidden   = errors.New("rtph264: NAL unit with forbidden_zero_bit set")
)

// add appends the NAL units of one packet payload to the access unit.
func (d *Decoder) add(p []byte) error {
	if d.broken {
		// The access unit will be dropped: nothing to parse, and errors
		// that loss explains (a FU-A without its start) are not news.
		d.fuActive = false
		return nil
	}
	if len(p) == 0 {
		d.hole()
		return errEmpty
	}
	if p[0]&0x80 != 0 {
		d.hole()
		return errForbidden
	}
	typ := h264.NALUType(p[0] & 0x1f)
	if d.fuActive && typ != h264.NALUTypeFUA {
		explained := d.lossy // a loss the decoder saw cut the FU-A short
		d.hole()             // cuts the unfinished FU-A when concealing
		d.fuActive = false
		if !d.lossy {
			return errFUAInterrup
		}
		// Concealing: the packet is whole and parsed below.
		if err := d.add(p); err != nil || explained {
			return err
		}
		return errFUAInterrup
	}
	switch {
	case typ >= h264.NALUTypeNonIDR && typ <= h264.NALUTypeReserved23:
		return d.appendNAL(p)
	case typ == h264.NALUTypeSTAPA:
		p = p[1:]
		if len(p) == 0 {
			d.hole()
			return errSTAPA
		}
		for len(p) > 0 {
			if len(p) < 2 {
				d.hole()
				return errSTAPA
			}
			n := int(binary.BigEndian.Uint16(p))
			p = p[2:]
			if n == 0 || n > len(p) {
				d.hole()
				return errSTAPA
			}
			if t := h264.NALUType(p[0] & 0x1f); t == 0 || t >= h264.NALUTypeSTAPA || p[0]&0x80 != 0 {
				d.hole()
				return fmt.Errorf("rtph264: STAP-A holds invalid NAL unit type %d", t)
			}
			if err := d.appendNAL(p[:n]); err != nil {
				return err
			}
			p = p[n:]
		}
		return nil
	case typ == h264.NALUTypeFUA:
		return d.addFUA(p)
	default:
		d.hole()
		return fmt.Errorf("rtph264: unsupported packet type %d (packetization-mode 2 or reserved)", typ)
	}
}

func (d *Decoder) addFUA(p []byte) error {
	if len(p) < 2 {
		d.hole()
		d.fuActive = false
		return errFUAShort
	}
	hdr := p[1]
	start, end := hdr&0x80 != 0, hdr&0x40 != 0
	nalType := h264.NALUType(hdr & 0x1f)
	if nalType == 0 || nalType >= h264.NALUTypeSTAPA {
		d.hole()
		d.fuActive = false
		return fmt.Errorf("rtph264: FU-A carries invalid NAL unit type %d", nalType)
	}
	if start {
		var err error
		if d.fuActive {
			explained := d.lossy
			d.hole() // cuts the unfinished FU-A when concealing
			if !explained {
				err = errFUAUnended
			}
		}
		b := d.bufs[d.cur]
		if len(b)+4+1+len(p)-2 > d.maxSize {
			d.hole()
			d.fuActive = false
			return errTooLarge
		}
		d.fuStart = len(b)
		b = append(b, 0, 0, 0, 1) // patched at the end (AVC)
		b = append(b, p[0]&0xe0|byte(nalType))
		b = append(b, p[2:]...)
		d.fuActive = true
		d.bufs[d.cur] = b
		if !end {
			return err
		}
	} else {
		if !d.fuActive {
			explained := d.lossy
			d.hole()
			if explained {
				return nil // its start was lost: skipped, not news
			}
			return errFUAStart
		}
		b := d.bufs[d.cur]
		if len(b)+len(p)-2 > d.maxSize {
			d.hole()
			d.fuActive = false
			return errTooLarge
		}
		b = append(b, p[2:]...)
		d.bufs[d.cur] = b
		if !end {
			return nil
		}
	}
	d.fuActive = false
	b := d.bufs[d.cur]
	nal := b[d.fuStart+4:]
	if !d.annexB {
		binary.BigEndian.PutUint32(b[d.fuStart:], uint32(len(nal)))
	}
	d.note(nal)
	return nil
}

func (d *Decoder) appendNAL(n []byte) error {
	b := d.bufs[d.cur]
	if len(b)+4+len(n) > d.maxSize {
		d.hole()
		return errTooLarge
	}
	b = d.appendPrefix(b, len(n))
	b = append(b, n...)
	d.bufs[d.cur] = b
	d.note(n)
	return nil
}

// note records what a complete NAL unit is.
func (d *Decoder) note(n []byte) {
	switch t := h264.NALUType(n[0] & 0x1f); t {
	case h264.NALUTypeIDR:
		d.hasIDR = true
		d.hasVCL = true
	case h264.NALUTypeSPS:
		d.hasSPS = true
		d.sps = append(d.sps[:0], n...)
	case h264.NALUTypePPS:
		d.hasPPS = true
		d.pps = append(d.pps[:0], n...)
	default:
		if t >= h264.NALUTypeNonIDR && t <= h264.NALUTypeDataPartitionC {
			d.hasVCL = true
		}
	}
}
