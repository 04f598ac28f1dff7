package callmgr

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/session"
	"github.com/sipstream/sipstream/sip"
)

// Config configures a Manager. New validates it once and works on a copy;
// the zero value of every field has a documented meaning.
type Config struct {
	// ListenAddr is the local SIP address, UDP and TCP ("127.0.0.1:5060").
	// Zero means "0.0.0.0:5060"; ":5060" means "0.0.0.0:5060". Port 0 picks
	// a free port.
	ListenAddr string
	// PublicIP is the address written into Contact, Via and the SDP c= line
	// (the host's address as the peer sees it, behind NAT the public one).
	// Zero means the ListenAddr host when it is a concrete address,
	// otherwise the host's first non-loopback IPv4 address.
	PublicIP netip.Addr
	// MediaIP is the address RTP/RTCP sockets bind to. Zero means the
	// ListenAddr host when concrete, otherwise all IPv4 addresses.
	MediaIP netip.Addr
	// SIPTLSConfig enables SIP over TLS (CallParams.SIPTransport "tls"). Nil
	// means calls over TLS fail. With Certificates the user agent also
	// listens for TLS.
	SIPTLSConfig *tls.Config
	// SIPTLSListenAddr is where the user agent listens for SIP over TLS
	// ("0.0.0.0:5061"). Zero means the ListenAddr host with a free port.
	// Ignored unless SIPTLSConfig has Certificates.
	SIPTLSListenAddr string
	// RTPPortMin and RTPPortMax bound the RTP/RTCP ports (RTP even, RTCP =
	// RTP+1). Zero for both means 30000-31999. Each call takes one pair per
	// stream.
	RTPPortMin, RTPPortMax int
	// MediaListen opens every call's RTP and RTCP sockets (within the
	// RTPPortMin-RTPPortMax range). Nil means session.ListenUDP. It is the
	// hook for putting something in front of the gateway's own sockets:
	// tests wrap them in a simulated network (loss, jitter, reordering)
	// so that a real phone can be tested on a bad link without root.
	MediaListen session.ListenFunc
	// LossPolicy says what a call's video does after a packet loss that
	// NACK retransmission did not repair. The zero value,
	// session.LossFreeze, holds the last good picture until the keyframe
	// the call asks the phone for arrives (a short freeze, never a broken
	// picture); session.LossConceal keeps frames flowing and lets the
	// viewers' decoders conceal the damage until that keyframe (a brief
	// smear instead of a freeze).
	LossPolicy session.LossPolicy
	// MaxKeyframeInterval asks the phone for a keyframe ahead of time so
	// that the published keyframes are never further apart than this
	// (phones often send one every 10 s or only when asked; YouTube,
	// Facebook and Twitch want one at least every 2 s). Zero means 2 s;
	// negative disables early requests.
	MaxKeyframeInterval time.Duration

	// AudioCodecs and VideoCodecs are the codecs offered, in order of
	// preference (telephone-event for DTMF is always added to audio). Zero
	// means PCMA, PCMU, Opus for audio and H.264, VP8 for video. Speex is
	// left out by default because no sink can use it (RTMP wants AAC, which
	// cannot be made from Speex in pure Go; Matroska players and browsers
	// do not play it), and because a smaller offer keeps an INVITE with a
	// digest Authorization header within the 1300 bytes sipgo sends over
	// UDP.
	AudioCodecs, VideoCodecs []media.Codec
	// RecordDir is the folder recordings are written to. Zero means
	// recording is disabled (CallParams.Record is then an error). It must
	// exist and be a folder.
	RecordDir string
	// RecordFormat is "mp4" (fragmented MP4: H.264 and AAC, G.711
	// transcoded to AAC; plays up to its last fragment after a crash),
	// "mkv" (Matroska; WebM-compatible codecs are kept as they are) or
	// "flv". The file's extension is the format's name. Zero means "mp4".
	RecordFormat string
	// RecordQuota is the most bytes one recording may hold (see
	// record.Config.MaxBytes). When a recording reaches it, the recording
	// stops with its file finalized and playable, its sink ends SinkFailed
	// with the reason ReasonRecordQuota, a warning is
	// logged, and the call goes on. The disk a server's recordings take at
	// once is then at most MaxCalls × RecordQuota. Zero means no limit.
	RecordQuota int64

	// SRTP is the SRTP mode of calls whose CallParams.SRTP is empty. Zero
	// (SRTPDefault) means SRTPOff.
	SRTP SRTPMode

	// DefaultUser is the SIP user calls without SIPLogin are placed from.
	// Zero means "sipstream".
	DefaultUser string
	// UserAgent is the SIP User-Agent header. Zero means "sipstream".
	UserAgent string
	// RingTimeout is how long a call may stay unanswered before it is
	// cancelled (FAILED, 408). Zero means 60 s.
	RingTimeout time.Duration
	// TeardownTimeout bounds ending a call: BYE (or CANCEL), unREGISTER,
	// closing the media session and flushing the sinks. It runs on its own
	// context, so a cancelled request cannot skip it. Zero means 5 s.
	TeardownTimeout time.Duration
	// MediaTimeout hangs up (FAILED) a call that received no RTP at all
	// this long after the answer. Zero means 30 s; negative disables it.
	MediaTimeout time.Duration
	// IdleTimeout hangs up (FAILED) a call whose RTP stopped for this long
	// (on every receiving stream; a call on hold without media is not
	// affected). Zero means 20 s; negative disables it.
	IdleTimeout time.Duration
	// MaxCalls limits live calls (StartCall then fails with
	// ErrTooManyCalls). Zero means no limit beyond the RTP port range.
	MaxCalls int
	// Admission is admission control: new calls are refused (ErrOverloaded)
	// when CPU, socket drops or sink queues say the machine has no headroom
	// left. The zero value leaves it off; set Admission.MaxCPU (0.8 is a
	// good value) to turn it on.
	Admission AdmissionConfig
	// SinkQueue is the frame queue of each sink; a full queue drops frames
	// for that sink only. Zero means 512.
	SinkQueue int
	// RTMPGiveUpAfter is how long an RTMP sink keeps reconnecting before it
	// reports SinkFailed. Zero means the RTMP sink's default.
	RTMPGiveUpAfter time.Duration
	// RTMPAudioPassthrough publishes G.711 audio as it comes (FLV sound
	// formats 7 and 8: nginx-rtmp, Wowza and ffmpeg accept it, YouTube,
	// Facebook and Twitch do not). Zero (false) means audio is transcoded to
	// AAC, which every platform accepts.
	RTMPAudioPassthrough bool
	// KeepCallOnRTMPFailure keeps a call up when its own RTMP leg
	// (CallParams.RTMPURL) fails for good. Zero (false) means such a call
	// is hung up and ends FAILED, as the product does.
	KeepCallOnRTMPFailure bool

	// OnIncoming decides what happens to a call offered to the gateway (an
	// out-of-dialog INVITE) once it passed Inbound's checks. Nil means every
	// incoming INVITE is refused with 480, as before. It is called on a
	// goroutine of its own; ctx ends when the caller cancels or after
	// Inbound.DecisionTimeout (the call is then refused 480). A returned
	// error, or refused Params (*ParamError, ErrDuplicateStream,
	// ErrTooManyCalls, ErrOverloaded), rejects the INVITE (500, 488, 486 or
	// 503 as fits) and is logged.
	OnIncoming func(ctx context.Context, in IncomingCall) (Decision, error)
	// Inbound says who may call (see InboundConfig).
	Inbound InboundConfig
	// Accounts are registered when the Manager starts (in the background:
	// New does not wait for the registrars) and kept registered
	// (refreshed, retried with backoff after a failure) until Close; calls
	// that come in for them are accepted.
	Accounts []Account

	// OnEvent receives every status change of every call. For one call,
	// events arrive in order, one at a time, from one goroutine that belongs
	// to that call (events of different calls may arrive concurrently).
	// Registration events (EventRegistration, CallID empty) arrive in order
	// from one goroutine of the Manager's. It
	// must not block for long: a slow handler delays that call's later events
	// (they queue without limit; the call itself never waits). It may call
	// Manager methods, but must not wait for the call's Done. Nil means
	// events are dropped.
	OnEvent func(Event)
	// Logger receives debug and info logs (never passwords or stream keys).
	// Nil means no logs.
	Logger *slog.Logger

	// backend replaces the real SIP, media, SDP and sink implementations
	// (tests).
	backend *backend
	// admissionClock and admissionCPU replace the clock and the process's
	// CPU time admission control reads (tests).
	admissionClock func() time.Time
	admissionCPU   func() (time.Duration, bool)
	// srtpUnset records that SRTP was left zero (validate makes it
	// SRTPOff): incoming calls then answer in kind.
	srtpUnset bool
	// accountRetry replaces the first backoff of a failed registration
	// (tests).
	accountRetry time.Duration
}

const (
	defaultListenAddr      = "0.0.0.0:5060"
	defaultRTPPortMin      = 30000
	defaultRTPPortMax      = 31999
	defaultRingTimeout     = 60 * time.Second
	defaultTeardownTimeout = 5 * time.Second
	defaultSinkQueue       = 512
	// defaultMaxKeyframeInterval is what RTMP platforms ask for.
	defaultMaxKeyframeInterval = 2 * time.Second
	defaultUser                = "sipstream"
)

// validate returns the normalized copy of c.
func (c Config) validate() (Config, error) {
	q := c
	if q.ListenAddr == "" {
		q.ListenAddr = defaultListenAddr
	}
	host, port, err := net.SplitHostPort(q.ListenAddr)
	if err != nil {
		return q, fmt.Errorf("callmgr: Config.ListenAddr %q: %w", q.ListenAddr, err)
	}
	if p, err := net.LookupPort("udp", port); err != nil || p < 0 {
		return q, fmt.Errorf("callmgr: Config.ListenAddr %q: bad port", q.ListenAddr)
	}
	var listenIP netip.Addr
	if host == "" {
		// ":5060": sipgo would bind "udp" on [::] as well (see sip.Config).
		q.ListenAddr = net.JoinHostPort("0.0.0.0", port)
	} else {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return q, fmt.Errorf("callmgr: Config.ListenAddr %q: host must be an IP address", q.ListenAddr)
		}
		listenIP = a
	}
	concrete := listenIP.IsValid() && !listenIP.IsUnspecified()
	if !q.MediaIP.IsValid() {
		if concrete {
			q.MediaIP = listenIP
		} else {
			q.MediaIP = netip.IPv4Unspecified()
		}
	}
	if !q.PublicIP.IsValid() {
		switch {
		case concrete:
			q.PublicIP = listenIP
		case q.MediaIP.IsValid() && !q.MediaIP.IsUnspecified():
			q.PublicIP = q.MediaIP
		default:
			q.PublicIP = firstIPv4()
		}
	}
	if q.PublicIP.IsUnspecified() {
		return q, fmt.Errorf("callmgr: Config.PublicIP must not be unspecified")
	}
	if q.RTPPortMin == 0 && q.RTPPortMax == 0 {
		q.RTPPortMin, q.RTPPortMax = defaultRTPPortMin, defaultRTPPortMax
	}
	if q.RTPPortMin < 1024 || q.RTPPortMax > 65535 || q.RTPPortMax-q.RTPPortMin < 3 {
		return q, fmt.Errorf("callmgr: Config.RTPPortMin/Max %d-%d: want 1024 <= min, min+3 <= max <= 65535", q.RTPPortMin, q.RTPPortMax)
	}
	if q.RecordDir != "" {
		st, err := os.Stat(q.RecordDir)
		if err != nil {
			return q, fmt.Errorf("callmgr: Config.RecordDir: %w", err)
		}
		if !st.IsDir() {
			return q, fmt.Errorf("callmgr: Config.RecordDir %q is not a folder", q.RecordDir)
		}
	}
	if len(q.AudioCodecs) == 0 {
		q.AudioCodecs = []media.Codec{media.CodecPCMA, media.CodecPCMU, media.CodecOpus}
	}
	if len(q.VideoCodecs) == 0 {
		q.VideoCodecs = []media.Codec{media.CodecH264, media.CodecVP8}
	}
	q.AudioCodecs = append([]media.Codec(nil), q.AudioCodecs...)
	q.VideoCodecs = append([]media.Codec(nil), q.VideoCodecs...)
	for _, c := range q.AudioCodecs {
		if c.Kind() != media.KindAudio || c == media.CodecTelephoneEvent || c == media.CodecAAC {
			return q, fmt.Errorf("callmgr: Config.AudioCodecs: %v is not an RTP audio codec sipstream receives", c)
		}
	}
	for _, c := range q.VideoCodecs {
		if c.Kind() != media.KindVideo {
			return q, fmt.Errorf("callmgr: Config.VideoCodecs: %v is not a video codec", c)
		}
	}
	switch q.RecordFormat {
	case "":
		q.RecordFormat = "mp4"
	case "mp4", "mkv", "flv":
	default:
		return q, fmt.Errorf("callmgr: Config.RecordFormat %q: want mp4, mkv or flv", q.RecordFormat)
	}
	if q.RecordQuota < 0 {
		return q, fmt.Errorf("callmgr: Config.RecordQuota must not be negative")
	}
	if !q.SRTP.valid() {
		return q, fmt.Errorf("callmgr: Config.SRTP %q: want off, optional or required", string(q.SRTP))
	}
	if q.SRTP == SRTPDefault {
		q.SRTP = SRTPOff
		q.srtpUnset = true
	}
	if q.DefaultUser == "" {
		q.DefaultUser = defaultUser
	}
	if err := sip.ValidateUser(q.DefaultUser); err != nil {
		return q, fmt.Errorf("callmgr: Config.DefaultUser: %w", err)
	}
	if q.UserAgent == "" {
		q.UserAgent = "sipstream"
	}
	if q.RingTimeout < 0 || q.TeardownTimeout < 0 || q.MaxCalls < 0 || q.SinkQueue < 0 || q.RTMPGiveUpAfter < 0 {
		return q, fmt.Errorf("callmgr: Config: negative RingTimeout, TeardownTimeout, MaxCalls, SinkQueue or RTMPGiveUpAfter")
	}
	if q.RingTimeout == 0 {
		q.RingTimeout = defaultRingTimeout
	}
	if q.TeardownTimeout == 0 {
		q.TeardownTimeout = defaultTeardownTimeout
	}
	if q.SinkQueue == 0 {
		q.SinkQueue = defaultSinkQueue
	}
	if q.MaxKeyframeInterval == 0 {
		q.MaxKeyframeInterval = defaultMaxKeyframeInterval
	}
	if q.LossPolicy > session.LossConceal {
		return q, fmt.Errorf("callmgr: Config.LossPolicy %d is not a policy", q.LossPolicy)
	}
	if q.Logger == nil {
		q.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if q.Admission, err = q.Admission.validate(); err != nil {
		return q, err
	}
	if q.Inbound, err = q.Inbound.validate(); err != nil {
		return q, err
	}
	q.Accounts = append([]Account(nil), q.Accounts...)
	return q, nil
}

// firstIPv4 returns the host's first non-loopback IPv4 address, or
// 127.0.0.1.
func firstIPv4() netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok {
					ip = ip.Unmap()
					if ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() {
						return ip
					}
				}
			}
		}
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}
