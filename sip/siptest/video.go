package siptest

import (
	"fmt"
	"image/color"
	"sync"
	"time"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/h264gen"
	"github.com/sipstream/sipstream/media/rtph264"
)

// LiveVideo models a SIP phone's video encoder for Script.LiveVideo: H.264
// made live by media/h264gen (a solid colour, a real bitstream decoders
// accept) in which any frame can be an IDR. The encoder sends an IDR every
// GOP; a keyframe request (RTCP PLI, FIR, SIP INFO picture_fast_update)
// makes the very next frame one and restarts the GOP, unless
// Script.IgnoreKeyframeRequests. Frames are padded with filler data to a
// real encoder's sizes, so that losing packets hurts the way it does on a
// real link. The zero value is a 640×360, 25 fps phone with a 10 s GOP
// whose IDRs take 10 RTP packets and P frames 3, as measured with baresip on
// a lossy link.
//
// Packets are at most 1,200 bytes. baresip's IDRs were about 12 KB and its P
// frames 3.7 KB; here they are 9.6 KB and 2.35 KB by default, because the
// filler data must follow the slice in a NAL unit of its own, which costs a
// partly filled packet: the packet counts, which decide how often a frame is
// lost, are the real ones.
type LiveVideo struct {
	// Width and Height of the picture in pixels, even, 16..4096. Zero
	// means 640×360.
	Width, Height int
	// FrameRate in frames per second, 1..60. Zero means 25.
	FrameRate int
	// GOP is the time between the encoder's regular IDRs, at most
	// h264gen.MaxKeyframeInterval (RTMP platforms want 2 s or less, phones
	// often use 10 s or more). Zero means 10 s.
	GOP time.Duration
	// KeyframeSize is the size of every IDR access unit in bytes (SPS,
	// PPS, slice, then filler data, each with a 4-byte length as in
	// h264gen.Config), at most h264gen.MaxFrameSize. Zero means 9,600 (10
	// RTP packets at 640×360); negative means no padding (3 packets at
	// 640×360).
	KeyframeSize int
	// FrameSize is the size of every P frame in bytes. Zero means 2,350
	// (3 RTP packets); negative means no padding (one small packet).
	FrameSize int
	// Color of the picture. Nil means black.
	Color color.Color
}

// Defaults of LiveVideo.
const (
	defaultLiveFPS          = 25
	defaultLiveGOP          = 10 * time.Second
	defaultLiveKeyframeSize = 9600
	defaultLiveFrameSize    = 2350
)

// generatorConfig returns the h264gen configuration of lv.
func (lv *LiveVideo) generatorConfig() h264gen.Config {
	cfg := h264gen.Config{Width: lv.Width, Height: lv.Height, FrameRate: lv.FrameRate,
		KeyframeInterval: lv.GOP, KeyframeSize: lv.KeyframeSize, FrameSize: lv.FrameSize, Color: lv.Color}
	if cfg.FrameRate == 0 {
		cfg.FrameRate = defaultLiveFPS
	}
	if cfg.KeyframeInterval == 0 {
		cfg.KeyframeInterval = defaultLiveGOP
	}
	switch {
	case cfg.KeyframeSize == 0:
		cfg.KeyframeSize = defaultLiveKeyframeSize
	case cfg.KeyframeSize < 0:
		cfg.KeyframeSize = 0
	}
	switch {
	case cfg.FrameSize == 0:
		cfg.FrameSize = defaultLiveFrameSize
	case cfg.FrameSize < 0:
		cfg.FrameSize = 0
	}
	return cfg
}

// validate checks what a Script cannot play.
func (s *Script) validate() error {
	if s.ReferReject != 0 && (s.ReferReject < 300 || s.ReferReject > 699) {
		return fmt.Errorf("siptest: Script.ReferReject %d (want 300 to 699)", s.ReferReject)
	}
	if s.ReferResult != 0 && (s.ReferResult < 200 || s.ReferResult > 699) {
		return fmt.Errorf("siptest: Script.ReferResult %d (want 200 to 699)", s.ReferResult)
	}
	if s.LiveVideo != nil {
		if _, err := h264gen.New(s.LiveVideo.generatorConfig()); err != nil {
			return fmt.Errorf("siptest: Script.LiveVideo: %w", err)
		}
	}
	return nil
}

// VideoSendStats counts what the peer's video sender did on a call.
type VideoSendStats struct {
	// Frames is the access units sent; Keyframes how many of them were
	// IDRs (regular or requested).
	Frames, Keyframes int
	// RequestedKeyframes is the IDRs sent because of a keyframe request
	// (RTCP PLI or FIR, SIP INFO picture_fast_update): the frame after the
	// request, or with the clip the IDR it jumped to. Requests arriving
	// before that frame count once.
	RequestedKeyframes int
	// Packets is the RTP packets sent, retransmissions excluded.
	Packets int
	// Retransmitted is the packets resent on NACK, RetransmittedRTX how
	// many of them as RFC 4588 RTX.
	Retransmitted, RetransmittedRTX int
	// NotRetransmitted counts NACKed sequence numbers that were not resent:
	// never sent or no longer in the history. NACKs ignored because of
	// Script.NoRetransmit, or naming another SSRC, are not counted here.
	NotRetransmitted int
}

// videoOut sends one video stream's access units and keeps its packets for
// retransmission. The sender goroutine owns enc; retransmit may run
// concurrently on the RTCP readers.
type videoOut struct {
	s    *rtpStream
	sd   *sender
	enc  *rtph264.Encoder
	pt   uint8 // H.264 payload type when the spec names none
	hist *history
	now  func() time.Time // time.Now; tests drive the history's clock

	rtxSSRC uint32
	rtxMu   sync.Mutex
	rtxSeq  uint16 // guarded by rtxMu
}

func (s *rtpStream) newVideoOut(sd *sender, format media.PayloadFormat) (*videoOut, error) {
	enc, err := rtph264.NewEncoder(rtph264.EncoderConfig{
		PayloadType: format.PayloadType, SSRC: sd.ssrc, InitialSequenceNumber: uint16(randUint32()),
	})
	if err != nil {
		return nil, err
	}
	v := &videoOut{s: s, sd: sd, enc: enc, pt: format.PayloadType, hist: newHistory(historyPackets, historyAge), now: time.Now,
		rtxSSRC: randUint32(), rtxSeq: uint16(randUint32())}
	for v.rtxSSRC == sd.ssrc {
		v.rtxSSRC = randUint32()
	}
	s.video.Store(v)
	return v, nil
}

// sendAU packetizes one access unit with RTP timestamp ts and sends it when
// the direction allows, keeping every packet sent for retransmission. key
// says it is an IDR, requested that a keyframe request was pending.
func (v *videoOut) sendAU(spec media.StreamSpec, nalus [][]byte, ts uint32, key, requested bool) {
	if !canSend(spec) {
		return
	}
	pkts, err := v.enc.Encode(nalus, ts)
	if err != nil {
		return
	}
	pt := payloadType(spec, media.CodecH264, v.pt)
	now := v.now()
	sent := 0
	for _, pkt := range pkts {
		pkt.PayloadType = pt
		b, err := pkt.Marshal()
		if err != nil {
			continue
		}
		// Kept before it leaves: the receiver's NACK may be handled
		// before this goroutine runs again.
		v.hist.add(pkt.SequenceNumber, b, now)
		if v.sd.writeBytes(b, len(pkt.Payload), spec) {
			sent++
		}
	}
	if sent == 0 {
		return
	}
	c := v.s.c
	c.mu().Lock()
	c.video.Frames++
	c.video.Packets += sent
	if key {
		c.video.Keyframes++
		if requested {
			c.video.RequestedKeyframes++
		}
	}
	c.p.n.broadcast()
	c.mu().Unlock()
}

// keyframeRequested consumes a pending keyframe request and reports whether
// the script answers it.
func (s *rtpStream) keyframeRequested(script Script) bool {
	return s.keyframe.Swap(false) && !script.IgnoreKeyframeRequests
}

// videoSender streams the clip (Script.VideoClip or the test clip).
func (s *rtpStream) videoSender(sd *sender, format media.PayloadFormat, script Script) (func(media.StreamSpec), time.Duration) {
	v, err := s.newVideoOut(sd, format)
	if err != nil {
		return nil, 0
	}
	aus := testmedia.ClipAccessUnits()
	fps := testmedia.ClipFPS
	if len(script.VideoClip) > 0 {
		aus = make([]testmedia.AccessUnit, len(script.VideoClip))
		for i, nalus := range script.VideoClip {
			aus[i].NALUs = nalus
			for _, n := range nalus {
				aus[i].Keyframe = aus[i].Keyframe || testmedia.NALType(n) == rtph264.NALTypeIDR
			}
		}
		if script.VideoFPS > 0 {
			fps = script.VideoFPS
		}
	}
	hasKey := false
	for _, au := range aus {
		hasKey = hasKey || au.Keyframe
	}
	step := uint32(rtph264.ClockRate / fps)
	idx := 0
	ts := sd.ts0
	return func(spec media.StreamSpec) {
		requested := s.keyframeRequested(script)
		if requested && hasKey && !aus[idx].Keyframe {
			for !aus[idx].Keyframe {
				idx = (idx + 1) % len(aus)
			}
		}
		v.sendAU(spec, aus[idx].NALUs, ts, aus[idx].Keyframe, requested)
		idx = (idx + 1) % len(aus)
		ts += step
	}, time.Second / time.Duration(fps)
}

// liveVideoSender streams Script.LiveVideo: one generated frame per tick,
// an IDR when a keyframe request is pending.
func (s *rtpStream) liveVideoSender(sd *sender, format media.PayloadFormat, script Script) (func(media.StreamSpec), time.Duration) {
	cfg := script.LiveVideo.generatorConfig()
	g, err := h264gen.New(cfg)
	if err != nil {
		return nil, 0
	}
	v, err := s.newVideoOut(sd, format)
	if err != nil {
		return nil, 0
	}
	var (
		nalus [][]byte
		key   bool
		pts   time.Duration
	)
	emit := func(f *media.Frame) {
		nalus, _ = rtph264.SplitAVC(f.Payload) // f.Payload is new for each frame
		key, pts = f.Keyframe, f.PTS
	}
	return func(spec media.StreamSpec) {
		requested := s.keyframeRequested(script)
		if requested {
			g.ForceKeyframe()
		}
		g.Next(emit)
		ts := sd.ts0 + uint32(int64(pts)*rtph264.ClockRate/int64(time.Second))
		if len(nalus) > 0 {
			v.sendAU(spec, nalus, ts, key, requested)
		}
	}, g.FrameDuration()
}
