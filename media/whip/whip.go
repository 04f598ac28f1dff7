package whip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/sipstream/sipstream/media"
)

// Errors of the Server.
var (
	// ErrNotFound: no publication has that name (Subscribe; HTTP 404).
	ErrNotFound = errors.New("whip: no such publication")
	// ErrNameInUse: the name is being published (HTTP 409).
	ErrNameInUse = errors.New("whip: name already published")
	// ErrTooManyPublishers: Config.MaxPublishers are publishing (HTTP 503).
	ErrTooManyPublishers = errors.New("whip: too many publishers")
	// ErrNoAudio: the offer has no audio in Opus, PCMA or PCMU (HTTP 406).
	ErrNoAudio = errors.New("whip: the offer sends no Opus, PCMA or PCMU audio")
	// ErrNoCandidates: ICE gathered no candidate for the answer (every
	// port of Config.UDPPortMin..UDPPortMax taken, no usable address;
	// HTTP 503).
	ErrNoCandidates = errors.New("whip: no ICE candidate could be gathered (UDP ports exhausted?)")
	// ErrClosed: the Server was closed (HTTP 503).
	ErrClosed = errors.New("whip: server closed")
)

// Config configures a Server. The zero value serves any number of
// publishers under /whip/ on every local address.
type Config struct {
	// Prefix is the path the Server is mounted at, ending with '/':
	// Prefix+NAME is the endpoint, Prefix+NAME/ID a publication's resource.
	// Zero means "/whip/".
	Prefix string
	// Authorize, when set, is asked before a POST starts a publication:
	// it returns true to let the request in, or writes the refusal itself
	// and returns false. name is the publication's (unescaped) name.
	// DELETE is not asked: it addresses the resource whose URL, with a
	// random ID, only the publisher was given. Nil lets everyone publish.
	Authorize func(w http.ResponseWriter, r *http.Request, name string) bool
	// MaxPublishers limits the publications at once; more get 503. Zero
	// means no limit.
	MaxPublishers int
	// MaxBody bounds the SDP offer, in bytes (413 beyond). Zero means
	// 64 KiB.
	MaxBody int64
	// MediaTimeout ends a publication whose audio stopped: no audio packet
	// for this long once connected. Zero means 10 s.
	MediaTimeout time.Duration
	// ConnectTimeout ends a publication that has not connected (ICE and
	// DTLS) and sent audio this long after its answer. Zero means 30 s.
	ConnectTimeout time.Duration
	// GatherTimeout bounds ICE gathering before the answer is sent. Zero
	// means 5 s.
	GatherTimeout time.Duration
	// ICEIPs restricts the local addresses ICE gathers candidates on. Nil
	// means every address of the machine, loopback included.
	ICEIPs []netip.Addr
	// PublicIPs are advertised as host candidates besides the local ones,
	// for a server behind a 1:1 NAT. Nil means none.
	PublicIPs []netip.Addr
	// PublicIPsOnly advertises PublicIPs instead of the local addresses.
	// It needs PublicIPs. False adds them to the local candidates.
	PublicIPsOnly bool
	// UDPPortMin and UDPPortMax bound the UDP ports ICE listens on (both
	// inclusive). Zero for both means any port.
	UDPPortMin, UDPPortMax uint16
	// AllowOrigin is sent as Access-Control-Allow-Origin (e.g. "*") so
	// that pages of other origins may publish. Empty means no CORS headers
	// (a guard in front of the Server may add its own).
	AllowOrigin string
}

// Stats count what a Server did. Counters only grow, except Publishers.
type Stats struct {
	Publishers          int    // publications live now
	Subscribers         int    // subscribers of the live publications now
	PublishersTotal     uint64 // publications answered since New
	Frames              uint64 // audio frames received (delivered to the subscribers there were)
	VideoPacketsIgnored uint64 // video packets read and discarded
}

// Server is a WHIP endpoint for named publications and their subscribers.
// Create it with New; it is safe for concurrent use.
type Server struct {
	cfg Config
	api *webrtc.API

	mu     sync.Mutex
	closed bool
	byName map[string]*publication
	byID   map[string]*publication
	wg     sync.WaitGroup // publications' goroutines

	total, frames, videoIgnored atomic.Uint64
}

// New checks cfg and returns a Server without publications.
func New(cfg Config) (*Server, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "/whip/"
	}
	if cfg.Prefix[0] != '/' || cfg.Prefix[len(cfg.Prefix)-1] != '/' {
		return nil, fmt.Errorf("whip: Prefix %q must start and end with '/'", cfg.Prefix)
	}
	if cfg.MaxPublishers < 0 || cfg.MaxBody < 0 || cfg.MediaTimeout < 0 || cfg.ConnectTimeout < 0 || cfg.GatherTimeout < 0 {
		return nil, errors.New("whip: negative limit or duration in Config")
	}
	if cfg.UDPPortMax < cfg.UDPPortMin || (cfg.UDPPortMin == 0) != (cfg.UDPPortMax == 0) {
		return nil, fmt.Errorf("whip: invalid UDP port range %d-%d", cfg.UDPPortMin, cfg.UDPPortMax)
	}
	if cfg.PublicIPsOnly && len(cfg.PublicIPs) == 0 {
		return nil, errors.New("whip: PublicIPsOnly without PublicIPs")
	}
	for _, ip := range append(append([]netip.Addr(nil), cfg.ICEIPs...), cfg.PublicIPs...) {
		if !ip.IsValid() {
			return nil, errors.New("whip: invalid IP address in ICEIPs or PublicIPs")
		}
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = 64 << 10
	}
	if cfg.MediaTimeout == 0 {
		cfg.MediaTimeout = 10 * time.Second
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 30 * time.Second
	}
	if cfg.GatherTimeout == 0 {
		cfg.GatherTimeout = 5 * time.Second
	}
	cfg.ICEIPs = append([]netip.Addr(nil), cfg.ICEIPs...)
	cfg.PublicIPs = append([]netip.Addr(nil), cfg.PublicIPs...)
	api, err := newAPI(&cfg)
	if err != nil {
		return nil, fmt.Errorf("whip: %w", err)
	}
	return &Server{cfg: cfg, api: api, byName: map[string]*publication{}, byID: map[string]*publication{}}, nil
}

// newAPI is a pion API that receives Opus, PCMU, PCMA and (to be
// discarded) VP8 and H.264, with host candidates on the configured
// addresses, RTCP receiver reports and NACKs.
func newAPI(cfg *Config) (*webrtc.API, error) {
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	if len(cfg.ICEIPs) > 0 {
		allowed := cfg.ICEIPs
		se.SetIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			for _, b := range allowed {
				if ok && a.Unmap() == b.Unmap() {
					return true
				}
			}
			return false
		})
	}
	if cfg.UDPPortMin != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, err
		}
	}
	if len(cfg.PublicIPs) > 0 {
		mode := webrtc.ICEAddressRewriteAppend
		if cfg.PublicIPsOnly {
			mode = webrtc.ICEAddressRewriteReplace
		}
		var rules []webrtc.ICEAddressRewriteRule
		for _, ip := range cfg.PublicIPs {
			cidr := "0.0.0.0/0"
			if !ip.Unmap().Is4() {
				cidr = "::/0"
			}
			rules = append(rules, webrtc.ICEAddressRewriteRule{External: []string{ip.Unmap().String()}, CIDR: cidr,
				AsCandidateType: webrtc.ICECandidateTypeHost, Mode: mode})
		}
		if err := se.SetICEAddressRewriteRules(rules...); err != nil {
			return nil, err
		}
	}
	m := &webrtc.MediaEngine{}
	for _, c := range []struct {
		kind webrtc.RTPCodecType
		p    webrtc.RTPCodecParameters
	}{
		{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}}},
		{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecParameters{PayloadType: 0, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}}},
		{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecParameters{PayloadType: 8, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}}},
		{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}}},
		{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}}},
	} {
		if err := m.RegisterCodec(c.p, c.kind); err != nil {
			return nil, err
		}
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, ir); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir)), nil
}

// Subscribe delivers the audio frames of the publication name to onFrame
// until cancel is called or the publication ends; then onEnd (if not nil)
// is called once, unless cancel came first. It returns ErrNotFound when
// nothing is published as name. A publication that has not connected yet
// is there: its frames come once its audio flows.
//
// onFrame is called from the publication's receiving goroutine, one frame
// at a time, in arrival order; it must not block. The frame is borrowed:
// its Payload is valid only during the call (copy it to keep it). onEnd is
// called from the publication's own goroutine. Both may call cancel. cancel
// is idempotent, and a no-op after the publication ended.
func (s *Server) Subscribe(name string, onFrame func(*media.Frame), onEnd func()) (cancel func(), err error) {
	if onFrame == nil {
		return nil, errors.New("whip: Subscribe without onFrame")
	}
	s.mu.Lock()
	p := s.byName[name]
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if p == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	sub := &subscriber{onFrame: onFrame, onEnd: onEnd}
	if !p.addSub(sub) {
		return nil, fmt.Errorf("%w: %q (it just ended)", ErrNotFound, name)
	}
	return func() { p.removeSub(sub) }, nil
}

// Published reports whether name is being published.
func (s *Server) Published(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byName[name] != nil
}

// Stats returns the Server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n, subs := len(s.byName), 0
	for _, p := range s.byName {
		if cur := p.subs.Load(); cur != nil {
			subs += len(*cur)
		}
	}
	s.mu.Unlock()
	return Stats{Publishers: n, Subscribers: subs, PublishersTotal: s.total.Load(), Frames: s.frames.Load(), VideoPacketsIgnored: s.videoIgnored.Load()}
}

// Close ends every publication (their subscribers' onEnd are called) and
// waits for their goroutines until ctx is done (then it returns ctx's
// error and they end on their own). Later POSTs get 503. It is idempotent.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	pubs := make([]*publication, 0, len(s.byID))
	for _, p := range s.byID {
		pubs = append(pubs, p)
	}
	s.mu.Unlock()
	for _, p := range pubs {
		p.stop()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("whip: close: %w", ctx.Err())
	}
}

// reserve claims name for a new publication with a fresh resource ID.
func (s *Server) reserve(name string) (*publication, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, ErrClosed
	case s.byName[name] != nil:
		return nil, fmt.Errorf("%w: %q", ErrNameInUse, name)
	case s.cfg.MaxPublishers > 0 && len(s.byName) >= s.cfg.MaxPublishers:
		return nil, ErrTooManyPublishers
	}
	p := newPublication(s, name, newID())
	s.byName[name], s.byID[p.id] = p, p
	s.wg.Add(1)
	return p, nil
}

// forget removes p from the maps.
func (s *Server) forget(p *publication) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName[p.name] == p {
		delete(s.byName, p.name)
	}
	delete(s.byID, p.id)
}

func (s *Server) lookupID(id string) *publication {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byID[id]
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
