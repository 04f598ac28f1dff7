package callmgr

import (
	"context"
	"net/netip"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sink"
	"github.com/sipstream/sipstream/sip"
)

// The Manager talks to SIP, SDP, media and sinks through these small
// interfaces. The real implementations (packages sip, sip/sdp,
// media/session, sink, sink/rtmpsink, sink/record) plug in through thin
// adapters; tests use in-package fakes.

// backend bundles the implementations a Manager uses.
type backend struct {
	sig   signaling
	media mediaFactory
	sdp   sdpCodec
	sinks sinkFactory
	// close releases what the backend holds (the SIP user agent); nil
	// means nothing to release.
	close func() error
	// listenPort reports the SIP port per transport; nil means unknown.
	listenPort func(transport string) int
}

// account is who a call is placed as and where requests go.
type account struct {
	User        string // SIP login
	AuthUser    string
	Password    string
	Domain      string
	Proxy       string
	Port        int
	Transport   string
	DisplayName string
	// Expires is the registration lifetime asked (zero: the sip default).
	Expires time.Duration
	// OnRefresh is told the outcome of every refresh of a registration
	// (nil error: granted); from the UA's goroutines, must not block; nil
	// means not told.
	OnRefresh func(err error)
}

// signaling is the SIP user agent.
type signaling interface {
	// Register registers acct and keeps it registered until the
	// registration is closed.
	Register(ctx context.Context, acct account) (registration, error)
	// Invite places a call and returns after 2xx+ACK. Cancelling ctx before
	// the answer sends CANCEL and returns an error. A non-2xx final answer
	// returns an error that statusOf understands.
	Invite(ctx context.Context, req *inviteRequest) (dialog, error)
	// Serve starts answering out-of-dialog requests as cfg says: incoming
	// INVITEs, and REGISTER when cfg.Registrar. Called once, by New.
	Serve(cfg serveConfig) error
	// Bindings returns the live bindings of our registrar (none without
	// one), sorted by user.
	Bindings() []sip.Binding
}

// serveConfig is what the user agent answers by itself.
type serveConfig struct {
	// OnInvite gets each new INVITE on a goroutine of its own; nil leaves
	// them refused (480).
	OnInvite func(in incomingInvite)
	// Users and Realm check incomingInvite.Authenticate and REGISTERs.
	Users map[string]string
	Realm string
	// Registrar serves REGISTER for Users; OnBinding is told every change
	// (from the UA's goroutines, must not block).
	Registrar bool
	OnBinding func(b sip.Binding, removed bool)
}

type registration interface {
	Close(ctx context.Context) error
	// Expires is the lifetime the registrar granted last.
	Expires() time.Duration
}

// inviteInfo is what an incoming INVITE says of itself.
type inviteInfo struct {
	CallID                  string
	From, To                sip.Address
	RequestURI, RequestUser string
	Headers                 []sip.Header
	Source                  netip.AddrPort
	Transport               string
}

// incomingInvite is an INVITE offered to the Manager (sip.IncomingInvite).
// Exactly one of Answer, Reject, Redirect (or a failed Authenticate) answers
// it, unless Done closes first.
type incomingInvite interface {
	Info() inviteInfo
	// Offer is the SDP offer; nil for a delayed offer.
	Offer() []byte
	// Done is closed when the INVITE is over (answered and ACKed,
	// refused, cancelled); Cancelled says whether by the caller's CANCEL.
	Done() <-chan struct{}
	Cancelled() bool
	Progress(code int, reason string, sdp []byte) error
	Reject(code int, reason string) error
	Redirect(target string) error
	// Authenticate checks the credentials against serveConfig.Users; when
	// they fail it has answered (401 or 403) and the error matches
	// sip.ErrUnauthorized or sip.ErrForbidden.
	Authenticate() (user string, err error)
	// Answer sends 200 OK with sdp and returns the dialog after the ACK.
	Answer(ctx context.Context, sdp []byte, opts answerOptions) (dialog, error)
}

// answerOptions are the in-dialog callbacks of a call we answer, as
// inviteRequest's.
type answerOptions struct {
	OnReinvite func(offer []byte) (answer []byte, err error)
	OnDTMF     func(digit rune)
}

type inviteRequest struct {
	account
	Callee  string
	CallID  string
	Headers []sip.Header
	Offer   []byte
	// OnProgress reports provisional responses (called from the UA's
	// goroutines; must not block).
	OnProgress func(code int, reason string, sdp []byte)
	// OnReinvite answers an in-dialog INVITE with an SDP offer.
	OnReinvite func(offer []byte) (answer []byte, err error)
	// OnDTMF reports a digit received by SIP INFO.
	OnDTMF func(digit rune)
}

// dialog is an established call at the SIP level.
type dialog interface {
	AnswerSDP() []byte
	// Done is closed when the dialog ended (BYE either way, or a transport
	// failure); Err then says why (errRemoteBye-matching for a peer BYE).
	Done() <-chan struct{}
	Err() error
	Bye(ctx context.Context) error
	SendDTMF(ctx context.Context, digit rune, relay bool) error
	RequestKeyframe(ctx context.Context) error
	// Reinvite sends an in-dialog INVITE with our new offer and returns the
	// peer's answer (after ACK).
	Reinvite(ctx context.Context, offer []byte) (answer []byte, err error)
	// Refer asks the peer to call target (RFC 3515), replacing the dialog
	// replaces when it is not nil (RFC 3891). It returns after the REFER's
	// final answer; onProgress gets the status line of each NOTIFY
	// (message/sipfrag), code 0 when the subscription ended without one
	// (from the UA's goroutines; must not block).
	Refer(ctx context.Context, target string, replaces dialog, onProgress func(code int, reason string)) error
	// PeerAllows reports whether the peer may take method: listed in the
	// Allow header of its answer to the INVITE, or that answer had no
	// Allow header (RFC 3261 lets a UA leave it out: unknown, so tried).
	PeerAllows(method string) bool
}

// mediaConfig is what a call asks of its media session.
type mediaConfig struct {
	CallID       string
	IP           netip.Addr
	Audio, Video bool
	// OnFrame gets borrowed frames (copy before retaining); it must not
	// block.
	OnFrame func(f *media.Frame)
	// OnDTMF reports RFC 4733 digits received.
	OnDTMF func(digit rune, d time.Duration)
	// OnTimeout reports that media stopped or never started.
	OnTimeout func(reason string)
	// OnKeyframeFallback asks for a keyframe by SIP INFO (the peer accepts
	// neither PLI nor FIR).
	OnKeyframeFallback func()
}

type mediaFactory interface {
	New(cfg mediaConfig) (mediaSession, error)
}

type mediaSession interface {
	LocalPort(k media.Kind) int
	Start(specs []media.StreamSpec) error
	Update(specs []media.StreamSpec) error
	RequestKeyframe()
	SendDTMF(ctx context.Context, digits string) error
	// SetAudioSource sends src (at the audio clock rate) to the peer in
	// place of silence; nil goes back to silence.
	SetAudioSource(src sound.Source) error
	Close() error
	// stats never blocks.
	stats() (audio, video MediaStats)
}

// holdFiller keeps the sinks fed with a still picture and silence while
// the peer sends nothing (hold), on the call's timeline.
type holdFiller interface {
	// WriteFrame passes a real frame on (media session goroutine).
	WriteFrame(f *media.Frame)
	// Hold starts (true) or stops filling.
	Hold(on bool)
	// Close stops filling for good.
	Close()
}

// offerConfig is what goes into the SDP offer (and re-INVITE answers).
type offerConfig struct {
	Addr                 netip.Addr
	AudioPort, VideoPort int // 0: no such m= line
	AudioDir, VideoDir   media.Direction
	// AudioCodecs and VideoCodecs in order of preference.
	AudioCodecs, VideoCodecs []media.Codec
	// SessionID and Version go into o=: one ID per call, the version
	// increased with every answer to a re-INVITE (RFC 3264 §8).
	SessionID, Version uint64
	// SRTP offers RTP/SAVP with SDES keys (random, one per stream) and
	// accepts RTP/SAVP offers in re-INVITEs.
	SRTP bool
}

type sdpOffer interface {
	Marshal() []byte
	Negotiate(answer []byte) ([]media.StreamSpec, error)
}

type sdpCodec interface {
	NewOffer(cfg offerConfig) (sdpOffer, error)
	// Answer answers a peer's offer (re-INVITE) with the call's own ports.
	Answer(offer []byte, cfg offerConfig) ([]byte, []media.StreamSpec, error)
}

// fanout feeds many sinks from one call without blocking the RTP path.
type fanout interface {
	// Add attaches s; on error s is still the caller's.
	Add(name string, s sink.Sink, queue int) error
	// Remove detaches and closes the sink (may block while it flushes,
	// until ctx is done).
	Remove(ctx context.Context, name string)
	WriteFrame(f *media.Frame)
	// Close closes every sink (bounded by ctx).
	Close(ctx context.Context)
	stats() []SinkStats
}

type rtmpConfig struct {
	URL, Stream string
	// Audio and Video say which media the call receives.
	Audio, Video    bool
	GiveUpAfter     time.Duration
	RequestKeyframe func()
	// OnStatus is called from the sink's goroutines.
	OnStatus func(st SinkStatus, reason string)
	// OnSoundEnd is called when a sound given to the sink's SetSound
	// played to its end (from the sink's goroutines; must not block).
	OnSoundEnd func(src sound.Source)
}

type sinkFactory interface {
	// NewFanout returns a fan-out that reports sinks it detached after an
	// error (from its goroutines; must not block).
	// It calls keyframeNeeded when a sink waits for a keyframe (must not
	// block).
	NewFanout(onDetach func(name string, err error), keyframeNeeded func()) fanout
	NewRTMP(cfg rtmpConfig) (sink.Sink, error)
	// NewRecorder starts a recording of the given tracks, of at most
	// maxBytes (0: no limit; the sink's WriteFrame then fails with an
	// error matching errQuota).
	NewRecorder(path, format string, audio, video bool, maxBytes int64) (sink.Sink, error)
}
