// Package session is a call's media session: the RTP/RTCP sockets of its
// audio and video streams and everything between them and whole frames on
// one timeline.
//
// Per stream, packets go: socket → symmetric RTP latching (the first source
// is kept; packets from other addresses are dropped and counted until a new
// source has taken over for good) → SRTP decryption (SDES keys,
// pion/srtp) → jitter buffer (media/jitter) → the depacketizer chosen by
// payload type (H.264, VP8, PCMA, PCMU, Opus, Speex, telephone-event) →
// the common timeline (media/timeline: arrival time, then RTCP Sender
// Reports) → Config.OnFrame.
//
// Back toward the peer, the session sends RTCP receiver reports, keyframe
// requests (PLI or FIR as the SDP allows, otherwise
// Config.RequestKeyframeFallback so that SIP can send INFO
// picture_fast_update), silence RTP on a sending audio stream so that phones
// do not hang up for lack of media (or, in its place, G.711 audio from a
// sound.Source given to SetAudioSource: a sound file, another call's live
// audio), and RFC 4733 DTMF.
//
// One goroutine per socket reads packets (on Linux with recvmmsg, up to 16
// a system call, into buffers shared by all sessions of the process and
// taken only once data is there) and hands each read's batch to one owner
// goroutine in a single channel send; the owner does all the rest, so
// callbacks are called from that goroutine, serially and in order. The
// receive path allocates nothing per packet in steady state, and an idle
// session holds no packet buffer and wakes only for its RTCP reports, its
// media timeouts and the silence it sends.
//
// Specification: RFC 3550 (RTP/RTCP), RFC 3551, RFC 4585 and RFC 5104
// (PLI, FIR), RFC 3711 and RFC 4568 (SRTP, SDES), RFC 4733 (DTMF), RFC 5761
// (rtcp-mux), RFC 7587 (Opus), RFC 6184 (H.264), RFC 7741 (VP8).
package session

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/media/timeline"
)

// Errors.
var (
	// ErrClosed is returned by methods of a closed Session.
	ErrClosed = errors.New("session: closed")
	// ErrNotStarted is returned by Update and SendDTMF before Start.
	ErrNotStarted = errors.New("session: not started")
	// ErrNoDTMF is returned by SendDTMF when the audio stream does not
	// send or has no telephone-event format.
	ErrNoDTMF = errors.New("session: no RFC 4733 telephone-event negotiated on a sending audio stream")
)

// Config configures a Session. Only what the zero value documents is
// optional; New validates it once and never modifies it.
type Config struct {
	// IP is the address the sockets are bound to. The zero value binds
	// 0.0.0.0 (all IPv4 interfaces).
	IP netip.Addr
	// Ports is the pool RTP/RTCP port pairs come from. Nil means any free
	// pair (an even port chosen by the system and the one above).
	Ports *PortPool
	// Audio and Video say which streams get sockets. At least one must be
	// set.
	Audio, Video bool

	// OnFrame receives every whole frame on the call's common timeline. The
	// frame is borrowed: it and its Payload are valid only until OnFrame
	// returns. Called from the session's owner goroutine; it must not
	// block. Nil drops frames.
	OnFrame func(f *media.Frame)
	// OnDTMF receives each RFC 4733 key press of the peer (once per press,
	// when it ends). Called from the owner goroutine; must not block.
	OnDTMF func(digit rune, d time.Duration)
	// OnEvent receives the session's events (media timeouts, source and
	// SSRC changes, keyframe requests, RTCP BYE), serially and in order,
	// from the owner goroutine. It must not block and must not call Start,
	// Update, SendDTMF or Close (RequestKeyframe and Stats are fine).
	OnEvent func(ev Event)
	// OnAudioSourceEnd is called when a source given to SetAudioSource
	// stops being sent: err is nil when it ended (io.EOF), otherwise why
	// it was stopped (its Read error, ErrCannotEncode after a re-INVITE
	// to a codec that cannot be encoded, ErrSourceReplaced, ErrClosed).
	// Called from the owner goroutine; it must not block and must not
	// call Start, Update, SendDTMF, SetAudioSource or Close. Nil means
	// nobody is told.
	OnAudioSourceEnd func(src sound.Source, err error)
	// RequestKeyframeFallback is called when a video decoder needs a
	// keyframe (or RequestKeyframe was called) and the peer accepts
	// neither PLI nor FIR: the SIP layer then sends INFO
	// picture_fast_update. It runs on a goroutine of its own, one call at
	// a time, so it may block for a SIP transaction, but it must return:
	// Close waits for it. Nil means such requests are only counted.
	RequestKeyframeFallback func()

	// JitterDelay is how long a packet waits for missing earlier ones.
	// Zero means 60 ms.
	JitterDelay time.Duration
	// JitterAdaptive lets the delay follow the measured jitter (between
	// 20 ms and 300 ms, starting at JitterDelay).
	JitterAdaptive bool
	// MediaTimeout raises EventMediaTimeout when no RTP at all arrived
	// this long after Start (or after an Update that resumed receiving).
	// Zero means 30 s; negative disables it.
	MediaTimeout time.Duration
	// IdleTimeout raises EventMediaStopped when RTP that was flowing
	// stopped for this long (on every receiving stream).
	// EventMediaResumed follows if it comes back. Zero means 20 s;
	// negative disables it.
	IdleTimeout time.Duration
	// RTCPInterval is the time between RTCP reports. Zero means 5 s.
	RTCPInterval time.Duration
	// KeyframeMinGap is the least time between two keyframe requests of a
	// stream. Requests are otherwise paced by the peer's measured response
	// time: after a loss the stream asks at once, then again whenever the
	// response time and a frame interval pass without a keyframe (the
	// requested keyframe is often lost itself), escalating PLI → FIR →
	// RequestKeyframeFallback and backing off to one request every 2 s
	// for a peer that never answers. Zero means 100 ms.
	KeyframeMinGap time.Duration
	// MaxKeyframeInterval asks the peer for a keyframe ahead of time when
	// it sends them further apart than this (phones often send one every
	// 10 s or only on request; RTMP platforms want one at least every
	// 2 s). The request leaves early by twice the peer's measured response
	// time, so that even a repeated request is answered within the
	// interval. Zero means no early requests.
	MaxKeyframeInterval time.Duration
	// RetransmitWait bounds how long video frames wait for packets asked
	// for again with NACK (RFC 4585; RTX, RFC 4588, when negotiated) when
	// the peer accepts NACK: the wait is the measured round trip plus
	// twice the jitter, at most RetransmitWait. A peer that never answers
	// NACKs is noticed and no longer waited for. Zero means 200 ms;
	// negative disables NACK.
	RetransmitWait time.Duration
	// LossPolicy says what video delivers after a loss NACK did not
	// repair. The zero value, LossFreeze, freezes on the last good frame
	// until a keyframe arrives.
	LossPolicy LossPolicy
	// DTMFDuration is the length of each RFC 4733 digit sent, and
	// DTMFGap the pause after it. Zero means 100 ms for both.
	DTMFDuration, DTMFGap time.Duration
	// CNAME is the RTCP SDES CNAME. Empty means a random one.
	CNAME string

	// AudioReadBuffer and VideoReadBuffer size the kernel receive buffer
	// (SO_RCVBUF) of the stream's RTP socket, so that a burst (a video
	// keyframe is tens of packets) or a moment the process is busy does
	// not overflow it; StreamStats.KernelDrops counts what overflowed
	// anyway. Zero means 256 KiB for audio and 1 MiB for video; negative
	// keeps the system default. Linux caps the size at
	// net.core.rmem_max (often 208 KiB; raise it with sysctl). The
	// memory is the kernel's and only used while packets wait.
	AudioReadBuffer, VideoReadBuffer int

	// Clock is the source of time. Nil means SystemClock.
	Clock Clock
	// Listen opens the sockets. Nil means ListenUDP.
	Listen ListenFunc
}

// EventType says what happened.
type EventType uint8

// Event types.
const (
	// EventMediaTimeout: no RTP arrived within MediaTimeout of Start.
	EventMediaTimeout EventType = iota + 1
	// EventMediaStopped: RTP stopped for IdleTimeout.
	EventMediaStopped
	// EventMediaResumed: RTP came back after EventMediaStopped.
	EventMediaResumed
	// EventSourceLatched: the stream latched to its first source (Addr).
	EventSourceLatched
	// EventSourceSwitched: a new source took over (Addr).
	EventSourceSwitched
	// EventSSRCChanged: the peer's SSRC changed (SSRC is the new one).
	EventSSRCChanged
	// EventKeyframeRequested: a keyframe was requested (Detail: "pli",
	// "fir" or "fallback").
	EventKeyframeRequested
	// EventRTCPBye: the peer sent an RTCP BYE for its SSRC.
	EventRTCPBye
)

var eventNames = [...]string{"", "media-timeout", "media-stopped", "media-resumed", "source-latched", "source-switched", "ssrc-changed", "keyframe-requested", "rtcp-bye"}

// String returns a short name ("media-timeout").
func (t EventType) String() string {
	if int(t) < len(eventNames) && t != 0 {
		return eventNames[t]
	}
	return fmt.Sprintf("event(%d)", uint8(t))
}

// Event is something the session reports through Config.OnEvent.
type Event struct {
	Type EventType
	// Kind is the stream concerned (KindUnknown for session-wide events
	// such as timeouts).
	Kind   media.Kind
	Time   time.Time
	SSRC   uint32
	Addr   netip.AddrPort
	Detail string
}

// StreamStats are one stream's counters (they only grow) and state.
type StreamStats struct {
	PacketsReceived    uint64 // RTP packets accepted from the latched source
	BytesReceived      uint64
	StrangerPackets    uint64 // packets dropped because they came from another address
	InvalidPackets     uint64 // not RTP/RTCP, or rejected by the jitter buffer
	SRTPErrors         uint64 // packets that failed SRTP/SRTCP authentication or decryption
	UnknownPayloadType uint64 // RTP packets of a payload type not negotiated
	NotReceiving       uint64 // packets dropped because the stream's direction does not receive
	PacketsLost        uint64 // declared lost by the jitter buffer
	PacketsLate        uint64
	PacketsDuplicate   uint64
	Frames             uint64 // frames delivered to OnFrame
	FramesDropped      uint64 // video frames dropped for a hole or while waiting for a keyframe
	DecodeErrors       uint64 // payloads the depacketizer rejected
	DTMFReceived       uint64
	SSRCChanges        uint64
	SourceSwitches     uint64
	PLISent            uint64
	FIRSent            uint64
	KeyframeFallbacks  uint64
	NACKSent           uint64 // generic NACK packets sent (when the peer accepts NACK)
	NACKedPackets      uint64 // sequence numbers asked for in them (a number asked twice counts twice)
	PacketsRecovered   uint64 // packets asked for with NACK that arrived afterwards
	RTXPackets         uint64 // RFC 4588 retransmissions received
	KeyframesReceived  uint64 // video keyframes delivered
	Freezes            uint64 // video freezes: frames dropped after a loss until a keyframe
	// FrozenTime is the total time the picture stood still beyond one
	// frame interval because frames were dropped, LongestFreeze the
	// longest such time (both on the media timeline).
	FrozenTime, LongestFreeze time.Duration
	// KeyframeResponse is the peer's measured time from a keyframe
	// request to the keyframe's delivery (zero until measured).
	KeyframeResponse time.Duration
	// RTT is the call's round-trip time measured from RTCP reports about
	// our Sender Reports (zero until measured).
	RTT           time.Duration
	RTCPReceived  uint64
	SenderReports uint64
	RTCPSent      uint64
	PacketsSent   uint64 // RTP sent (silence, injected audio and DTMF)
	DTMFSent      uint64 // digits sent
	// Source is the latched peer address (zero before the first packet).
	Source netip.AddrPort
	// SSRC is the peer's current SSRC.
	SSRC uint32
	// Jitter is the interarrival jitter estimate (RFC 3550 §6.4.1).
	Jitter time.Duration
	// JitterDelay is the jitter buffer's current wait.
	JitterDelay time.Duration
	// KernelDrops counts datagrams the kernel dropped on the stream's
	// sockets because their receive buffer was full (Linux SO_RXQ_OVFL;
	// always zero elsewhere). A drop is learnt from the next datagram
	// that socket receives.
	KernelDrops uint64
}

// Stats are a session's statistics per stream.
type Stats struct {
	Audio, Video StreamStats
}

// Session is the media of one call. Create it with New (which binds the
// sockets, so that their ports can go into the SDP offer), give it the
// negotiated streams with Start, and Close it. Its methods are safe for
// concurrent use.
type Session struct {
	cfg   Config
	clock Clock
	tl    *timeline.Timeline

	audio, video *stream
	socks        []*socket

	in   chan *rxBatch
	reqs chan func()
	wake chan struct{}
	done chan struct{}
	wg   sync.WaitGroup

	keyframeAsked atomic.Bool
	fallback      chan struct{}

	closeOnce sync.Once
	closeErr  error

	// owner goroutine state
	started      bool
	startedAt    time.Time
	gotMedia     bool
	lastMedia    time.Time
	timeoutFired bool
	stopped      bool
	dtmf         dtmfState
	cname        string
	rtt          time.Duration // smoothed round trip (0: unknown)
}

// Default socket receive buffers (Config.AudioReadBuffer,
// Config.VideoReadBuffer).
const (
	defaultAudioReadBuffer = 256 << 10
	defaultVideoReadBuffer = 1 << 20
)

// New validates cfg, binds the sockets (a port pair per stream) and starts
// reading them. Packets that arrive before Start are dropped.
func New(cfg Config) (*Session, error) {
	s, err := newSession(cfg)
	if err != nil {
		return nil, err
	}
	s.run()
	return s, nil
}

// newSession is New without the goroutines (tests drive the owner's
// functions directly).
func newSession(cfg Config) (*Session, error) {
	if !cfg.Audio && !cfg.Video {
		return nil, errors.New("session: neither Audio nor Video")
	}
	for _, d := range []time.Duration{cfg.JitterDelay, cfg.RTCPInterval, cfg.KeyframeMinGap, cfg.MaxKeyframeInterval, cfg.DTMFDuration, cfg.DTMFGap} {
		if d < 0 {
			return nil, errors.New("session: negative duration in Config")
		}
	}
	if cfg.JitterDelay == 0 {
		cfg.JitterDelay = 60 * time.Millisecond
	}
	if cfg.MediaTimeout == 0 {
		cfg.MediaTimeout = 30 * time.Second
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 20 * time.Second
	}
	if cfg.RTCPInterval == 0 {
		cfg.RTCPInterval = 5 * time.Second
	}
	if cfg.KeyframeMinGap == 0 {
		cfg.KeyframeMinGap = 100 * time.Millisecond
	}
	if cfg.RetransmitWait == 0 {
		cfg.RetransmitWait = 200 * time.Millisecond
	}
	if cfg.LossPolicy > LossConceal {
		return nil, fmt.Errorf("session: unknown LossPolicy %d", cfg.LossPolicy)
	}
	if cfg.DTMFDuration == 0 {
		cfg.DTMFDuration = 100 * time.Millisecond
	}
	if cfg.DTMFGap == 0 {
		cfg.DTMFGap = 100 * time.Millisecond
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Listen == nil {
		cfg.Listen = ListenUDP
	}
	if cfg.AudioReadBuffer == 0 {
		cfg.AudioReadBuffer = defaultAudioReadBuffer
	}
	if cfg.VideoReadBuffer == 0 {
		cfg.VideoReadBuffer = defaultVideoReadBuffer
	}
	if !cfg.IP.IsValid() {
		cfg.IP = netip.IPv4Unspecified()
	}
	tl, err := timeline.New(timeline.Config{})
	if err != nil {
		return nil, err
	}
	s := &Session{
		cfg:      cfg,
		clock:    cfg.Clock,
		tl:       tl,
		in:       make(chan *rxBatch, inBatches),
		reqs:     make(chan func()),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
		fallback: make(chan struct{}, 1),
		cname:    cfg.CNAME,
	}
	if s.cname == "" {
		s.cname = fmt.Sprintf("sipstream-%08x", randUint32())
	}
	if cfg.Audio {
		if s.audio, err = s.newStream(media.KindAudio); err != nil {
			s.releaseAll()
			return nil, err
		}
	}
	if cfg.Video {
		if s.video, err = s.newStream(media.KindVideo); err != nil {
			s.releaseAll()
			return nil, err
		}
	}
	return s, nil
}

// run starts the goroutines.
func (s *Session) run() {
	for _, sk := range s.socks {
		s.wg.Add(1)
		go s.read(sk)
	}
	s.wg.Add(1)
	go s.loop()
	if s.cfg.RequestKeyframeFallback != nil {
		// Without a hook, requests are only counted: no goroutine.
		s.wg.Add(1)
		go s.fallbackLoop()
	}
}

func (s *Session) newStream(k media.Kind) (*stream, error) {
	var (
		rtpc, rtcpc PacketConn
		port        int
		err         error
	)
	if s.cfg.Ports != nil {
		rtpc, rtcpc, port, err = s.cfg.Ports.allocate(s.cfg.IP, s.cfg.Listen)
	} else {
		rtpc, rtcpc, port, err = anyPair(s.cfg.IP, s.cfg.Listen)
	}
	if err != nil {
		return nil, fmt.Errorf("session: %v stream: %w", k, err)
	}
	size := s.cfg.AudioReadBuffer
	if k == media.KindVideo {
		size = s.cfg.VideoReadBuffer
	}
	if rb, ok := rtpc.(readBufferSetter); ok && size > 0 {
		_ = rb.SetReadBuffer(size) // best effort: the kernel may cap it
	}
	enableDropCounter(rtpc)
	enableDropCounter(rtcpc)
	st := newStream(s, k, port)
	st.rtpSock = &socket{conn: rtpc, st: st}
	st.rtcpSock = &socket{conn: rtcpc, st: st, rtcp: true}
	s.socks = append(s.socks, st.rtpSock, st.rtcpSock)
	return st, nil
}

// releaseAll closes every socket and returns the ports to the pool.
func (s *Session) releaseAll() error {
	var errs []error
	for _, sk := range s.socks {
		if err := sk.conn.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for _, st := range []*stream{s.audio, s.video} {
		if st != nil && s.cfg.Ports != nil {
			s.cfg.Ports.release(st.port)
		}
	}
	return errors.Join(errs...)
}

// LocalPort returns the RTP port of the stream of kind k (0 when the
// session has none). RTCP is on the port above unless rtcp-mux is
// negotiated.
func (s *Session) LocalPort(k media.Kind) int {
	if st := s.stream(k); st != nil {
		return st.port
	}
	return 0
}

// LocalAddr returns the RTP address of the stream of kind k as bound.
func (s *Session) LocalAddr(k media.Kind) netip.AddrPort {
	if st := s.stream(k); st != nil {
		return netip.AddrPortFrom(s.cfg.IP, uint16(st.port))
	}
	return netip.AddrPort{}
}

func (s *Session) stream(k media.Kind) *stream {
	switch k {
	case media.KindAudio:
		return s.audio
	case media.KindVideo:
		return s.video
	}
	return nil
}

// do runs fn on the owner goroutine and waits for it.
func (s *Session) do(fn func() error) error {
	errc := make(chan error, 1)
	select {
	case s.reqs <- func() { errc <- fn() }:
	case <-s.done:
		return ErrClosed
	}
	select {
	case err := <-errc:
		return err
	case <-s.done:
		return ErrClosed
	}
}

// Start begins the negotiated streams: receiving, RTCP, silence toward the
// peer when a stream sends. Specs of a kind the session has no socket for
// are an error; a kind without a spec stays idle. Start may be called
// once; later changes go through Update.
func (s *Session) Start(specs []media.StreamSpec) error {
	return s.do(func() error {
		if s.started {
			return errors.New("session: already started")
		}
		return s.start(specs)
	})
}

// Update applies a re-INVITE's new negotiation: remote address (latching
// starts over), direction (hold, resume), formats, feedback and keys.
// The timeline continues: timestamps stay monotonic.
func (s *Session) Update(specs []media.StreamSpec) error {
	return s.do(func() error {
		if !s.started {
			return ErrNotStarted
		}
		return s.apply(specs, s.clock.Now())
	})
}

// start is Start on the owner goroutine.
func (s *Session) start(specs []media.StreamSpec) error {
	now := s.clock.Now()
	if err := s.apply(specs, now); err != nil {
		return err
	}
	s.started = true
	s.startedAt = now
	return nil
}

func (s *Session) apply(specs []media.StreamSpec, now time.Time) error {
	seen := map[media.Kind]bool{}
	for i := range specs {
		sp := &specs[i]
		st := s.stream(sp.Kind)
		if st == nil {
			return fmt.Errorf("session: no %v socket for the negotiated %v stream", sp.Kind, sp.Kind)
		}
		if seen[sp.Kind] {
			return fmt.Errorf("session: two %v streams", sp.Kind)
		}
		seen[sp.Kind] = true
		if err := st.validate(sp); err != nil {
			return err
		}
	}
	for i := range specs {
		st := s.stream(specs[i].Kind)
		if err := st.configure(specs[i], now); err != nil {
			return err
		}
	}
	// Receiving (again): the timeouts count from now.
	if !s.gotMedia {
		s.startedAt = now
		s.timeoutFired = false
	}
	s.lastMedia = now
	return nil
}

// RequestKeyframe asks the peer for a video keyframe (PLI, FIR or the
// fallback hook, as negotiated), repeated while none arrives (at most three
// times for this reason alone). Sinks call it when they (re)connect. It
// never blocks.
func (s *Session) RequestKeyframe() {
	s.keyframeAsked.Store(true)
	s.poke()
}

func (s *Session) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// SendDTMF sends digits ('0'-'9', '*', '#', 'A'-'D') as RFC 4733 events on
// the audio stream, each lasting Config.DTMFDuration followed by
// Config.DTMFGap, and returns when all are sent. Cancelling ctx stops
// before the next digit.
func (s *Session) SendDTMF(ctx context.Context, digits string) error {
	for _, d := range digits {
		if _, ok := dtmfCode(d); !ok {
			return fmt.Errorf("session: %q is not a DTMF digit", d)
		}
	}
	if digits == "" {
		// Nothing to send (an empty job would reach the scheduler, which
		// starts with the first digit); still report a closed session.
		if isDone(s.done) {
			return ErrClosed
		}
		return nil
	}
	job := &dtmfJob{digits: []rune(digits), done: make(chan error, 1)}
	if err := s.do(func() error { return s.queueDTMF(job) }); err != nil {
		return err
	}
	select {
	case err := <-job.done:
		return err
	case <-ctx.Done():
		job.canceled.Store(true)
		return ctx.Err()
	case <-s.done:
		return ErrClosed
	}
}

// Stats returns the session's counters. It never blocks on the owner
// goroutine and may be called from callbacks.
func (s *Session) Stats() Stats {
	var st Stats
	if s.audio != nil {
		st.Audio = s.audio.snapshot()
	}
	if s.video != nil {
		st.Video = s.video.snapshot()
	}
	return st
}

// Close stops the session: it closes the sockets, returns the ports to the
// pool and waits for its goroutines (including a running
// RequestKeyframeFallback). It is idempotent.
func (s *Session) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.closeErr = s.releaseAll()
		s.wg.Wait()
	})
	return s.closeErr
}

func (s *Session) emit(ev Event) {
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(ev)
	}
}

func (s *Session) fallbackLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.fallback:
			s.cfg.RequestKeyframeFallback()
		}
	}
}

func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
