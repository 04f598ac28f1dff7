package whep

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/media"
)

// Errors returned by the Sink.
var (
	// ErrClosed is returned by WriteFrame and for new viewers after Close.
	ErrClosed = errors.New("whep: sink closed")
	// ErrTooManyViewers is returned when Config.MaxViewers viewers are
	// already watching (HTTP 503).
	ErrTooManyViewers = errors.New("whep: too many viewers")
	// ErrNoMedia is returned when a viewer asks before the sink knows which
	// codecs the call sends and none arrive within Config.MediaWait
	// (HTTP 503 with Retry-After).
	ErrNoMedia = errors.New("whep: no media yet")
	// ErrNoCommonCodec is returned when the viewer's offer accepts none of
	// the codecs the call sends (HTTP 406).
	ErrNoCommonCodec = errors.New("whep: the offer accepts none of the call's codecs")
)

// ICEServer is a STUN or TURN server the sink's ICE agents use.
type ICEServer struct {
	// URLs are "stun:host:port", "turn:host:port?transport=udp" or
	// "turns:host:port" URLs.
	URLs []string
	// Username and Credential authenticate with a TURN server. They never
	// appear in errors or logs.
	Username, Credential string
}

// String shows the URLs and whether credentials are set, never the
// credentials themselves (a Config printed with %v or %+v goes through it).
func (s ICEServer) String() string {
	auth := ""
	if s.Username != "" || s.Credential != "" {
		auth = " (with credentials)"
	}
	return fmt.Sprintf("ICEServer%v%s", s.URLs, auth)
}

// GoString is String: %#v shows no credential either.
func (s ICEServer) GoString() string { return s.String() }

// Config configures a Sink. The zero value serves any number of viewers on
// all local addresses with the codecs learned from the first frames.
type Config struct {
	// Video is the call's video codec: media.CodecH264 or media.CodecVP8.
	// CodecUnknown (zero) means learn it from the first video frame.
	Video media.Codec
	// Audio is the call's audio codec: media.CodecOpus, CodecPCMA or
	// CodecPCMU. CodecUnknown (zero) means learn it from the first audio
	// frame. Other audio codecs (Speex, AAC) cannot be played by browsers
	// without transcoding and are not sent.
	Audio media.Codec

	// Probe is how long a viewer's offer waits, once the first kind of
	// media is known, for the other kind before it is answered with one
	// kind only (an audio-only call plays audio-only). Zero means 1 s.
	Probe time.Duration
	// MediaWait bounds how long a viewer's offer waits while the sink knows
	// no codec at all. Zero means 10 s.
	MediaWait time.Duration

	// MaxViewers limits the viewers watching at once; more are refused with
	// HTTP 503. Zero means no limit.
	MaxViewers int
	// QueueSize is each viewer's queue, in frames. Zero means 256.
	QueueSize int
	// MTU is the largest RTP packet sent. Zero means 1200.
	MTU int

	// RequestKeyframe asks the call's sender for a keyframe (RTCP PLI/FIR
	// or SIP INFO). The sink calls it when a viewer joins without a usable
	// cached keyframe, when a viewer sends PLI or FIR, and when a viewer
	// dropped video, at most once per KeyframeInterval. It is called from
	// HTTP handler and viewer goroutines; it must not block and must not
	// call Close. Nil means keyframes are never requested.
	RequestKeyframe func()
	// KeyframeInterval is the minimum time between RequestKeyframe calls.
	// Zero means 1 s.
	KeyframeInterval time.Duration

	// ICEServers are STUN/TURN servers for deployments behind NAT. Nil
	// means host candidates only (enough on a LAN and on loopback).
	ICEServers []ICEServer
	// ICEIPs restricts the local addresses ICE gathers candidates on.
	// Nil means every address of the machine, loopback included.
	ICEIPs []netip.Addr
	// PublicIPs are advertised as extra host candidates besides the local
	// addresses, for a server behind a 1:1 NAT (a cloud VM's public IP).
	// Nil means none.
	PublicIPs []netip.Addr
	// PublicIPsOnly advertises PublicIPs instead of the local addresses:
	// every local host candidate is rewritten to them (a 1:1 NAT that
	// forwards the same ports), so that answers never list the machine's
	// own addresses (docker bridges, VPNs, a private LAN). It needs
	// PublicIPs. The zero value adds PublicIPs to the local candidates.
	PublicIPsOnly bool
	// UDPPortMin and UDPPortMax bound the UDP ports ICE listens on (both
	// inclusive). Zero for both means any port.
	UDPPortMin, UDPPortMax uint16

	// GatherTimeout bounds ICE gathering before the answer is sent. Zero
	// means 5 s.
	GatherTimeout time.Duration
	// ConnectTimeout drops a viewer whose ICE and DTLS have not connected
	// this long after its answer. Zero means 30 s.
	ConnectTimeout time.Duration

	// AllowOrigin is sent as Access-Control-Allow-Origin (e.g. "*") so that
	// players on other origins may use the endpoint. Empty means no CORS
	// headers.
	AllowOrigin string

	// now is the clock used for keyframe request rate limiting; tests set
	// it. Nil means time.Now.
	now func() time.Time
}

// Stats counts what a Sink did. Counters only grow, except Viewers.
type Stats struct {
	Viewers          int    // viewers connected and receiving now
	ViewersTotal     uint64 // viewers answered since New
	FramesIn         uint64 // frames passed to WriteFrame
	FramesSent       uint64 // frames written to viewers, summed over viewers
	FramesDropped    uint64 // frames a viewer's full queue dropped, summed over viewers
	FramesSkipped    uint64 // video frames a viewer skipped while waiting for a keyframe
	FramesIgnored    uint64 // frames of a codec browsers cannot play, of another codec than the one declared, or malformed
	PacketsSent      uint64 // RTP packets written to viewers
	KeyframeRequests uint64 // calls of Config.RequestKeyframe
	PLIs             uint64 // PLI and FIR messages received from viewers
}

// Sink serves a call's media to WHEP viewers. It implements sink.Sink and
// http.Handler. Create it with New.
type Sink struct {
	cfg     Config
	setting webrtc.SettingEngine
	iceSrv  []webrtc.ICEServer

	// pkMu guards pk: WriteFrame packetizes, and so does a joining viewer
	// (the keyframe kept while nobody watched). Taken before mu.
	pkMu sync.Mutex
	pk   packetizer

	mu       sync.Mutex
	closed   bool
	video    media.Codec // declared video codec
	audio    media.Codec // declared audio codec
	h264PLID string      // profile-level-id from the latest SPS
	knownAt  time.Time   // when the first kind became known
	changed  chan struct{}
	lastKey  *unit // last video keyframe, packetized; nil if kept unpacketized only
	// lastKeyFrame is the last video keyframe as it came (retained, never
	// modified): what a viewer joining an unwatched sink starts with.
	lastKeyFrame *media.Frame
	sinceKey     int // video frames written after lastKey
	viewers      map[string]*viewer
	reserved     int                  // viewers being negotiated
	active       map[*viewer]struct{} // viewers receiving frames
	kfLast       time.Time
	kfSent       bool

	wg        sync.WaitGroup
	closeOnce sync.Once

	framesIn, framesSent, framesDropped, framesSkipped, framesIgnored atomic.Uint64
	packetsSent, kfRequests, plis, viewersTotal                       atomic.Uint64
}

// New validates cfg and returns a Sink with no viewers.
func New(cfg Config) (*Sink, error) {
	switch cfg.Video {
	case media.CodecUnknown, media.CodecH264, media.CodecVP8:
	default:
		return nil, fmt.Errorf("whep: video codec %v cannot be sent to browsers", cfg.Video)
	}
	switch cfg.Audio {
	case media.CodecUnknown, media.CodecOpus, media.CodecPCMA, media.CodecPCMU:
	default:
		return nil, fmt.Errorf("whep: audio codec %v cannot be sent to browsers", cfg.Audio)
	}
	if cfg.Probe < 0 || cfg.MediaWait < 0 || cfg.KeyframeInterval < 0 || cfg.GatherTimeout < 0 || cfg.ConnectTimeout < 0 {
		return nil, errors.New("whep: negative duration in Config")
	}
	if cfg.MaxViewers < 0 || cfg.QueueSize < 0 {
		return nil, errors.New("whep: negative MaxViewers or QueueSize")
	}
	if cfg.MTU != 0 && (cfg.MTU < 200 || cfg.MTU > 9000) {
		return nil, fmt.Errorf("whep: MTU %d outside 200..9000", cfg.MTU)
	}
	if cfg.UDPPortMax < cfg.UDPPortMin || (cfg.UDPPortMin == 0) != (cfg.UDPPortMax == 0) {
		return nil, fmt.Errorf("whep: invalid UDP port range %d-%d", cfg.UDPPortMin, cfg.UDPPortMax)
	}
	if cfg.PublicIPsOnly && len(cfg.PublicIPs) == 0 {
		return nil, errors.New("whep: PublicIPsOnly without PublicIPs")
	}
	for _, ip := range append(append([]netip.Addr(nil), cfg.ICEIPs...), cfg.PublicIPs...) {
		if !ip.IsValid() {
			return nil, errors.New("whep: invalid IP address in ICEIPs or PublicIPs")
		}
	}
	for _, srv := range cfg.ICEServers {
		if len(srv.URLs) == 0 {
			return nil, errors.New("whep: ICE server without URLs")
		}
		for _, u := range srv.URLs {
			if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "stuns:") &&
				!strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
				return nil, errors.New("whep: ICE server URL must start with stun:, stuns:, turn: or turns:")
			}
		}
	}
	if cfg.Probe == 0 {
		cfg.Probe = time.Second
	}
	if cfg.MediaWait == 0 {
		cfg.MediaWait = 10 * time.Second
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 256
	}
	if cfg.MTU == 0 {
		cfg.MTU = 1200
	}
	if cfg.KeyframeInterval == 0 {
		cfg.KeyframeInterval = time.Second
	}
	if cfg.GatherTimeout == 0 {
		cfg.GatherTimeout = 5 * time.Second
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	cfg.ICEIPs = append([]netip.Addr(nil), cfg.ICEIPs...)
	cfg.PublicIPs = append([]netip.Addr(nil), cfg.PublicIPs...)

	s := &Sink{
		cfg:     cfg,
		video:   cfg.Video,
		audio:   cfg.Audio,
		changed: make(chan struct{}),
		viewers: make(map[string]*viewer),
		active:  make(map[*viewer]struct{}),
	}
	if cfg.Video != media.CodecUnknown || cfg.Audio != media.CodecUnknown {
		s.knownAt = cfg.now()
	}
	for _, srv := range cfg.ICEServers {
		ws := webrtc.ICEServer{URLs: append([]string(nil), srv.URLs...)}
		if srv.Username != "" || srv.Credential != "" {
			ws.Username = srv.Username
			ws.Credential = srv.Credential
			ws.CredentialType = webrtc.ICECredentialTypePassword
		}
		s.iceSrv = append(s.iceSrv, ws)
	}
	var err error
	if s.setting, err = newSettingEngine(&s.cfg); err != nil {
		return nil, err
	}
	if s.pk, err = newPacketizer(cfg.MTU, randUint32(), randUint32()); err != nil {
		return nil, err
	}
	return s, nil
}

// WriteFrame packetizes f once and queues it for every viewer without
// blocking. With no viewer receiving, nothing is packetized: the sink keeps
// the last video keyframe (the frame itself, which it retains but never
// modifies) and the codec information, and packetizes that keyframe when a
// viewer joins. Frames of codecs browsers cannot play, or of another codec
// than the one declared for their kind, are ignored and counted. It returns
// ErrClosed after Close. As sink.Sink says, WriteFrame is called from one
// goroutine at a time (the fan-out's); it may run concurrently with the HTTP
// handler, Stats and Close. It never blocks on viewers, so a sink.Fanout
// calls it directly (see Inline).
func (s *Sink) WriteFrame(f *media.Frame) error {
	s.framesIn.Add(1)
	kind := f.Kind()
	if !playable(f.Codec) {
		s.framesIgnored.Add(1)
		return s.closedErr()
	}

	// pkMu keeps viewers from joining between the check for active
	// viewers and the queueing below (a joining viewer packetizes the
	// cached keyframe under it).
	s.pkMu.Lock()
	defer s.pkMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	declared := s.declare(f)
	if declared != f.Codec {
		s.mu.Unlock()
		s.framesIgnored.Add(1)
		return nil
	}
	if len(s.active) == 0 {
		err := s.noteLocked(f, kind)
		s.mu.Unlock()
		if err != nil {
			s.framesIgnored.Add(1)
		}
		return nil
	}
	s.mu.Unlock()

	u, err := s.pk.packetize(f)
	if err != nil {
		s.framesIgnored.Add(1)
		return nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if kind == media.KindVideo {
		if u.key {
			s.lastKey, s.lastKeyFrame = u, nil
			s.sinceKey = 0
			if plid := u.profileLevelID; plid != "" {
				s.h264PLID = plid
			}
		} else {
			s.sinceKey++
		}
	}
	for v := range s.active {
		if !v.wants(kind) {
			continue
		}
		select {
		case v.queue <- u:
		default:
			s.framesDropped.Add(1)
			if kind == media.KindVideo {
				v.lostVideo.Store(true)
			}
		}
	}
	return nil
}

// noteLocked is WriteFrame with no viewer receiving: f is checked and, if
// it is a video keyframe, kept unpacketized for the next viewer. s.mu and
// s.pkMu must be held.
func (s *Sink) noteLocked(f *media.Frame, kind media.Kind) error {
	key, plid, err := s.pk.note(f)
	if err != nil || kind != media.KindVideo {
		return err
	}
	if key {
		s.lastKey, s.lastKeyFrame = nil, f
		s.sinceKey = 0
		if plid != "" {
			s.h264PLID = plid
		}
	} else {
		s.sinceKey++
	}
	return nil
}

// joinLocked adds v to the viewers receiving frames and returns the
// keyframe it starts with (nil if none is cached) and the number of video
// frames written after that keyframe. A keyframe kept while nobody watched
// is packetized now. s.mu and s.pkMu must be held.
func (s *Sink) joinLocked(v *viewer) (cached *unit, sinceKey int) {
	if s.lastKey == nil && s.lastKeyFrame != nil {
		// It came after every frame packetized so far (lastKey is reset
		// when a keyframe is kept unpacketized), so the RTP timestamp
		// guard stamps it in order.
		u, err := s.pk.packetize(s.lastKeyFrame)
		if err != nil {
			s.lastKeyFrame = nil
		} else {
			s.lastKey = u
		}
	}
	s.active[v] = struct{}{}
	return s.lastKey, s.sinceKey
}

// Inline reports true: WriteFrame never blocks (viewers have their own
// queues and goroutines) and, with no viewer, costs a few checks, so a
// sink.Fanout calls it directly instead of through a queue and goroutine.
func (s *Sink) Inline() bool { return true }

func (s *Sink) closedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// declare records the frame's codec as its kind's codec if none is declared
// yet and returns the declared codec. s.mu must be held.
func (s *Sink) declare(f *media.Frame) media.Codec {
	p := &s.audio
	if f.Kind() == media.KindVideo {
		p = &s.video
	}
	if *p == media.CodecUnknown {
		*p = f.Codec
		if s.knownAt.IsZero() {
			s.knownAt = s.cfg.now()
		}
		close(s.changed)
		s.changed = make(chan struct{})
	}
	return *p
}

func playable(c media.Codec) bool {
	switch c {
	case media.CodecH264, media.CodecVP8, media.CodecOpus, media.CodecPCMA, media.CodecPCMU:
		return true
	}
	return false
}

// Stats returns the sink's counters.
func (s *Sink) Stats() Stats {
	s.mu.Lock()
	n := len(s.active)
	s.mu.Unlock()
	return Stats{
		Viewers:          n,
		ViewersTotal:     s.viewersTotal.Load(),
		FramesIn:         s.framesIn.Load(),
		FramesSent:       s.framesSent.Load(),
		FramesDropped:    s.framesDropped.Load(),
		FramesSkipped:    s.framesSkipped.Load(),
		FramesIgnored:    s.framesIgnored.Load(),
		PacketsSent:      s.packetsSent.Load(),
		KeyframeRequests: s.kfRequests.Load(),
		PLIs:             s.plis.Load(),
	}
}

// Close stops every viewer, closes their peer connections and waits for
// their goroutines. Viewers asking afterwards get HTTP 503. When ctx is done
// before every viewer's goroutine ended (a peer connection's graceful close
// waits for the network), Close returns ctx's error; those goroutines end
// on their own. It is safe to call more than once; later calls return nil.
func (s *Sink) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		close(s.changed)
		s.changed = make(chan struct{})
		for _, v := range s.viewers {
			v.stop()
		}
		s.mu.Unlock()
		done := make(chan struct{})
		go func() {
			s.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("whep: close: %w", ctx.Err())
		}
	})
	return err
}

// requestKeyframe calls Config.RequestKeyframe unless it was called less
// than KeyframeInterval ago.
func (s *Sink) requestKeyframe() {
	if s.cfg.RequestKeyframe == nil {
		return
	}
	now := s.cfg.now()
	s.mu.Lock()
	if s.kfSent && now.Sub(s.kfLast) < s.cfg.KeyframeInterval {
		s.mu.Unlock()
		return
	}
	s.kfSent = true
	s.kfLast = now
	s.mu.Unlock()
	s.kfRequests.Add(1)
	s.cfg.RequestKeyframe()
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x", b[:])
}
