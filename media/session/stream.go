package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/jitter"
	"github.com/sipstream/sipstream/media/rtcpx"
	"github.com/sipstream/sipstream/media/rtpaudio"
	"github.com/sipstream/sipstream/media/rtpdtmf"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/media/rtpvp8"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/media/timeline"
)

// Strict latching (the model is Asterisk's strictrtp): the address the
// peer's SDP names is latched on its first packet. Another address (a
// phone behind NAT) is latched only when the SDP address has stayed
// silent for learnDelay and that address has sent learnPackets packets in
// sequence. Once latched, the SDP address is kept until a re-INVITE
// changes it; any other source gives way to a new one only after
// latchPackets packets in sequence from it and latchSilence of silence
// from itself, or at once to the SDP address after latchPackets packets
// (a stranger that got in first).
const (
	learnDelay   = 500 * time.Millisecond
	learnPackets = 4
	latchPackets = 10
	latchSilence = 500 * time.Millisecond
)

// jitterCapacity is the jitter buffer's size in packets, the smallest it
// takes: 2.8 s of video at 90 packets/s, 5 s of audio, far more than its
// longest wait (300 ms). Every slot keeps a packet-sized buffer once used.
const jitterCapacity = 256

type socket struct {
	conn  PacketConn
	st    *stream
	rtcp  bool
	drops uint32 // the kernel's drop counter last seen (owner goroutine)
}

// decoder is a media depacketizer as the stream uses it: rtph264's and
// rtpvp8's Decoder, and rtpaudio's behind audioDecoder.
type decoder interface {
	// Decode takes one RTP packet and returns a whole frame with its RTP
	// timestamp, or an error: ErrMorePacketsNeeded (the frame goes on in
	// the next packets), ErrNeedKeyframe (a frame was dropped) or another
	// one (a malformed packet).
	Decode(pkt *rtp.Packet) (media.Frame, uint32, error)
	// NeedKeyframe reports whether the decoder waits for a keyframe (a
	// concealing one keeps decoding meanwhile). Always false for audio.
	NeedKeyframe() bool
}

// audioDecoder is rtpaudio's Decoder as a decoder: audio has no keyframes.
type audioDecoder struct{ *rtpaudio.Decoder }

func (audioDecoder) NeedKeyframe() bool { return false }

// format is one negotiated payload type and its depacketizer.
type format struct {
	pf    media.PayloadFormat
	dec   decoder          // audio or video; nil for the formats below
	video bool             // dec is a video decoder
	dtmf  *rtpdtmf.Decoder // RFC 4733 telephone-event
	rtx   bool             // an RFC 4588 retransmission format
	apt   uint8            // the payload type it retransmits
}

func (f *format) clockRate() uint32 {
	if f.dtmf != nil {
		return 0 // event timestamps are the event's start: no jitter or timeline sample
	}
	return f.pf.ClockRate
}

func (f *format) needKeyframe() bool {
	return f.dec != nil && f.dec.NeedKeyframe()
}

// stream is the state of one m= line. Everything but statsMu/pub is owned
// by the session's owner goroutine.
type stream struct {
	s    *Session
	kind media.Kind
	port int

	rtpSock, rtcpSock *socket

	configured bool
	spec       media.StreamSpec
	formats    [128]*format

	// latching
	latched     bool
	source      netip.AddrPort
	lastSource  time.Time
	cands       [4]candidate // other sources sending, for learning and switching
	learnSince  time.Time    // latching (re)started
	rtcpSource  netip.AddrPort
	haveRTCPSrc bool

	srtpIn, srtpOut *srtp.Context
	decBuf          []byte
	hdr             rtp.Header

	jb        *jitter.Buffer
	haveSSRC  bool
	ssrc      uint32
	recv      rtcpx.Source
	tl        *timeline.Stream
	frame     media.Frame
	lastRecv  time.Time
	gotPacket bool

	// loss recovery (recovery.go)
	haveHigh     bool   // highSeq is valid (NACK)
	highSeq      uint16 // highest sequence number received (NACK)
	nackBuf      []uint16
	nacks        []nackEntry // sequence numbers asked for, awaited
	rtxBuf       []byte
	need         uint8 // why a keyframe is wanted (needDecoder, ...)
	kfSent       int   // requests since the last keyframe
	kfFirst      time.Time
	kfLast       time.Time
	kfResp       time.Duration // measured response time (0: none yet)
	kfAgain      bool          // the answering keyframe arrived broken: ask again now
	keyTS        uint32        // timestamp of the keyframe arriving after a request
	haveKeyTS    bool
	gapTS        uint32 // timestamp of the packet after the last loss since a request
	haveGapTS    bool
	prevTS       uint32 // timestamp of the previous video packet to arrive
	lastFallback time.Time
	haveFallback bool
	lastKeyAt    time.Time // when the last keyframe was delivered
	haveKeyAt    bool
	frameDur     time.Duration // measured frame interval (0: none yet)
	lastFrameTS  uint32
	haveFrameTS  bool
	frozen       bool // a frame was dropped since the last one delivered
	lastOut      time.Duration
	haveOut      bool
	lastFmt      *format // format of the last packet decoded
	lastSentAt   time.Time
	firSeq       uint8
	rtcpStarted  bool // nextRTCP was set
	nextRTCP     time.Time
	sentSince    bool // RTP sent since the last report
	sentPackets  uint32
	sentOctets   uint32

	// sending
	localSSRC   uint32
	senderInit  bool
	seq         uint16
	ts          uint32
	marker      bool
	sendPT      uint8
	sendRate    uint32
	silence     []byte
	nextSilence time.Time
	sending     bool
	dtmfPT      uint8
	dtmfRate    uint32
	hasDTMF     bool
	sendBuf     []byte
	encBuf      []byte
	sendCodec   media.Codec

	// injected audio (inject.go)
	src     sound.Source // nil: silence
	srcRead sound.Source // src at sendRate
	srcRate uint32       // the rate srcRead converts to
	pcm     []int16
	payload []byte

	c       StreamStats // owner's counters
	statsMu sync.Mutex
	pub     StreamStats // published copy
}

func newStream(s *Session, k media.Kind, port int) *stream {
	st := &stream{
		s:         s,
		kind:      k,
		port:      port,
		tl:        s.tl.NewStream(),
		localSSRC: randUint32(),
		// decBuf, encBuf, sendBuf and rtxBuf are made when SRTP, sending
		// or RTX need them: an idle stream keeps no packet buffer.
	}
	return st
}

func (st *stream) publish() {
	st.c.SSRC = st.ssrc
	st.c.Source = st.source
	st.c.Jitter = st.recv.Jitter()
	st.c.RTT = st.s.rtt
	st.c.KeyframeResponse = st.kfResp
	if st.jb != nil {
		js := st.jb.Stats()
		st.c.PacketsLost, st.c.PacketsLate, st.c.PacketsDuplicate = js.Lost, js.Late, js.Duplicate
		st.c.JitterDelay = js.Delay
	}
	st.statsMu.Lock()
	st.pub = st.c
	st.statsMu.Unlock()
}

func (st *stream) snapshot() StreamStats {
	st.statsMu.Lock()
	defer st.statsMu.Unlock()
	return st.pub
}

// validate checks a spec before anything is changed.
func (st *stream) validate(sp *media.StreamSpec) error {
	if len(sp.Formats) == 0 {
		return fmt.Errorf("session: %v stream without formats", sp.Kind)
	}
	for _, pf := range sp.Formats {
		if pf.PayloadType > 127 {
			return fmt.Errorf("session: payload type %d", pf.PayloadType)
		}
	}
	if sp.Crypto != nil {
		if _, _, err := srtpProfile(sp.Crypto.Suite); err != nil {
			return err
		}
	}
	return nil
}

// configure (re)applies a spec: new depacketizers, latching from scratch
// when the remote changed, keys, the sender.
func (st *stream) configure(sp media.StreamSpec, now time.Time) error {
	var formats [128]*format
	for _, pf := range sp.Formats {
		f := &format{pf: pf}
		var err error
		switch pf.Codec {
		case media.CodecH264:
			sps, pps := spropParameterSets(pf.Fmtp)
			var d *rtph264.Decoder
			d, err = rtph264.NewDecoder(rtph264.DecoderConfig{SPS: sps, PPS: pps, Conceal: st.s.cfg.LossPolicy == LossConceal})
			f.dec, f.video = d, true
		case media.CodecVP8:
			var d *rtpvp8.Decoder
			d, err = rtpvp8.NewDecoder(rtpvp8.DecoderConfig{Conceal: st.s.cfg.LossPolicy == LossConceal})
			f.dec, f.video = d, true
		case media.CodecPCMA, media.CodecPCMU, media.CodecOpus, media.CodecSpeex:
			var d *rtpaudio.Decoder
			d, err = rtpaudio.NewDecoder(rtpaudio.Format{Codec: pf.Codec, ClockRate: pf.ClockRate, Channels: pf.Channels})
			f.dec = audioDecoder{d}
		case media.CodecTelephoneEvent:
			f.dtmf, err = rtpdtmf.NewDecoder(rtpdtmf.DecoderConfig{ClockRate: pf.ClockRate})
		case media.CodecRTX:
			apt, ok := pf.AssociatedPayloadType()
			if !ok {
				continue // no apt=: not usable, counted as unknown
			}
			f.rtx, f.apt = true, apt
		default:
			continue // not ours to decode: counted as unknown
		}
		if err != nil {
			return fmt.Errorf("session: %v payload type %d: %w", pf.Codec, pf.PayloadType, err)
		}
		if f.pf.ClockRate == 0 {
			switch {
			case f.video:
				f.pf.ClockRate = 90000
			case pf.Codec == media.CodecOpus:
				f.pf.ClockRate = 48000
			default:
				f.pf.ClockRate = 8000
			}
		}
		formats[pf.PayloadType] = f
	}
	var in, out *srtp.Context
	if sp.Crypto != nil {
		var err error
		if in, err = newSRTP(sp.Crypto.Suite, sp.Crypto.RemoteKey); err != nil {
			return fmt.Errorf("session: %v SRTP remote key: %w", sp.Kind, err)
		}
		if out, err = newSRTP(sp.Crypto.Suite, sp.Crypto.LocalKey); err != nil {
			return fmt.Errorf("session: %v SRTP local key: %w", sp.Kind, err)
		}
	}
	if st.jb == nil {
		rate := uint32(90000)
		if st.kind == media.KindAudio {
			rate = formats[firstMediaPT(sp)].clockRateOr(8000)
		}
		jb, err := jitter.New(jitter.Config{Delay: st.s.cfg.JitterDelay, Adaptive: st.s.cfg.JitterAdaptive, ClockRate: rate, Capacity: jitterCapacity})
		if err != nil {
			return err
		}
		st.jb = jb
	}
	if !st.configured || sp.Remote != st.spec.Remote {
		st.latched = false
		st.learnSince = now
		st.haveRTCPSrc = false
	}
	st.srtpIn, st.srtpOut = in, out
	if in != nil && st.decBuf == nil {
		st.decBuf = make([]byte, 0, bufSize)
		st.encBuf = make([]byte, 0, bufSize)
	}
	st.formats = formats
	st.lastFmt = nil
	st.spec = sp
	st.configured = true
	if !st.rtcpStarted {
		st.rtcpStarted = true
		st.nextRTCP = now.Add(st.s.cfg.RTCPInterval / 2)
	}
	st.setupSender(now)
	st.publish()
	return nil
}

func (f *format) clockRateOr(d uint32) uint32 {
	if f == nil || f.pf.ClockRate == 0 {
		return d
	}
	return f.pf.ClockRate
}

// firstMediaPT returns the first format that is not telephone-event.
func firstMediaPT(sp media.StreamSpec) uint8 {
	for _, pf := range sp.Formats {
		if pf.Codec != media.CodecTelephoneEvent {
			return pf.PayloadType
		}
	}
	return sp.Formats[0].PayloadType
}

// setupSender prepares silence and DTMF for a sending audio stream. The
// SSRC, sequence numbers and timestamps continue across re-INVITEs and
// codec changes.
func (st *stream) setupSender(now time.Time) {
	sp := st.spec
	st.sending = false
	st.hasDTMF = false
	if st.kind != media.KindAudio || !sp.Direction.Sends() {
		return
	}
	for _, pf := range sp.Formats {
		if pf.Codec == media.CodecTelephoneEvent && !st.hasDTMF {
			st.hasDTMF, st.dtmfPT, st.dtmfRate = true, pf.PayloadType, pf.ClockRate
		}
	}
	send := sendFormat(sp)
	if st.src != nil && (send == nil || !canEncode(send.Codec)) {
		st.endSource(ErrCannotEncode)
	}
	if send == nil {
		return // Speex only: there is no silent frame to send
	}
	f := rtpaudio.Format{Codec: send.Codec, ClockRate: send.ClockRate, Channels: send.Channels}
	silence, err := rtpaudio.Silence(f, 20*time.Millisecond)
	if err != nil {
		return
	}
	if !st.senderInit {
		st.senderInit = true
		st.seq = uint16(randUint32())
		st.ts = randUint32()
		st.marker = true
	}
	st.sendPT = send.PayloadType
	st.sendCodec = send.Codec
	st.sendRate = send.ClockRate
	if st.sendRate == 0 {
		st.sendRate = 8000
		if send.Codec == media.CodecOpus {
			st.sendRate = 48000
		}
	}
	if st.dtmfRate == 0 {
		st.dtmfRate = st.sendRate
	}
	st.silence = silence
	st.sending = true
	if st.sendBuf == nil {
		st.sendBuf = make([]byte, bufSize)
	}
	if !st.nextSilence.After(now) {
		st.nextSilence = now
	}
}

// sendFormat returns the format audio is sent in: the first PCMA, PCMU or
// Opus format of sp (nil when there is none).
func sendFormat(sp media.StreamSpec) *media.PayloadFormat {
	for i, pf := range sp.Formats {
		switch pf.Codec {
		case media.CodecPCMA, media.CodecPCMU, media.CodecOpus:
			return &sp.Formats[i]
		}
	}
	return nil
}

// destination is where RTP goes: the latched source (symmetric RTP) or
// the address from the SDP.
func (st *stream) destination() netip.AddrPort {
	if st.latched {
		return st.source
	}
	return st.spec.Remote
}

func (st *stream) rtcpDestination() (netip.AddrPort, *socket) {
	if st.spec.RTCPMux {
		return st.destination(), st.rtpSock
	}
	if st.haveRTCPSrc {
		return st.rtcpSource, st.rtcpSock
	}
	if st.latched && !st.spec.RemoteRTCP.IsValid() {
		return netip.AddrPortFrom(st.source.Addr(), st.source.Port()+1), st.rtcpSock
	}
	if st.spec.RemoteRTCP.IsValid() {
		return st.spec.RemoteRTCP, st.rtcpSock
	}
	r := st.spec.Remote
	return netip.AddrPortFrom(r.Addr(), r.Port()+1), st.rtcpSock
}

// candidate is a source other than the latched one: how many packets it
// has sent in sequence.
type candidate struct {
	addr  netip.AddrPort
	seq   uint16 // sequence number of its last packet
	count int
	last  time.Time
}

// candidate counts a packet with sequence number seq from addr and returns
// its source's run of packets in sequence. A few sources are followed at
// once (a stranger interleaving copies must not reset the peer's run);
// the one heard from least recently makes room for a new one.
func (st *stream) candidate(addr netip.AddrPort, seq uint16, now time.Time) int {
	slot := 0
	for i := range st.cands {
		c := &st.cands[i]
		if c.count > 0 && c.addr == addr {
			if seq == c.seq+1 {
				c.count++
			} else {
				c.count = 1
			}
			c.seq, c.last = seq, now
			return c.count
		}
		if c.count == 0 || c.last.Before(st.cands[slot].last) {
			slot = i
		}
	}
	st.cands[slot] = candidate{addr: addr, seq: seq, count: 1, last: now}
	return 1
}

// accept applies strict symmetric RTP latching to a packet with sequence
// number seq from addr (see learnPackets).
func (st *stream) accept(from netip.AddrPort, seq uint16, now time.Time) bool {
	if st.latched && from == st.source {
		st.lastSource = now
		return true
	}
	sdp := st.spec.Remote.IsValid() && from == st.spec.Remote
	run := st.candidate(from, seq, now)
	sdpLatched := st.spec.Remote.IsValid() && st.source == st.spec.Remote
	switch {
	case !st.latched && (sdp || (run >= learnPackets && now.Sub(st.learnSince) >= learnDelay)):
		st.latched = true
		st.s.emit(Event{Type: EventSourceLatched, Kind: st.kind, Time: now, Addr: from})
	case st.latched && !sdpLatched && run >= latchPackets && (sdp || now.Sub(st.lastSource) >= latchSilence):
		st.c.SourceSwitches++
		st.s.emit(Event{Type: EventSourceSwitched, Kind: st.kind, Time: now, Addr: from})
	default:
		st.c.StrangerPackets++
		return false
	}
	st.source = from
	st.lastSource = now
	st.haveRTCPSrc = false
	st.cands = [len(st.cands)]candidate{}
	return true
}

// receiveRTP is the receive path of one RTP packet that arrived at now
// from addr. b is the session's buffer: it is not retained.
func (st *stream) receiveRTP(b []byte, from netip.AddrPort, now time.Time) {
	if len(b) < 12 || b[0]>>6 != 2 {
		st.c.InvalidPackets++
		return
	}
	if !st.configured {
		return
	}
	// With SRTP, authenticate before latching: a packet from anyone who
	// does not hold the key must neither latch nor switch the source (the
	// session would send the call's media and RTCP to it).
	if st.srtpIn != nil {
		out, err := st.srtpIn.DecryptRTP(st.decBuf[:0], b, &st.hdr)
		if err != nil {
			st.c.SRTPErrors++
			return
		}
		b = out
	}
	if !st.accept(from, binary.BigEndian.Uint16(b[2:]), now) {
		return
	}
	if !st.spec.Direction.Receives() {
		st.c.NotReceiving++
		return
	}
	f := st.formats[b[1]&0x7f]
	if f == nil {
		st.c.UnknownPayloadType++
		return
	}
	if f.rtx {
		// RFC 4588: the packet it resends, on the media SSRC.
		if !st.haveSSRC || st.formats[f.apt] == nil {
			st.c.UnknownPayloadType++
			return
		}
		var ok bool
		if b, ok = st.unwrapRTX(b, f.apt); !ok {
			st.c.InvalidPackets++
			return
		}
		st.c.RTXPackets++
		if st.nackEnabled() {
			st.trackSeq(binary.BigEndian.Uint16(b[2:]), now)
		}
		st.push(b, now)
		return
	}
	seq := binary.BigEndian.Uint16(b[2:])
	ts := binary.BigEndian.Uint32(b[4:])
	ssrc := binary.BigEndian.Uint32(b[8:])
	if !st.haveSSRC || ssrc != st.ssrc {
		if st.haveSSRC {
			st.c.SSRCChanges++
			st.s.emit(Event{Type: EventSSRCChanged, Kind: st.kind, Time: now, SSRC: ssrc})
		}
		st.haveSSRC, st.ssrc = true, ssrc
		st.recv.Reset()
		st.haveHigh = false
		st.nacks = st.nacks[:0]
	}
	rate := f.clockRate()
	st.recv.Update(seq, ts, now, rate)
	if rate != 0 {
		st.tl.Observe(ssrc, ts, rate, now)
	}
	if st.kind == media.KindVideo {
		st.arrived(seq, ts, b, f, now)
	}
	st.push(b, now)
}

// push hands an RTP packet to the jitter buffer and decodes what it lets
// go.
func (st *stream) push(b []byte, now time.Time) {
	if st.nackEnabled() && st.peerRetransmits() {
		st.jb.SetLossWait(st.lossWait())
	} else {
		st.jb.SetLossWait(0)
	}
	if err := st.jb.Push(b, now); err != nil {
		st.c.InvalidPackets++
		return
	}
	st.c.PacketsReceived++
	st.c.BytesReceived += uint64(len(b))
	st.lastRecv = now
	st.gotPacket = true
	st.s.noteMedia(now)
	st.drain(now)
}

// drain releases what the jitter buffer lets go at now.
func (st *stream) drain(now time.Time) {
	if st.jb == nil {
		return
	}
	for {
		pkt, ok := st.jb.Pop(now)
		if !ok {
			return
		}
		st.decode(pkt, now)
	}
}

func (st *stream) decode(pkt *rtp.Packet, now time.Time) {
	f := st.formats[pkt.PayloadType]
	if f == nil {
		return
	}
	if f.dtmf != nil {
		ev, err := f.dtmf.Decode(pkt)
		if err != nil {
			if !errors.Is(err, rtpdtmf.ErrMorePacketsNeeded) {
				st.c.DecodeErrors++
			}
			return
		}
		st.c.DTMFReceived++
		if d := ev.Digit(); d != 0 && st.s.cfg.OnDTMF != nil {
			st.s.cfg.OnDTMF(d, ev.Duration)
		}
		return
	}
	st.lastFmt = f
	if f.dec == nil {
		return // RTX is unwrapped before the jitter buffer
	}
	fr, ts, err := f.dec.Decode(pkt)
	if err != nil {
		switch {
		case errors.Is(err, rtph264.ErrMorePacketsNeeded), errors.Is(err, rtpvp8.ErrMorePacketsNeeded):
		case errors.Is(err, rtph264.ErrNeedKeyframe), errors.Is(err, rtpvp8.ErrNeedKeyframe):
			// A frame was dropped and the decoder waits for a keyframe
			// (not while the first one is still being assembled).
			st.c.FramesDropped++
			st.need |= needDecoder
			st.frozen = true
		default:
			st.c.DecodeErrors++
		}
		return
	}
	pts := st.tl.Map(pkt.SSRC, ts)
	if st.kind == media.KindVideo {
		if fr.Keyframe {
			st.gotKeyframe(now)
		}
		if f.needKeyframe() {
			st.need |= needDecoder // a concealing decoder goes on, but wants one
		}
		st.noteFrameTS(ts, f.pf.ClockRate)
		st.delivered(pts)
	}
	st.c.Frames++
	if st.s.cfg.OnFrame == nil {
		return
	}
	st.frame = fr
	st.frame.PTS, st.frame.DTS = pts, pts
	st.s.cfg.OnFrame(&st.frame)
	st.frame.Payload = nil
}
