package rtmp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/handshake"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/rtph264"
	"github.com/sipstream/sipstream/rtmp/flv"
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

// Dial connects to the server at rawURL and starts publishing: TCP (and
// TLS for rtmps://), handshake, connect, releaseStream, FCPublish,
// createStream, publish. It returns once the server has answered
// NetStream.Publish.Start. A refusal is a *PublishError (errors.Is
// ErrBadName for a wrong stream key). Neither the errors nor the Client's
// String method reveal the stream key or URL password.
func Dial(ctx context.Context, rawURL string, cfg ClientConfig) (*Client, error) {
	var u *URL
	var err error
	if cfg.StreamName != "" {
		u, err = ParseAppURL(rawURL, cfg.StreamName)
	} else {
		u, err = ParseURL(rawURL)
	}
	if err != nil {
		return nil, err
	}
	if u.Stream == "" {
		return nil, fmt.Errorf("%w: no stream name", ErrInvalidURL)
	}
	if cfg.DialTimeout < 0 || cfg.WriteTimeout < 0 {
		return nil, errors.New("rtmp: negative timeout")
	}
	if cfg.ChunkSize > maxChunkSize {
		return nil, fmt.Errorf("rtmp: chunk size %d over %d", cfg.ChunkSize, maxChunkSize)
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 15 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = 4096
	}
	if cfg.FlashVer == "" {
		cfg.FlashVer = "FMLE/3.0 (compatible; sipstream)"
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()

	// With credentials in the URL, a server that asks for Adobe
	// authentication (Wowza, Adobe Media Server) gets up to two more
	// connections: one to learn the challenge, one to answer it.
	var auth adobeAuth
	for {
		c, err := dialOnce(ctx, u, cfg, auth.params)
		if err == nil {
			return c, nil
		}
		if !auth.next(err, u) {
			return nil, err
		}
	}
}

func dialOnce(ctx context.Context, u *URL, cfg ClientConfig, authParams string) (*Client, error) {
	dial := cfg.Dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("rtmp: dial %s: %w", u.Host, err)
	}
	// The end of ctx (cancel or DialTimeout) aborts whatever blocks
	// below; ctx.Err() is then set before any I/O fails.
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if u.Scheme == "rtmps" {
		tc := cfg.TLSConfig.Clone()
		if tc == nil {
			tc = &tls.Config{}
		}
		if tc.ServerName == "" {
			tc.ServerName = u.Hostname
		}
		tlsConn := tls.Client(nc, tc)
		if err := tlsConn.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("rtmp: TLS handshake with %s: %w", u.Host, ctxErr(ctx, err))
		}
		nc = tlsConn
	}
	c := &Client{url: u, cfg: cfg, nc: nc, done: make(chan struct{}), authParams: authParams}
	if err := c.publishSequence(); err != nil {
		nc.Close()
		return nil, ctxErr(ctx, err)
	}
	if !stop() {
		nc.Close()
		return nil, ctx.Err()
	}
	_ = nc.SetDeadline(time.Time{})
	c.wg.Add(1)
	go c.readLoop()
	return c, nil
}

// ctxErr prefers the context's error when it explains a failed I/O.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

func (c *Client) publishSequence() error {
	stage := "handshake"
	err := c.publishSteps(&stage)
	var pe *PublishError
	if err != nil && !errors.As(err, &pe) {
		err = &PublishError{Stage: stage, Err: err}
	}
	return err
}

func (c *Client) publishSteps(stage *string) error {
	// What a publisher reads from its server (which may be hostile: the
	// URL comes from whoever asked for the broadcast) is budgeted, since
	// gortmplib's reader holds up to 10 MiB per partial message.
	br := newReadBudget(c.nc)
	if _, _, err := handshake.DoClient(struct {
		io.Reader
		io.Writer
	}{br, c.nc}, false, false); err != nil {
		return err
	}
	*stage = "connect"
	c.conn = newConn(c.nc, br, 0) // the Dial deadline applies until publishing starts
	if err := c.conn.setChunkSize(c.cfg.ChunkSize); err != nil {
		return err
	}
	u := c.url
	obj := amf0.Object{
		{Key: "app", Value: u.App + c.authParams},
		{Key: "type", Value: "nonprivate"},
		{Key: "flashVer", Value: c.cfg.FlashVer},
		{Key: "tcUrl", Value: u.TcURL() + c.authParams},
	}
	if len(c.cfg.FourCCs) > 0 {
		list := make(amf0.StrictArray, len(c.cfg.FourCCs))
		for i, f := range c.cfg.FourCCs {
			list[i] = f
		}
		obj = append(obj, amf0.ObjectEntry{Key: "fourCcList", Value: list})
	}
	if err := c.conn.writeCommand(csidCommand, 0, typeCommandAMF0, "connect", 1, obj); err != nil {
		return err
	}
	res, err := c.await("connect", 1)
	if err != nil {
		return err
	}
	c.serverFourCCs = serverFourCCs(res)
	// Pipelined: Wowza never answers releaseStream and FCPublish, so
	// only createStream's answer is awaited.
	name := u.Stream
	*stage = "createStream"
	if err := c.conn.writeCommand(csidCommand, 0, typeCommandAMF0, "releaseStream", 2, nil, name); err != nil {
		return err
	}
	if err := c.conn.writeCommand(csidCommand, 0, typeCommandAMF0, "FCPublish", 3, nil, name); err != nil {
		return err
	}
	if err := c.conn.writeCommand(csidCommand, 0, typeCommandAMF0, "createStream", 4, nil); err != nil {
		return err
	}
	res, err = c.await("createStream", 4)
	if err != nil {
		return err
	}
	id := 1.0
	if len(res.args) > 0 {
		if n, ok := res.args[0].(float64); ok {
			id = n
		}
	}
	if id < 0 || id > 1<<31 {
		return &PublishError{Stage: "createStream", Code: "_result", Description: "invalid stream ID"}
	}
	c.streamID = uint32(id)
	*stage = "publish"
	if err := c.conn.writeCommand(csidCommand, c.streamID, typeCommandAMF0, "publish", 5, nil, name, "live"); err != nil {
		return err
	}
	if _, err := c.await("publish", 5); err != nil {
		return err
	}
	c.conn.writeTimeout = c.cfg.WriteTimeout
	return nil
}

// await reads until the answer to transaction txn: _result/_error, or for
// publish the onStatus that starts or refuses it.
func (c *Client) await(stage string, txn float64) (command, error) {
	for {
		m, err := c.conn.readMessage()
		if err != nil {
			return command{}, &PublishError{Stage: stage, Err: err}
		}
		if m.Type != typeCommandAMF0 && m.Type != typeCommandAMF3 {
			continue
		}
		cmd, err := parseCommand(&m)
		if err != nil {
			continue
		}
		switch {
		case cmd.name == "_result" && cmd.txn == txn:
			code, desc, level := cmd.info()
			if level == "error" {
				return cmd, &PublishError{Stage: stage, Code: code, Description: desc}
			}
			if stage != "publish" {
				return cmd, nil
			}
		case cmd.name == "_error" && (cmd.txn == txn || stage == "publish" && cmd.txn == 0):
			code, desc, _ := cmd.info()
			if code == "" {
				code = "_error"
			}
			return cmd, &PublishError{Stage: stage, Code: code, Description: desc}
		case cmd.name == "onStatus" && stage == "publish":
			code, desc, level := cmd.info()
			if code == codePublishStart {
				return cmd, nil
			}
			if level == "error" || code == codePublishBadName {
				return cmd, &PublishError{Stage: stage, Code: code, Description: desc}
			}
		}
	}
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

// send writes one media or data message; the caller holds mu.
func (c *Client) send(csid byte, typ uint8, ts uint32, payload []byte) error {
	return c.sendHead(csid, typ, ts, nil, payload)
}

// sendHead writes one message whose body is head followed by payload; the
// caller holds mu.
func (c *Client) sendHead(csid byte, typ uint8, ts uint32, head, payload []byte) error {
	c.msg = message{ChunkStreamID: csid, Type: typ, Timestamp: ts, StreamID: c.streamID, Payload: payload}
	c.conn.wmu.Lock()
	err := c.conn.writeHeadLocked(&c.msg, head)
	c.conn.wmu.Unlock()
	c.msg.Payload = nil
	if err != nil {
		err = &PublishError{Stage: "stream", Err: err}
		c.fail(err)
		return c.usable()
	}
	c.bytes.Add(uint64(len(head) + len(payload)))
	return nil
}

// Hold makes the writes that follow wait in memory, encoded, until Flush,
// so that several frames that are ready together (a sink's queue drained at
// once) reach the connection in one write: one system call, and over TLS
// one run of records, instead of one per frame. Nothing is written in the
// meantime, so call Flush as soon as the frames at hand are written; a
// frame must never wait for one that has not arrived. Messages the Client
// sends by itself meanwhile (acknowledgements, ping replies) join the
// held ones. At most about 16 KiB are held: a message that would go
// beyond sends what is held first, so that a batch costs no buffer larger
// than the one kept between writes. Write errors surface at Flush, or at
// the write that sent the held messages.
func (c *Client) Hold() {
	c.conn.wmu.Lock()
	c.conn.hold = true
	c.conn.wmu.Unlock()
}

// Flush writes what was held since Hold, with WriteTimeout as deadline,
// and ends the hold. A write failure fails the Client as a media write's
// does.
func (c *Client) Flush() error {
	c.conn.wmu.Lock()
	c.conn.hold = false
	err := c.conn.flushLocked()
	c.conn.wmu.Unlock()
	if err != nil {
		c.fail(&PublishError{Stage: "stream", Err: err})
	}
	return c.usable()
}

// WriteMetadata sends @setDataFrame onMetaData. Send it before the media.
func (c *Client) WriteMetadata(md flv.Metadata) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	return c.send(csidData, typeDataAMF0, 0, flv.SetDataFrame(md))
}

// WriteAVCConfig sends an AVC sequence header for sps and pps (NAL units
// without prefix), for streams whose keyframes do not carry them in band
// (the SDP's sprop-parameter-sets). Nothing is sent if they did not change.
func (c *Client) WriteAVCConfig(sps, pps []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	return c.avcConfig(0, sps, pps)
}

func (c *Client) avcConfig(ts uint32, sps, pps []byte) error {
	if c.videoConfig && bytes.Equal(sps, c.sps) && bytes.Equal(pps, c.pps) {
		return nil
	}
	seq, err := flv.AVCSequenceHeader(sps, pps)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	if err := c.send(csidVideo, typeVideo, ts, seq); err != nil {
		return err
	}
	c.sps = append(c.sps[:0], sps...)
	c.pps = append(c.pps[:0], pps...)
	c.videoConfig = true
	return nil
}

// WriteH264 sends one H.264 access unit in AVC format (4-byte
// length-prefixed NAL units, media.Frame's H.264 payload). pts and dts are
// on the stream's timeline; RTMP carries dts in milliseconds and pts-dts
// as the composition time. When a keyframe carries an SPS and a PPS that
// differ from the last ones sent, a new AVC sequence header goes out first.
// Frames before the first keyframe with known parameter sets are dropped
// (counted in Stats) since no decoder could use them. avcc is not retained.
//
// Message timestamps are strictly increasing per track (video, audio)
// whatever the caller passes: a dts that is not after the previous frame's
// at millisecond resolution (a duplicate, a late frame, two frames within
// one millisecond) is sent one millisecond after it, later frames keep
// their own time once they are ahead again (media.DTSGuard); negative times
// count as zero, and the composition time is never negative.
func (c *Client) WriteH264(pts, dts time.Duration, avcc []byte, keyframe bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if keyframe {
		c.found = rtph264.ParamSets{}
		if err := rtph264.ForEachAVC(avcc, c.findParamSets); err != nil {
			c.found = rtph264.ParamSets{}
			return fmt.Errorf("%w: H.264 access unit: %w", ErrBadFrame, err)
		}
	}
	newConfig := c.found.SPS != nil && c.found.PPS != nil
	if !c.videoConfig && !newConfig || !c.videoStarted && !keyframe {
		c.found = rtph264.ParamSets{}
		c.videoDropped.Add(1)
		return nil
	}
	p, d := c.vguard.Stamp(max(pts, 0), max(dts, 0))
	ts := uint32(d) // wraps after 49.7 days, as RTMP time does
	if newConfig {
		err := c.avcConfig(ts, c.found.SPS, c.found.PPS)
		c.found = rtph264.ParamSets{}
		if err != nil {
			return err
		}
	}
	c.videoStarted = true
	// The tag is the 5-byte header and the frame, which the chunk writer
	// copies once from where it is.
	c.vhead = flv.AppendAVCFrame(c.vhead[:0], keyframe, int32(p-d), nil)
	if err := c.sendHead(csidVideo, typeVideo, ts, c.vhead, avcc); err != nil {
		return err
	}
	c.videoFrames.Add(1)
	return nil
}

func (c *Client) findParamSets(n []byte) bool {
	c.found.Add(n)
	return true
}

// WriteAACConfig sends the AAC sequence header (AudioSpecificConfig). It
// must come before WriteAAC; sending a different one later re-sends it.
func (c *Client) WriteAACConfig(asc []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if c.aacConfigured && bytes.Equal(asc, c.aacConfig) {
		return nil
	}
	if err := c.send(csidAudio, typeAudio, 0, flv.AACSequenceHeader(asc)); err != nil {
		return err
	}
	c.aacConfig = append(c.aacConfig[:0], asc...)
	c.aacConfigured = true
	return nil
}

// WriteAAC sends one raw AAC access unit (no ADTS header) presented at pts.
func (c *Client) WriteAAC(pts time.Duration, au []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if !c.aacConfigured {
		return ErrNoConfig
	}
	c.abuf = flv.AppendAACFrame(c.abuf[:0], au)
	return c.sendAudio(pts)
}

// sendAudio sends c.abuf at pts, strictly after the previous audio
// message (see WriteH264).
func (c *Client) sendAudio(pts time.Duration) error {
	ts := uint32(c.aguard.Next(max(pts, 0)))
	if err := c.send(csidAudio, typeAudio, ts, c.abuf); err != nil {
		return err
	}
	c.audioFrames.Add(1)
	return nil
}

// WriteG711 sends G.711 samples (8 kHz mono; A-law if alaw, µ-law
// otherwise) presented at pts. nginx-rtmp, Wowza and FFmpeg accept it;
// YouTube, Facebook and Twitch do not (send AAC there).
func (c *Client) WriteG711(pts time.Duration, alaw bool, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	c.abuf = flv.AppendG711Frame(c.abuf[:0], alaw, payload)
	return c.sendAudio(pts)
}

// WriteSpeex sends one Speex packet (16 kHz wideband, the only rate FLV
// allows) presented at pts.
func (c *Client) WriteSpeex(pts time.Duration, payload []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	c.abuf = flv.AppendSpeexFrame(c.abuf[:0], payload)
	return c.sendAudio(pts)
}

// WriteTag sends a ready FLV tag body (audio, video or script data) as it
// is, for relaying. Script tags go out as data messages unchanged; audio and
// video tags other than sequence headers get a timestamp strictly after the
// previous one of their track, as WriteH264 does (the body, and with it a
// video tag's composition time, is not changed).
func (c *Client) WriteTag(t flv.Tag) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	ts := time.Duration(t.Timestamp) * time.Millisecond
	switch t.Type {
	case flv.TagAudio:
		if a, err := flv.ParseAudio(t.Data); err == nil && !a.SequenceHeader() {
			t.Timestamp = uint32(c.aguard.Next(ts))
		}
		return c.send(csidAudio, typeAudio, t.Timestamp, t.Data)
	case flv.TagVideo:
		if v, err := flv.ParseVideo(t.Data); err == nil && !v.SequenceHeader() {
			t.Timestamp = uint32(c.vguard.Next(ts))
		}
		return c.send(csidVideo, typeVideo, t.Timestamp, t.Data)
	case flv.TagScript:
		return c.send(csidData, typeDataAMF0, t.Timestamp, t.Data)
	}
	return fmt.Errorf("rtmp: tag type %d", t.Type)
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

// serverFourCCs collects the Enhanced RTMP codecs a connect _result
// announces: its fourCcList and the keys of videoFourCcInfoMap and
// audioFourCcInfoMap ("*" meaning any).
func serverFourCCs(res command) map[string]bool {
	m := map[string]bool{}
	for _, v := range append([]any{res.obj}, res.args...) {
		ps, ok := objectOf(v)
		if !ok {
			continue
		}
		for _, p := range ps {
			switch p.Key {
			case "fourCcList":
				if list, ok := p.Value.(amf0.StrictArray); ok {
					for _, f := range list {
						if s, ok := f.(string); ok {
							m[s] = true
						}
					}
				}
			case "videoFourCcInfoMap", "audioFourCcInfoMap":
				if kv, ok := objectOf(p.Value); ok {
					for _, e := range kv {
						m[e.Key] = true
					}
				}
			}
		}
	}
	return m
}

// ServerSupports reports whether the server announced the Enhanced RTMP
// codec fourCC ("hvc1", "Opus", ...) in its connect answer, by name or
// with the "*" wildcard. Servers that predate Enhanced RTMP announce
// nothing.
func (c *Client) ServerSupports(fourCC string) bool {
	return c.serverFourCCs[fourCC] || c.serverFourCCs["*"]
}

// WriteHEVCConfig sends an Enhanced RTMP HEVC sequence start with an
// HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1). Check
// ServerSupports("hvc1") first: classic servers drop or reject it.
func (c *Client) WriteHEVCConfig(hvcc []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.send(csidVideo, typeVideo, 0, flv.HEVCSequenceHeader(hvcc)); err != nil {
		return err
	}
	c.hevcConfigured = true
	return nil
}

// WriteHEVC sends one HEVC access unit (4-byte length-prefixed NAL units)
// as Enhanced RTMP coded frames, after WriteHEVCConfig. Timestamps are kept
// strictly increasing as WriteH264 does.
func (c *Client) WriteHEVC(pts, dts time.Duration, nalus []byte, keyframe bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if !c.hevcConfigured {
		return ErrNoConfig
	}
	p, d := c.vguard.Stamp(max(pts, 0), max(dts, 0))
	c.vhead = flv.AppendHEVCFrame(c.vhead[:0], keyframe, int32(p-d), nil)
	if err := c.sendHead(csidVideo, typeVideo, uint32(d), c.vhead, nalus); err != nil {
		return err
	}
	c.videoFrames.Add(1)
	return nil
}

// WriteOpusConfig sends an Enhanced RTMP v2 Opus sequence start carrying
// the identification header ("OpusHead", RFC 7845 section 5.1). Check
// ServerSupports("Opus") first.
func (c *Client) WriteOpusConfig(opusHead []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if err := c.send(csidAudio, typeAudio, 0, flv.OpusSequenceHeader(opusHead)); err != nil {
		return err
	}
	c.opusConfigured = true
	return nil
}

// WriteOpus sends one Opus packet presented at pts, after WriteOpusConfig.
func (c *Client) WriteOpus(pts time.Duration, packet []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.usable(); err != nil {
		return err
	}
	if !c.opusConfigured {
		return ErrNoConfig
	}
	c.abuf = flv.AppendOpusFrame(c.abuf[:0], packet)
	return c.sendAudio(pts)
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
