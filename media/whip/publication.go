package whip

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/jitter"
)

// publication is one publisher's peer connection and its subscribers. Its
// run goroutine owns its end: it waits for a reason to stop, closes the
// peer connection, waits for the track readers and tells the subscribers.
type publication struct {
	s        *Server
	name, id string

	pc       *webrtc.PeerConnection // set by start before run begins
	stopped  chan struct{}          // closed by stop
	once     sync.Once
	lastRTP  atomic.Int64 // unix nanoseconds of the last audio packet; 0: none yet
	hasAudio atomic.Bool  // an audio track is being read

	mu      sync.Mutex
	ended   bool
	readers sync.WaitGroup // track readers, added under mu while !ended
	subs    atomic.Pointer[[]*subscriber]
	done    chan struct{} // closed when everything ended
}

type subscriber struct {
	onFrame func(*media.Frame)
	onEnd   func()
}

func newPublication(s *Server, name, id string) *publication {
	return &publication{s: s, name: name, id: id, stopped: make(chan struct{}), done: make(chan struct{})}
}

// stop asks run to end the publication. It is idempotent.
func (p *publication) stop() {
	p.once.Do(func() {
		close(p.stopped)
	})
}

func (p *publication) addSub(sub *subscriber) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return false
	}
	var next []*subscriber
	if cur := p.subs.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, sub)
	p.subs.Store(&next)
	return true
}

func (p *publication) removeSub(sub *subscriber) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.subs.Load()
	if cur == nil {
		return
	}
	next := make([]*subscriber, 0, len(*cur))
	for _, o := range *cur {
		if o != sub {
			next = append(next, o)
		}
	}
	p.subs.Store(&next)
}

// start negotiates the offer and returns the answer, once ICE gathering
// completed (or GatherTimeout passed). On error the publication is
// forgotten and nothing is left running.
func (p *publication) start(ctx context.Context, offer string) (string, error) {
	answer, err := p.negotiate(ctx, offer)
	if err != nil {
		if p.pc != nil {
			_ = p.pc.GracefulClose()
		}
		p.s.forget(p)
		p.s.wg.Done()
		return "", err
	}
	p.s.total.Add(1)
	go p.run()
	return answer, nil
}

// offerError is an offer pion refused (HTTP 400).
type offerError struct{ err error }

func (e *offerError) Error() string { return "whip: bad offer: " + e.err.Error() }
func (e *offerError) Unwrap() error { return e.err }

func (p *publication) negotiate(ctx context.Context, offer string) (string, error) {
	pc, err := p.s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", fmt.Errorf("whip: peer connection: %w", err)
	}
	p.pc = pc
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateFailed:
			p.stop() // ICE or DTLS failed
		case webrtc.PeerConnectionStateClosed:
			p.stop()
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", &offerError{err}
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", &offerError{err}
	}
	if !acceptsAudio(ans.SDP) {
		return "", ErrNoAudio
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", fmt.Errorf("whip: set answer: %w", err)
	}
	t := time.NewTimer(p.s.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C: // answer with the candidates gathered so far
	case <-ctx.Done():
		return "", ctx.Err()
	}
	answer := pc.LocalDescription().SDP
	if !strings.Contains(answer, "a=candidate:") {
		return "", ErrNoCandidates
	}
	return answer, nil
}

// acceptsAudio reports whether an answer receives audio: an m=audio
// section that is not rejected (port 0) nor inactive.
func acceptsAudio(answer string) bool {
	var sd sdp.SessionDescription
	if sd.UnmarshalString(answer) != nil {
		return false
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media != "audio" || md.MediaName.Port.Value == 0 {
			continue
		}
		if _, inactive := md.Attribute("inactive"); !inactive {
			return true
		}
	}
	return false
}

// run waits for the end of the publication, then cleans up.
func (p *publication) run() {
	defer p.s.wg.Done()
	connect := time.NewTimer(p.s.cfg.ConnectTimeout)
	defer connect.Stop()
	tick := time.NewTicker(min(p.s.cfg.MediaTimeout/4, time.Second))
	defer tick.Stop()
wait:
	for {
		select {
		case <-p.stopped:
			break wait
		case <-connect.C:
			if p.lastRTP.Load() == 0 {
				p.stop() // never connected, or no audio
			}
		case now := <-tick.C:
			if last := p.lastRTP.Load(); last != 0 && now.Sub(time.Unix(0, last)) > p.s.cfg.MediaTimeout {
				p.stop() // the audio stopped
			}
		}
	}
	p.s.forget(p)
	p.mu.Lock()
	p.ended = true
	subs := p.subs.Load()
	p.subs.Store(nil)
	p.mu.Unlock()
	_ = p.pc.GracefulClose() // ends the track readers' ReadRTP
	p.readers.Wait()
	if subs != nil {
		for _, sub := range *subs {
			if sub.onEnd != nil {
				sub.onEnd()
			}
		}
	}
	close(p.done)
}

// onTrack reads a track until the peer connection closes: the first audio
// track's packets become frames for the subscribers, any other track's are
// discarded.
func (p *publication) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	p.mu.Lock()
	if p.ended {
		p.mu.Unlock()
		return
	}
	p.readers.Add(1)
	p.mu.Unlock()
	defer p.readers.Done()

	codec := codecOf(tr.Codec().MimeType)
	if tr.Kind() != webrtc.RTPCodecTypeAudio || codec == media.CodecUnknown || !p.hasAudio.CompareAndSwap(false, true) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			p.s.videoIgnored.Add(1)
		}
	}
	var d depacketizer
	d.codec, d.clock, d.channels = codec, tr.Codec().ClockRate, uint8(max(tr.Codec().Channels, 1))
	// Packets are put back in order: a packet behind a gap waits for the
	// missing ones (an adaptive delay), and leaves when a later packet
	// arrives after that wait (audio flows every 20 ms or so; what is
	// held when the audio stops is dropped with the publication).
	jb, err := jitter.New(jitter.Config{Adaptive: true, ClockRate: d.clock})
	if err != nil {
		return
	}
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		now := time.Now()
		p.lastRTP.Store(now.UnixNano())
		if jb.PushPacket(pkt, now) != nil {
			continue
		}
		for {
			q, ok := jb.Pop(now)
			if !ok {
				break
			}
			if f, ok := d.frame(q.Timestamp, q.Payload); ok {
				p.deliver(f)
			}
		}
	}
}

// deliver hands f to every subscriber.
func (p *publication) deliver(f *media.Frame) {
	p.s.frames.Add(1)
	if subs := p.subs.Load(); subs != nil {
		for _, sub := range *subs {
			sub.onFrame(f)
		}
	}
}

// codecOf maps a negotiated audio MIME type to a media.Codec.
func codecOf(mime string) media.Codec {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeOpus):
		return media.CodecOpus
	case strings.ToLower(webrtc.MimeTypePCMA):
		return media.CodecPCMA
	case strings.ToLower(webrtc.MimeTypePCMU):
		return media.CodecPCMU
	}
	return media.CodecUnknown
}

// depacketizer turns audio RTP packets (one frame each) into frames on a
// timeline starting at the first packet: PTS from the RTP timestamp,
// unwrapped.
type depacketizer struct {
	codec    media.Codec
	clock    uint32
	channels uint8
	started  bool
	lastTS   uint32
	ext      int64 // unwrapped timestamp of the last packet, relative to the first
	f        media.Frame
}

// frame returns the frame of one packet (borrowing payload); false for an
// empty payload (nothing to decode) or a clock of zero.
func (d *depacketizer) frame(ts uint32, payload []byte) (*media.Frame, bool) {
	if len(payload) == 0 || d.clock == 0 {
		return nil, false
	}
	if d.started {
		d.ext += int64(int32(ts - d.lastTS))
	}
	d.started, d.lastTS = true, ts
	pts := time.Duration(d.ext * int64(time.Second) / int64(d.clock))
	var dur time.Duration
	if d.codec != media.CodecOpus {
		dur = time.Duration(int64(len(payload)) * int64(time.Second) / int64(d.clock) / int64(d.channels))
	}
	d.f = media.Frame{Codec: d.codec, PTS: pts, DTS: pts, Keyframe: true, Payload: payload,
		ClockRate: d.clock, Channels: d.channels, Duration: dur}
	return &d.f, true
}
