package whep

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/media"
)

// viewer is one WHEP session: a peer connection, its tracks, its queue and
// the goroutine that writes the queue to the tracks.
type viewer struct {
	s            *Sink
	id           string
	pc           *webrtc.PeerConnection
	video, audio *webrtc.TrackLocalStaticRTP // nil when not negotiated

	queue     chan *unit
	quit      chan struct{} // closed by stop
	quitOnce  sync.Once
	connected chan struct{} // closed when the peer connection is connected
	connOnce  sync.Once
	failed    chan struct{} // closed when the peer connection failed or closed
	failOnce  sync.Once
	done      chan struct{} // closed when run has cleaned up

	lostVideo atomic.Bool // WriteFrame dropped a video frame for this viewer
	rtcpWG    sync.WaitGroup
	videoSeq  uint16
	audioSeq  uint16
}

func (v *viewer) stop() { v.quitOnce.Do(func() { close(v.quit) }) }

// wants reports whether the viewer receives frames of kind k.
func (v *viewer) wants(k media.Kind) bool {
	if k == media.KindVideo {
		return v.video != nil
	}
	return v.audio != nil
}

// waitCodecs blocks until the sink knows which codecs to offer (see
// Config.Probe and Config.MediaWait) and returns them.
func (s *Sink) waitCodecs(ctx context.Context) (video, audio media.Codec, plid string, err error) {
	deadline := time.NewTimer(s.cfg.MediaWait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return 0, 0, "", ErrClosed
		}
		video, audio, plid = s.video, s.audio, s.h264PLID
		changed, knownAt := s.changed, s.knownAt
		s.mu.Unlock()
		var wait <-chan time.Time
		switch {
		case video != media.CodecUnknown && audio != media.CodecUnknown:
			return video, audio, plid, nil
		case video != media.CodecUnknown || audio != media.CodecUnknown:
			left := s.cfg.Probe - s.cfg.now().Sub(knownAt)
			if left <= 0 {
				return video, audio, plid, nil
			}
			t := time.NewTimer(left)
			defer t.Stop()
			wait = t.C
		default:
			wait = deadline.C
		}
		select {
		case <-changed:
		case <-wait:
			if video == media.CodecUnknown && audio == media.CodecUnknown {
				return 0, 0, "", ErrNoMedia
			}
		case <-ctx.Done():
			return 0, 0, "", ctx.Err()
		}
	}
}

// addViewer negotiates a new viewer from its SDP offer and returns it with
// the SDP answer. The viewer's goroutine runs until the viewer leaves.
func (s *Sink) addViewer(ctx context.Context, offer string) (_ *viewer, answer string, err error) {
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return nil, "", ErrClosed
	case s.cfg.MaxViewers > 0 && len(s.viewers)+s.reserved >= s.cfg.MaxViewers:
		s.mu.Unlock()
		return nil, "", ErrTooManyViewers
	}
	s.reserved++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.reserved--
		s.mu.Unlock()
	}()

	videoCodec, audioCodec, plid, err := s.waitCodecs(ctx)
	if err != nil {
		return nil, "", err
	}
	offered, err := parseOffer(offer)
	if err != nil {
		return nil, "", &offerError{err}
	}
	cp := plan(offered, videoCodec, audioCodec, plid)
	if cp.video.MimeType == "" && cp.audio.MimeType == "" {
		return nil, "", ErrNoCommonCodec
	}
	api, err := s.newAPI(cp)
	if err != nil {
		return nil, "", err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: s.iceSrv})
	if err != nil {
		return nil, "", err
	}
	v := &viewer{
		s:         s,
		id:        newID(),
		pc:        pc,
		queue:     make(chan *unit, s.cfg.QueueSize),
		quit:      make(chan struct{}),
		connected: make(chan struct{}),
		failed:    make(chan struct{}),
		done:      make(chan struct{}),
		videoSeq:  uint16(randUint32()),
		audioSeq:  uint16(randUint32()),
	}
	ok := false
	defer func() {
		if !ok {
			_ = pc.GracefulClose()
			v.rtcpWG.Wait()
		}
	}()
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			v.connOnce.Do(func() { close(v.connected) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			v.failOnce.Do(func() { close(v.failed) })
		}
	})

	var senders []*webrtc.RTPSender
	for _, c := range []webrtc.RTPCodecCapability{cp.video, cp.audio} {
		if c.MimeType == "" {
			continue
		}
		isVideo := strings.HasPrefix(c.MimeType, "video/")
		id := "audio"
		if isVideo {
			id = "video"
		}
		track, err := webrtc.NewTrackLocalStaticRTP(c, id, "sipstream")
		if err != nil {
			return nil, "", err
		}
		tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return nil, "", err
		}
		senders = append(senders, tr.Sender())
		if isVideo {
			v.video = track
		} else {
			v.audio = track
		}
	}

	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return nil, "", &offerError{err}
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return nil, "", &offerError{err}
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return nil, "", &offerError{err}
	}
	// A track the offer could not take (no common codec, or no m= line of
	// its kind) stays unused.
	negotiated := 0
	for _, tr := range pc.GetTransceivers() {
		snd := tr.Sender()
		if snd == nil || snd.Track() == nil {
			continue
		}
		if tr.Mid() == "" || len(snd.GetParameters().Codecs) == 0 || tr.Direction() == webrtc.RTPTransceiverDirectionInactive {
			if snd.Track() == v.video {
				v.video = nil
			} else if snd.Track() == v.audio {
				v.audio = nil
			}
			continue
		}
		negotiated++
	}
	if negotiated == 0 {
		return nil, "", ErrNoCommonCodec
	}
	gt := time.NewTimer(s.cfg.GatherTimeout)
	defer gt.Stop()
	select {
	case <-gathered:
	case <-gt.C:
		return nil, "", errors.New("whep: ICE gathering timed out")
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
	answer = pc.LocalDescription().SDP

	// Reading RTCP runs the interceptors (NACK responses, reports) and
	// brings PLI and FIR.
	for _, snd := range senders {
		v.rtcpWG.Add(1)
		go v.readRTCP(snd)
	}

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, "", ErrClosed
	}
	s.viewers[v.id] = v
	s.wg.Add(1)
	s.mu.Unlock()
	ok = true
	s.viewersTotal.Add(1)
	go v.run()
	return v, answer, nil
}

// offerError wraps a failure to apply the viewer's offer (HTTP 400).
type offerError struct{ err error }

func (e *offerError) Error() string { return fmt.Sprintf("whep: bad offer: %v", e.err) }
func (e *offerError) Unwrap() error { return e.err }

func (v *viewer) readRTCP(snd *webrtc.RTPSender) {
	defer v.rtcpWG.Done()
	for {
		pkts, _, err := snd.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				v.s.plis.Add(1)
				v.s.requestKeyframe()
			}
		}
	}
}

// run waits for the connection, then writes the viewer's queue to its
// tracks until the viewer is stopped or its connection fails.
func (v *viewer) run() {
	s := v.s
	defer func() {
		s.mu.Lock()
		delete(s.active, v)
		delete(s.viewers, v.id)
		s.mu.Unlock()
		_ = v.pc.GracefulClose()
		v.rtcpWG.Wait()
		close(v.done)
		s.wg.Done()
	}()

	ct := time.NewTimer(s.cfg.ConnectTimeout)
	select {
	case <-v.connected:
		ct.Stop()
	case <-v.quit:
		ct.Stop()
		return
	case <-v.failed:
		ct.Stop()
		return
	case <-ct.C:
		return
	}

	// Join: the cached keyframe first; frames queued after it follow.
	s.pkMu.Lock()
	s.mu.Lock()
	cached, sinceKey := s.joinLocked(v)
	s.mu.Unlock()
	s.pkMu.Unlock()
	waitKey := true
	if v.video != nil {
		if cached != nil {
			if !v.send(cached) {
				return
			}
			// Frames after the cached keyframe reference pictures this
			// viewer never got: hold them back until the next keyframe.
			waitKey = sinceKey > 0
		}
		if waitKey {
			s.requestKeyframe()
		}
	}

	for {
		select {
		case u := <-v.queue:
			if u.kind == media.KindVideo {
				if v.lostVideo.Swap(false) && !waitKey {
					waitKey = true
					s.requestKeyframe()
				}
				if waitKey && !u.key {
					s.framesSkipped.Add(1)
					continue
				}
				waitKey = false
			}
			if !v.send(u) {
				return
			}
		case <-v.quit:
			return
		case <-v.failed:
			return
		}
	}
}

// send writes one unit to the viewer's track of its kind; false means the
// track is closed.
func (v *viewer) send(u *unit) bool {
	track, seq := v.audio, &v.audioSeq
	if u.kind == media.KindVideo {
		track, seq = v.video, &v.videoSeq
	}
	if track == nil {
		return true
	}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, Timestamp: u.ts}}
	for i, p := range u.payloads {
		pkt.Header.SequenceNumber = *seq
		*seq++
		pkt.Header.Marker = u.kind == media.KindVideo && i == len(u.payloads)-1
		pkt.Payload = p
		if err := track.WriteRTP(&pkt); err != nil {
			if errors.Is(err, io.ErrClosedPipe) {
				return false
			}
			// A transient socket error loses this packet; NACK or the
			// next keyframe repairs it.
			continue
		}
		v.s.packetsSent.Add(1)
	}
	v.s.framesSent.Add(1)
	return true
}
