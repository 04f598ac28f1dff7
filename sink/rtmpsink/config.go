package rtmpsink

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/sipstream/sipstream/media/h264gen"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/media/transcode"
	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/sink"
)

// Status is the state of an RTMP sink: sink.State, the state every sink
// reports.
type Status = sink.State

// Statuses, in the order a sink goes through them: Wait until the first
// publish starts, Active while publishing, Lost when the connection dropped
// (reconnecting), Active again once republished, Failed when it gave up.
const (
	StatusWait   = sink.StateWait
	StatusActive = sink.StateActive
	StatusLost   = sink.StateLost
	StatusFailed = sink.StateFailed
)

// AudioMode says what the sink does with the call's audio.
type AudioMode uint8

// Audio modes.
const (
	// AudioAAC (the zero value) publishes AAC, what YouTube, Facebook and
	// Twitch accept: AAC frames pass through, G.711 and Opus are transcoded
	// (media/transcode) and a video-only call gets silent AAC.
	AudioAAC AudioMode = iota
	// AudioPassthrough publishes audio as it comes where FLV can carry it:
	// G.711 A-law and µ-law (8 kHz mono; nginx-rtmp, Wowza and ffmpeg accept
	// it, the big platforms do not) and AAC. Other audio is dropped.
	AudioPassthrough
)

// String returns "aac" or "passthrough".
func (m AudioMode) String() string {
	if m == AudioPassthrough {
		return "passthrough"
	}
	return "aac"
}

// Config configures an RTMP sink. URL is required; zero values of the other
// fields are documented defaults.
type Config struct {
	// URL is the rtmp:// or rtmps:// URL of the application, e.g.
	// "rtmp://a.rtmp.youtube.com/live2". It may already end with the
	// stream name (stream key), query included, when StreamName is empty.
	// It is never written to logs, errors or statuses with the key in it.
	URL string
	// StreamName is the stream name or key to publish, appended to URL
	// after a "/". Empty means URL already names the stream.
	StreamName string

	// Audio and Video say which media the call carries. Both false is an
	// error. A call without audio gets silent AAC in AudioAAC mode; one
	// without video gets a generated H.264 track (see GeneratedVideo).
	Audio, Video bool

	// AudioMode chooses AAC (zero value) or passthrough.
	AudioMode AudioMode
	// AAC configures the AAC output of AudioAAC mode (sample rate,
	// channels, bitrate). The zero value means media/transcode's defaults:
	// 48 kHz mono, 64 kbit/s. Set Channels to 2 for Facebook.
	AAC transcode.AACConfig
	// NewAAC makes the audio converter used in AudioAAC mode. Nil means
	// media/transcode's ToAAC with the AAC settings above.
	NewAAC func() (AudioConverter, error)

	// GeneratedVideo describes the H.264 track made for a call without
	// video (Video false): a solid colour with an IDR at least every 2 s,
	// because the platforms want both audio and video. The zero value
	// means media/h264gen's defaults (640×360 black, 10 fps, IDR each 1 s).
	GeneratedVideo h264gen.Config
	// NoGeneratedVideo publishes an audio-only call without video.
	NoGeneratedVideo bool

	// AudioSpecificConfig is the AAC configuration of the call's audio when
	// it arrives as AAC already. Nil means AAC input is dropped unless
	// NewAAC supplies a converter (whose configuration is then used).
	AudioSpecificConfig []byte

	// RequestKeyframe is called, from the sink's goroutines, whenever the
	// sink needs a video keyframe to start or resume publishing (each
	// publish start, reconnects included, and then about once a second
	// until one arrives). It must not block and must not call the sink's
	// Close (it runs inside WriteFrame and on the goroutine Close waits
	// for); a media session's rate-limited RequestKeyframe fits. Nil means
	// the sink only waits.
	RequestKeyframe func()

	// OnStatus is called on every status change with a reason for LOST and
	// FAILED (never containing the stream key or URL credentials). Calls
	// come from one goroutine owned by the sink, in order; it must not
	// block for long and must not call the sink's Close (Close waits for
	// that goroutine). Nil means statuses are only visible through Status.
	OnStatus func(s Status, reason string)

	// OnSoundEnd is called when a sound given to SetSound has played to its
	// end (its Read returned io.EOF or another error), with that source;
	// not when SetSound stopped or replaced it. It is called on the
	// goroutine that calls WriteFrame, after the frame that used the last
	// of the sound; it must not block and must not call the sink's
	// WriteFrame or Close (it may call SetSound). Nil means the end is not
	// reported.
	OnSoundEnd func(src sound.Source)

	// BackoffMin and BackoffMax bound the exponential backoff between
	// connection attempts (each wait doubles, with ±20 % jitter). Zero
	// means 500 ms and 10 s.
	BackoffMin, BackoffMax time.Duration
	// GiveUpAfter is how long the sink keeps trying to (re)connect, counted
	// from the start (first connection) or from the loss, before it reports
	// FAILED and WriteFrame starts returning ErrFailed. Zero means 60 s.
	GiveUpAfter time.Duration

	// DialTimeout bounds one connection attempt up to NetStream.Publish.Start;
	// zero means 10 s. WriteTimeout bounds one frame's write; zero means 5 s.
	DialTimeout, WriteTimeout time.Duration
	// TLSConfig is used for rtmps:// URLs; nil means the system roots and
	// the URL's host as server name.
	TLSConfig *tls.Config

	// MaxKeyframeInterval is the longest gap between published keyframes
	// (media time) before the sink asks for one through RequestKeyframe (at
	// most once a second): YouTube, Facebook and Twitch want one at least
	// every 2 s, and SIP endpoints often send one far less often. Zero means
	// 2 s; negative disables the requests.
	MaxKeyframeInterval time.Duration

	// KeyframeTimeout is how long, after a publish start, the sink waits for
	// a video keyframe while dropping frames, before it publishes audio
	// alone until the keyframe comes. Zero means 3 s.
	KeyframeTimeout time.Duration
}

// ErrConfig is wrapped by the errors New returns for an invalid Config.
var ErrConfig = errors.New("rtmpsink: invalid config")

// cfgOK is Config with defaults applied and the full publish URL.
type cfgOK struct {
	Config
	publishURL string
	redactor   *strings.Replacer
}

func (c Config) validate() (cfgOK, error) {
	if !c.Audio && !c.Video {
		return cfgOK{}, fmt.Errorf("%w: neither Audio nor Video", ErrConfig)
	}
	if c.URL == "" {
		return cfgOK{}, fmt.Errorf("%w: URL is empty", ErrConfig)
	}
	full := c.URL
	if c.StreamName != "" {
		full = strings.TrimSuffix(full, "/") + "/" + strings.TrimPrefix(c.StreamName, "/")
	}
	u, err := url.Parse(full)
	if err != nil {
		// url.Error repeats the URL: do not wrap it.
		return cfgOK{}, fmt.Errorf("%w: URL does not parse", ErrConfig)
	}
	if u.Scheme != "rtmp" && u.Scheme != "rtmps" {
		return cfgOK{}, fmt.Errorf("%w: URL scheme %q, want rtmp or rtmps", ErrConfig, u.Scheme)
	}
	if u.Host == "" {
		return cfgOK{}, fmt.Errorf("%w: URL has no host", ErrConfig)
	}
	if c.StreamName != "" {
		// The URL names the application, whose query (a token, as in
		// "rtmp://host/live?x=1") belongs to it: it goes into the app
		// and tcUrl, the stream name is published as given (rtmp.Dial's
		// ParseAppURL). Appending the name after the query, as full
		// does, leaves no stream name in the path, so check the parts.
		au, err := url.Parse(c.URL)
		if _, perr := rtmp.ParseAppURL(c.URL, c.StreamName); perr != nil || err != nil || strings.Trim(au.Path, "/") == "" {
			return cfgOK{}, fmt.Errorf("%w: URL needs an application", ErrConfig)
		}
	} else if strings.Count(strings.Trim(u.Path, "/"), "/") < 1 {
		return cfgOK{}, fmt.Errorf("%w: URL needs an application and a stream name", ErrConfig)
	}
	if c.AudioMode > AudioPassthrough {
		return cfgOK{}, fmt.Errorf("%w: unknown AudioMode %d", ErrConfig, c.AudioMode)
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 500 * time.Millisecond
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 10 * time.Second
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = c.BackoffMin
	}
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = 60 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.MaxKeyframeInterval == 0 {
		c.MaxKeyframeInterval = 2 * time.Second
	}
	if c.KeyframeTimeout <= 0 {
		c.KeyframeTimeout = 3 * time.Second
	}
	return cfgOK{Config: c, publishURL: full, redactor: newRedactor(c.URL, c.StreamName, u)}, nil
}

// newRedactor returns a replacer that hides the stream name, the query and
// URL credentials wherever they appear in a message (errors from lower
// layers may quote the URL).
func newRedactor(rawURL, stream string, u *url.URL) *strings.Replacer {
	var secrets []string
	add := func(s string) {
		if len(s) >= 3 {
			secrets = append(secrets, s, "***")
		}
	}
	// Longest first, so a URL is hidden whole rather than piecemeal.
	add(u.String())
	add(rawURL)
	if stream != "" {
		add(stream)
		add(url.PathEscape(stream))
	} else {
		p := strings.Trim(u.Path, "/")
		add(p[strings.LastIndex(p, "/")+1:])
	}
	add(u.RawQuery)
	if au, err := url.Parse(rawURL); err == nil && stream != "" {
		add(au.RawQuery) // the application's own query ("live?token=x")
	}
	if u.User != nil {
		add(u.User.String())
		if pw, ok := u.User.Password(); ok {
			add(pw)
		}
	}
	return strings.NewReplacer(secrets...)
}

// safeURL is the URL as logs and String may show it: scheme, host and
// application, no credentials, stream name or query.
func safeURL(u *url.URL) string {
	app := strings.Trim(u.Path, "/")
	if i := strings.Index(app, "/"); i >= 0 {
		app = app[:i]
	}
	return u.Scheme + "://" + u.Host + "/" + app + "/***"
}

// GoString is String, so that %#v (which would print every field, the
// stream key and URL credentials included) shows no secret either.
func (c Config) GoString() string { return c.String() }

// String describes the config without the stream key or credentials.
func (c Config) String() string {
	full := c.URL
	if c.StreamName != "" {
		full = strings.TrimSuffix(full, "/") + "/" + c.StreamName
	}
	u, err := url.Parse(full)
	if err != nil || u.Host == "" {
		return "rtmpsink.Config{URL: (invalid)}"
	}
	return fmt.Sprintf("rtmpsink.Config{URL: %s, Audio: %t, Video: %t, AudioMode: %v}", safeURL(u), c.Audio, c.Video, c.AudioMode)
}
