package rtpvp8

import (
	"errors"

	"github.com/pion/rtp"

	"github.com/sipstream/sipstream/media"
)

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	// MaxFrameSize bounds the memory one frame may take; larger frames are
	// dropped. Zero means 4 MiB.
	MaxFrameSize int
	// Conceal selects the lossy-link policy: after the first key frame, a
	// frame with a hole is emitted with the data that arrived before the
	// hole (what follows a hole cannot be placed) instead of being dropped,
	// and later frames are emitted normally, so the picture smears briefly
	// where it was damaged instead of freezing until the next key frame.
	// NeedKeyframe still reports true from the loss until a key frame
	// arrives (so the call asks the sender for one while frames keep
	// flowing), and DecoderStats.Concealed counts the damaged frames
	// emitted. A frame whose first packet was lost (nothing decodable) is
	// dropped, without waiting for a key frame. Before the first key frame,
	// and after a change of SSRC, the decoder waits as without Conceal.
	//
	// The zero value (false) freezes instead: a damaged frame is dropped
	// and so is everything up to the next key frame.
	Conceal bool
}

// DecoderStats counts what a Decoder did. Counters only grow.
type DecoderStats struct {
	Frames  uint64 // frames emitted
	Dropped uint64 // frames discarded (hole, invalid packet, waiting for a key frame)
	Gaps    uint64 // sequence number gaps
	Invalid uint64 // packets with an invalid payload
	Stale   uint64 // duplicate or older packets ignored
	// Concealed counts damaged frames emitted anyway (Conceal), also
	// counted in Frames.
	Concealed uint64
}

// Decoder reassembles VP8 frames from RTP packets of one stream (RFC 7741
// §4.5). A frame begins with a packet whose descriptor has S=1 and PID=0 and
// ends at the marker bit or, for senders that omit it, at a timestamp
// change. A sequence number gap, a frame without its first packet, or an
// invalid descriptor makes the frame broken: it is dropped and the decoder
// waits for the next key frame, returning ErrNeedKeyframe for each frame it
// drops. It also waits for a key frame at the start. DecoderConfig.Conceal
// chooses a brief smear over that freeze on lossy links.
//
// Packets must come in sequence order (from a jitter buffer). The decoder
// allocates nothing per packet in steady state. It is not safe for
// concurrent use.
type Decoder struct {
	maxSize int
	bufs    [2][]byte
	cur     int

	started bool
	ts      uint32
	broken  bool // the frame will be dropped
	lossy   bool // the frame lost its end or middle; what came before is kept (Conceal)

	conceal bool // DecoderConfig.Conceal
	gotKey  bool // a key frame of the current source was emitted

	haveSeq bool
	lastSeq uint16
	ssrc    uint32
	waitKey bool
	stats   DecoderStats
}

// NewDecoder returns a Decoder.
func NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	if cfg.MaxFrameSize < 0 {
		return nil, errors.New("rtpvp8: negative MaxFrameSize")
	}
	d := &Decoder{maxSize: cfg.MaxFrameSize, waitKey: true, conceal: cfg.Conceal}
	if d.maxSize == 0 {
		d.maxSize = 4 << 20
	}
	return d, nil
}

// Stats returns the decoder's counters.
func (d *Decoder) Stats() DecoderStats { return d.stats }

// NeedKeyframe reports whether the decoder is waiting for a key frame.
func (d *Decoder) NeedKeyframe() bool { return d.waitKey }

const maxMisorder = 100

var (
	errNoStart  = errors.New("rtpvp8: frame without its first packet")
	errTooLarge = errors.New("rtpvp8: frame exceeds MaxFrameSize")
	errEmpty    = errors.New("rtpvp8: packet without VP8 data")
)

// Decode processes one RTP packet. When the packet completes a frame it
// returns it (Codec, Keyframe, Payload and ClockRate set; PTS and DTS are
// the caller's, from the returned RTP timestamp). Otherwise it returns
// ErrMorePacketsNeeded, ErrNeedKeyframe, or an error describing an invalid
// payload. The Frame's Payload aliases the decoder's buffers: it is valid
// until the next call of Decode.
func (d *Decoder) Decode(pkt *rtp.Packet) (media.Frame, uint32, error) {
	// The first packet may follow losses the decoder never saw.
	gap := !d.haveSeq
	if d.haveSeq && pkt.SSRC != d.ssrc {
		gap = true
		d.stats.Gaps++
		d.gotKey = false // nothing to conceal from in a new source
	} else if d.haveSeq {
		switch diff := pkt.SequenceNumber - d.lastSeq; {
		case diff == 0 || (diff >= 0x8000 && diff > 0x10000-maxMisorder):
			d.stats.Stale++
			return media.Frame{}, 0, ErrMorePacketsNeeded
		case diff != 1:
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
		d.hole()
	}
	if d.started && pkt.Timestamp != d.ts {
		fr, frTS, frErr = d.finish()
		result = true
	}
	perr := d.add(pkt, gap)
	if perr != nil {
		d.stats.Invalid++
	}
	if pkt.Marker && !result && d.started {
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

// add appends one packet's VP8 data, beginning a frame when none is being
// assembled.
func (d *Decoder) add(pkt *rtp.Packet, gap bool) error {
	var desc Descriptor
	n, err := desc.Unmarshal(pkt.Payload)
	if err == nil && n == len(pkt.Payload) {
		err = errEmpty
	}
	if !d.started {
		d.started = true
		d.ts = pkt.Timestamp
		d.broken, d.lossy = false, false
		d.bufs[d.cur] = d.bufs[d.cur][:0]
		if err == nil && (!desc.Start || desc.PartitionID != 0) {
			d.broken = true
			if !gap {
				err = errNoStart // not explained by a loss the decoder saw
			}
		} else if err == nil && gap {
			// The packet starts a frame (S=1, PID=0), so the lost packets
			// belonged to earlier frames: this one is whole, but unless it
			// is a key frame it may reference a frame that was lost.
			d.waitKey = true
		}
	}
	if err != nil {
		d.hole()
		return err
	}
	if d.broken || d.lossy {
		return nil
	}
	data := pkt.Payload[n:]
	if len(d.bufs[d.cur])+len(data) > d.maxSize {
		d.hole()
		return errTooLarge
	}
	d.bufs[d.cur] = append(d.bufs[d.cur], data...)
	return nil
}

// concealing reports whether holes are concealed rather than dropped.
func (d *Decoder) concealing() bool { return d.conceal && d.gotKey }

// hole marks the frame being assembled as having lost data: broken
// (dropped) without concealment or when nothing was kept yet; with it,
// lossy, keeping the data before the hole.
func (d *Decoder) hole() {
	if d.concealing() && len(d.bufs[d.cur]) > 0 && !d.broken {
		d.lossy = true
		return
	}
	d.broken = true
}

func (d *Decoder) finish() (media.Frame, uint32, error) {
	d.started = false
	frame := d.bufs[d.cur]
	if d.lossy {
		d.waitKey = true // ask for a key frame; frames go on meanwhile
	}
	if d.broken || len(frame) < 3 {
		d.waitKey = true
		d.stats.Dropped++
		return media.Frame{}, 0, ErrNeedKeyframe
	}
	key := IsKeyFrame(frame)
	if frame[0]&0x01 == 0 && !key {
		// The P bit says key frame but the start code is wrong.
		d.waitKey = true
		d.stats.Dropped++
		d.stats.Invalid++
		return media.Frame{}, 0, ErrNeedKeyframe
	}
	if d.waitKey && !key && !d.concealing() {
		d.stats.Dropped++
		return media.Frame{}, 0, ErrNeedKeyframe
	}
	if key {
		d.gotKey = true
	}
	if key && !d.lossy {
		d.waitKey = false
	}
	if d.lossy {
		d.stats.Concealed++
	}
	d.cur = 1 - d.cur
	d.stats.Frames++
	return media.Frame{Codec: media.CodecVP8, Keyframe: key, Payload: frame, ClockRate: ClockRate}, d.ts, nil
}
