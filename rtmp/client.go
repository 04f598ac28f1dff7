package rtmp

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
)

// ClientConfig configures a publishing Client. The zero value works.
type ClientConfig struct {
	// TLSConfig is used for rtmps:// URLs. Nil means a default
	// configuration. When its ServerName is empty, the URL's host name is
	// used for SNI and certificate verification (on a copy; the caller's
	// struct is never modified).
	TLSConfig *tls.Config
	// DialTimeout bounds everything Dial does: TCP connect, TLS, the RTMP
	// handshake and the publish sequence up to NetStream.Publish.Start.
	// Zero means 15 seconds. Dial's context can end it sooner.
	DialTimeout time.Duration
	// WriteTimeout bounds each message write once publishing. A server
	// that stops reading for this long fails the Client: nothing queues
	// up in memory. Zero means 10 seconds.
	WriteTimeout time.Duration
	// StreamName, when set, is the stream name (key) and the URL names
	// only the app, as in OBS's "server" and "stream key" fields (see
	// ParseAppURL). Empty means the URL holds both (see ParseURL).
	StreamName string
	// ChunkSize is the outgoing chunk size. Zero means 4096. Keep it at
	// 256 or more: nginx-rtmp was seen to stall, now and then, on a
	// connect that arrives with a Set Chunk Size of 64 in the same read.
	ChunkSize uint32
	// FlashVer is the connect command's flashVer. Empty means
	// "FMLE/3.0 (compatible; sipstream)", which some CDNs require to
	// start with FMLE.
	FlashVer string
	// FourCCs lists the Enhanced RTMP codecs to announce in connect's
	// fourCcList ("hvc1", "av01", "Opus"). Empty means none: classic
	// RTMP, what YouTube, Facebook and Twitch ingest take for H.264/AAC.
	FourCCs []string
	// Dial opens the TCP connection. Nil means a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// ClientStats counts what a Client sent.
type ClientStats struct {
	// Bytes is the size of the media and metadata tag bodies sent.
	Bytes uint64
	// VideoFrames and AudioFrames count frames sent.
	VideoFrames, AudioFrames uint64
	// VideoDropped counts video frames dropped before the first keyframe
	// with known SPS and PPS.
	VideoDropped uint64
}

// Client publishes one stream to an RTMP or RTMPS server.
//
// Media methods write synchronously, each message with the WriteTimeout as
// deadline: a stalled server blocks the caller for at most that long and
// never makes the Client buffer. They are safe for concurrent use
// (serialized). After any failure the Client is unusable: every method
// returns the first error, a *PublishError when the server rejected or
// ended the stream. Close unblocks a write in progress.
type Client struct {
	url      *URL
	cfg      ClientConfig
	nc       net.Conn
	conn     *conn
	streamID uint32
	wg       sync.WaitGroup

	closed    atomic.Bool
	closeOnce sync.Once

	errMu sync.Mutex
	err   error
	done  chan struct{} // closed with the first error

	// media state, under mu
	mu            sync.Mutex
	msg           message
	vhead         []byte // a video tag's header, the frame follows it
	abuf          []byte
	sps, pps      []byte
	videoConfig   bool
	videoStarted  bool
	aacConfig     []byte
	aacConfigured bool
	bytes         atomic.Uint64
	videoFrames   atomic.Uint64
	audioFrames   atomic.Uint64
	videoDropped  atomic.Uint64
	found         rtph264.ParamSets // of the keyframe being written

	hevcConfigured bool
	opusConfigured bool
	// vguard and aguard keep each track's message timestamps strictly
	// increasing in milliseconds (see WriteH264).
	vguard, aguard media.DTSGuard
	serverFourCCs  map[string]bool // set by Dial, read-only afterwards
	authParams     string          // appended to app and tcUrl in connect
}

// readLoop reads what the server sends while publishing: acknowledgements
// and pings are handled by conn, an error status ends the Client.
func (c *Client) readLoop() {
	defer c.wg.Done()
	for {
		m, err := c.conn.readMessage()
		if err != nil {
			c.fail(&PublishError{Stage: "stream", Err: err})
			return
		}
		if m.Type != typeCommandAMF0 && m.Type != typeCommandAMF3 {
			continue
		}
		cmd, err := parseCommand(&m)
		if err != nil {
			continue
		}
		if cmd.name == "_error" && (cmd.txn == 2 || cmd.txn == 3) {
			continue // a late refusal of releaseStream or FCPublish: harmless
		}
		if cmd.name == "onStatus" || cmd.name == "_error" {
			code, desc, level := cmd.info()
			if level == "error" || cmd.name == "_error" {
				c.fail(&PublishError{Stage: "stream", Code: code, Description: desc})
				return
			}
		}
	}
}

// fail records the first error and closes the connection, which unblocks
// any write and the read loop.
func (c *Client) fail(err error) {
	c.errMu.Lock()
	if c.err == nil {
		if c.closed.Load() {
			err = ErrClosed
		}
		c.err = err
		close(c.done)
	}
	c.errMu.Unlock()
	_ = c.nc.Close()
}

// Done is closed when the Client stops working: the server refused or
// ended the stream, the connection failed, or Close was called. Err then
// says why. A publisher that sends nothing for a while learns of a lost
// server here rather than on its next write.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns the error that ended the Client (ErrClosed after Close),
// or nil while it works.
func (c *Client) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

func (c *Client) usable() error {
	if c.closed.Load() {
		return ErrClosed
	}
	return c.Err()
}

// String describes the Client without its stream key or password.
func (c *Client) String() string { return "rtmp publisher " + c.url.String() }

// URL returns the parsed URL. Its String method redacts secrets.
func (c *Client) URL() *URL { return c.url }

// StreamID returns the message stream ID the server assigned.
func (c *Client) StreamID() uint32 { return c.streamID }

// Stats returns counters of what was sent.
func (c *Client) Stats() ClientStats {
	return ClientStats{
		Bytes:        c.bytes.Load(),
		VideoFrames:  c.videoFrames.Load(),
		AudioFrames:  c.audioFrames.Load(),
		VideoDropped: c.videoDropped.Load(),
	}
}

// Close ends the publication: it sends FCUnpublish and deleteStream (best
// effort, one second at most, skipped if a write is blocked), closes the
// connection and waits for the Client's goroutine. It is idempotent and
// returns nil; later method calls return ErrClosed.
func (c *Client) Close() error {
	_ = c.Shutdown(context.Background())
	return nil
}

// Shutdown is Close with its wait for the server bounded by ctx as well:
// when ctx is done while FCUnpublish and deleteStream are being written
// (a server that stopped reading), the writes are abandoned and the
// connection closed at once. It returns ctx's error if ctx ended the
// shutdown early, nil otherwise (and on later calls).
func (c *Client) Shutdown(ctx context.Context) error {
	var err error
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		if c.Err() == nil && c.conn.wmu.TryLock() {
			c.conn.hold = false // FCUnpublish goes out with what was held
			deadline := time.Now().Add(time.Second)
			if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
				deadline = d
			}
			_ = c.nc.SetWriteDeadline(deadline)
			// A deadline in the past unblocks a write in progress.
			stop := context.AfterFunc(ctx, func() { _ = c.nc.SetWriteDeadline(time.Unix(1, 0)) })
			for _, cmd := range []amf0.Data{
				{"FCUnpublish", 6.0, nil, c.url.Stream},
				{"deleteStream", 7.0, nil, float64(c.streamID)},
			} {
				if b, err := cmd.Marshal(); err == nil {
					if c.conn.writeLocked(&message{ChunkStreamID: csidCommand, Type: typeCommandAMF0, Payload: b}) != nil {
						break
					}
				}
			}
			if !stop() {
				err = ctx.Err() // the goodbye was cut short
			}
			c.conn.wmu.Unlock()
		}
		c.fail(ErrClosed)
		c.wg.Wait()
	})
	return err
}

// What a publishing client accepts from its server, which may be hostile.
// A server sends a publisher commands and control messages of a few
// hundred bytes, and then little more than an acknowledgement per window
// and a ping now and then: about a byte a second. A reader that gets more
// than readBurst plus readRate a second fails, which bounds what
// gortmplib's reader can be made to hold in partial messages.
const (
	readBurst = 1 << 20
	readRate  = 4 << 10 // bytes a second
)

// errReadBudget ends a connection whose server sent too much.
var errReadBudget = errors.New("rtmp: server sent more than a publisher expects")

// readBudget is a token bucket on the bytes read from a server. Only the
// reading side uses it (the handshake, then gortmplib's reader).
type readBudget struct {
	r    net.Conn
	left float64
	last time.Time // of the previous Read; zero before the first
}

func newReadBudget(r net.Conn) *readBudget { return &readBudget{r: r, left: readBurst} }

// Read reads at most what the budget allows.
func (b *readBudget) Read(p []byte) (int, error) {
	now := time.Now()
	if !b.last.IsZero() {
		b.left = min(b.left+now.Sub(b.last).Seconds()*readRate, readBurst)
	}
	b.last = now
	if b.left < 1 {
		return 0, errReadBudget
	}
	if left := int(b.left); len(p) > left {
		p = p[:left]
	}
	n, err := b.r.Read(p)
	b.left -= float64(n)
	return n, err
}
