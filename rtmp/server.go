package rtmp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/handshake"

	"github.com/sipstream/sipstream/rtmp/flv"
)

// ServerConfig configures a Server. The zero value accepts every publisher
// and player.
type ServerConfig struct {
	// TLSConfig is required by ServeTLS (rtmps) and unused by Serve.
	TLSConfig *tls.Config
	// OnPublish is called when a client asks to publish, before it is
	// accepted; a non-nil error refuses it with NetStream.Publish.BadName.
	// A second publisher of a stream already live is always refused. Nil
	// accepts all. Called from the connection's goroutine; must not block
	// for long.
	OnPublish func(info StreamInfo) error
	// OnUnpublish is called when a publication ends, before its
	// subscriptions see io.EOF. Nil means no call.
	OnUnpublish func(info StreamInfo)
	// OnPlay is called when a client asks to play; a non-nil error refuses
	// it with NetStream.Play.StreamNotFound. Nil accepts all. Players of a
	// stream not yet published wait for it.
	OnPlay func(info StreamInfo) error
	// ChunkSize is the chunk size the server sends with. Zero means 4096.
	ChunkSize uint32
	// HandshakeTimeout bounds the TLS and RTMP handshakes and the commands
	// up to publish or play. Zero means 10 seconds.
	HandshakeTimeout time.Duration
	// ReadTimeout drops a publisher that sends nothing for this long. Zero
	// means 30 seconds.
	ReadTimeout time.Duration
	// WriteTimeout drops a player (or a connection being answered) that
	// does not read for this long. Zero means 10 seconds.
	WriteTimeout time.Duration
	// PlayerQueue is each player's queue in tags; a full queue drops tags
	// (video up to the next keyframe). Zero means 1024.
	PlayerQueue int
	// MaxMessageSize limits a message from a client (a video frame); a
	// larger one ends the connection once read. Zero means 8 MiB
	// (nginx-rtmp's default is 1 MiB); at most 10 MiB, gortmplib's limit,
	// which also bounds each partial message a connection holds.
	MaxMessageSize int
	// Logger receives connection events at debug level and failures at
	// info level. Nil discards them. Stream names (keys) are never logged.
	Logger *slog.Logger
}

// StreamInfo describes a publish or play request.
type StreamInfo struct {
	// App is the connect command's app without its query string.
	App string
	// Name is the stream name without its query string.
	Name string
	// Query is the query string of the stream name (without '?'), where
	// platforms put tokens.
	Query string
	// AppQuery is the query string of the app, if any.
	AppQuery string
	// TcURL is the connect command's tcUrl.
	TcURL string
	// RemoteAddr is the client's address.
	RemoteAddr net.Addr
}

// Key returns "app/name", the key Subscribe uses.
func (i StreamInfo) Key() string { return i.App + "/" + i.Name }

var errAlreadyPublishing = errors.New("rtmp: stream already being published")

// Server is a small RTMP server: it accepts publishers and players (FFmpeg,
// ffplay, OBS, other Clients) and relays each published stream to the
// stream's players and to Subscriptions. It keeps no history beyond the
// last metadata and sequence headers. Releasing releaseStream and
// FCPublish go unanswered, as Wowza does.
type Server struct {
	cfg ServerConfig
	log *slog.Logger

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{}
	streams   map[string]*stream
	wg        sync.WaitGroup
}

// NewServer validates cfg and returns a Server; call Serve or ServeTLS to
// accept connections.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.HandshakeTimeout < 0 || cfg.ReadTimeout < 0 || cfg.WriteTimeout < 0 || cfg.PlayerQueue < 0 {
		return nil, errors.New("rtmp: negative server setting")
	}
	if cfg.ChunkSize > maxChunkSize {
		return nil, fmt.Errorf("rtmp: chunk size %d over %d", cfg.ChunkSize, maxChunkSize)
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = 4096
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = 10 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.PlayerQueue == 0 {
		cfg.PlayerQueue = 1024
	}
	if cfg.MaxMessageSize < 0 || cfg.MaxMessageSize > maxChunkSize {
		return nil, fmt.Errorf("rtmp: MaxMessageSize %d out of range", cfg.MaxMessageSize)
	}
	if cfg.MaxMessageSize == 0 {
		cfg.MaxMessageSize = 8 << 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		cfg: cfg, log: log,
		listeners: map[net.Listener]struct{}{},
		conns:     map[net.Conn]struct{}{},
		streams:   map[string]*stream{},
	}, nil
}

// Serve accepts RTMP connections on l until Close, then returns
// ErrServerClosed (or the listener's error if l is closed by someone
// else). It closes l when it returns.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return ErrServerClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors, an aborted connection, ...: back
			// off and keep serving, as net/http does.
			s.log.Info("rtmp accept failed", "err", err)
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handle(nc)
	}
}

// ServeTLS accepts RTMPS connections on l with ServerConfig.TLSConfig.
func (s *Server) ServeTLS(l net.Listener) error {
	if s.cfg.TLSConfig == nil {
		l.Close()
		return errors.New("rtmp: ServeTLS without ServerConfig.TLSConfig")
	}
	return s.Serve(tls.NewListener(l, s.cfg.TLSConfig))
}

// Close stops the listeners, closes every connection, ends every
// subscription and waits for the Server's goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		for l := range s.listeners {
			l.Close()
		}
		for nc := range s.conns {
			nc.Close()
		}
		for _, st := range s.streams {
			for sub := range st.subs {
				sub.endLocked()
			}
		}
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) handle(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		nc.Close()
	}()
	_ = nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	keyIn, _, err := handshake.DoServer(nc, false)
	if err == nil && keyIn != nil {
		err = errors.New("RTMPE (encrypted RTMP) is not supported")
	}
	if err != nil {
		s.log.Debug("rtmp handshake failed", "remote", nc.RemoteAddr(), "err", err)
		return
	}
	sc := &serverConn{s: s, nc: nc, conn: newConn(nc, nc, s.cfg.WriteTimeout), done: make(chan struct{})}
	err = sc.run()
	sc.finish()
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		s.log.Info("rtmp connection ended", "remote", nc.RemoteAddr(), "app", sc.app, "err", err)
	} else {
		s.log.Debug("rtmp connection closed", "remote", nc.RemoteAddr(), "app", sc.app)
	}
}

// serverConn is one client connection; run owns it.
type serverConn struct {
	s    *Server
	nc   net.Conn
	conn *conn

	app, appQuery, tcURL string

	pub     *stream
	pubInfo StreamInfo
	sub     *Subscription
	playWG  sync.WaitGroup
	done    chan struct{}
}

const serverStreamID = 1

func (sc *serverConn) run() error {
	for {
		m, err := sc.conn.readMessage()
		if err != nil {
			return err
		}
		if len(m.Payload) > sc.s.cfg.MaxMessageSize {
			return fmt.Errorf("message of %d bytes over %d", len(m.Payload), sc.s.cfg.MaxMessageSize)
		}
		switch m.Type {
		case typeCommandAMF0, typeCommandAMF3:
			cmd, err := parseCommand(&m)
			if err != nil {
				continue
			}
			if err := sc.command(cmd); err != nil {
				return err
			}
		case typeAudio, typeVideo, typeDataAMF0:
			if sc.pub == nil {
				continue
			}
			_ = sc.nc.SetReadDeadline(time.Now().Add(sc.s.cfg.ReadTimeout))
			t := flv.Tag{Type: m.Type, Timestamp: m.Timestamp}
			if m.Type == typeDataAMF0 {
				body := flv.StripSetDataFrame(m.Payload)
				if name, _, err := flv.ParseScript(body); err != nil || name != "onMetaData" {
					continue
				}
				t.Type = flv.TagScript
				t.Timestamp = 0
				t.Data = body
			} else {
				if len(m.Payload) == 0 {
					continue
				}
				t.Data = m.Payload // the reader allocates every body: ours to keep
			}
			sc.s.publish(sc.pub, t)
		}
	}
}

func (sc *serverConn) finish() {
	close(sc.done)
	sc.stopPublish()
	if sc.sub != nil {
		sc.sub.Close()
	}
	sc.nc.Close()
	sc.playWG.Wait()
}

func (sc *serverConn) stopPublish() {
	if sc.pub == nil {
		return
	}
	// OnUnpublish runs before the subscriptions end, so a subscriber
	// that sees io.EOF knows the callback has returned.
	if f := sc.s.cfg.OnUnpublish; f != nil {
		f(sc.pubInfo)
	}
	sc.s.endPublish(sc.pub)
	sc.pub = nil
}

func (sc *serverConn) status(level, code, desc string) error {
	return sc.conn.writeCommand(csidData, serverStreamID, typeCommandAMF0, "onStatus", 0, nil, statusObject(level, code, desc))
}

func splitQuery(s string) (string, string) {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

func (sc *serverConn) info(name string) StreamInfo {
	n, q := splitQuery(name)
	return StreamInfo{App: sc.app, Name: n, Query: q, AppQuery: sc.appQuery, TcURL: sc.tcURL, RemoteAddr: sc.nc.RemoteAddr()}
}

func (sc *serverConn) command(cmd command) error {
	c := sc.conn
	switch cmd.name {
	case "connect":
		if o, ok := objectOf(cmd.obj); ok {
			app, _ := o.GetString("app")
			sc.app, sc.appQuery = splitQuery(strings.Trim(app, "/"))
			sc.tcURL, _ = o.GetString("tcUrl")
		}
		if err := c.writeControl(typeWindowAckSize, defaultWindow); err != nil {
			return err
		}
		if err := c.writePeerBandwidth(defaultWindow); err != nil {
			return err
		}
		if err := c.setChunkSize(sc.s.cfg.ChunkSize); err != nil {
			return err
		}
		// The Server relays any codec: it announces Enhanced RTMP v2
		// CanForward (4) for every FourCC.
		anyCodec := amf0.Object{{Key: "*", Value: 4.0}}
		return c.writeCommand(csidCommand, 0, typeCommandAMF0, "_result", cmd.txn,
			amf0.Object{{Key: "fmsVer", Value: "FMS/3,0,1,123"}, {Key: "capabilities", Value: 31.0},
				{Key: "videoFourCcInfoMap", Value: anyCodec}, {Key: "audioFourCcInfoMap", Value: anyCodec}},
			append(statusObject("status", codeConnectSuccess, "Connection succeeded."),
				amf0.ObjectEntry{Key: "objectEncoding", Value: 0.0}))
	case "createStream":
		return c.writeCommand(csidCommand, 0, typeCommandAMF0, "_result", cmd.txn, nil, float64(serverStreamID))
	case "publish":
		if sc.pub != nil || sc.sub != nil {
			return sc.status("error", codePublishBadName, "Already publishing or playing on this connection.")
		}
		name, _ := firstString(cmd.args)
		info := sc.info(name)
		var err error
		if info.Name == "" {
			err = errors.New("empty stream name")
		} else if f := sc.s.cfg.OnPublish; f != nil {
			err = f(info)
		}
		var st *stream
		if err == nil {
			st, err = sc.s.startPublish(info)
		}
		if err != nil {
			sc.s.log.Info("rtmp publish refused", "remote", info.RemoteAddr, "app", info.App, "err", err)
			_ = sc.status("error", codePublishBadName, "Publishing refused.")
			return fmt.Errorf("publish refused: %w", err)
		}
		sc.pub, sc.pubInfo = st, info
		_ = sc.nc.SetDeadline(time.Now().Add(sc.s.cfg.ReadTimeout))
		sc.s.log.Debug("rtmp publish", "remote", info.RemoteAddr, "app", info.App)
		return sc.status("status", codePublishStart, "Publishing started.")
	case "play":
		if sc.pub != nil || sc.sub != nil {
			return nil
		}
		name, _ := firstString(cmd.args)
		info := sc.info(name)
		if f := sc.s.cfg.OnPlay; f != nil {
			if err := f(info); err != nil {
				_ = sc.status("error", codePlayNotFound, "Stream not found.")
				return fmt.Errorf("play refused: %w", err)
			}
		}
		if err := c.writeUserControl(eventStreamBegin, serverStreamID); err != nil {
			return err
		}
		if err := sc.status("status", codePlayReset, "Playing and resetting."); err != nil {
			return err
		}
		if err := sc.status("status", codePlayStart, "Started playing."); err != nil {
			return err
		}
		if err := c.writeCommand(csidData, serverStreamID, typeDataAMF0, "|RtmpSampleAccess", true, true); err != nil {
			return err
		}
		_ = sc.nc.SetDeadline(time.Time{}) // players are quiet; writes carry their own deadline
		sc.sub = sc.s.Subscribe(info.App, info.Name, sc.s.cfg.PlayerQueue)
		sc.playWG.Add(1)
		go sc.playLoop(sc.sub)
		sc.s.log.Debug("rtmp play", "remote", info.RemoteAddr, "app", info.App)
		return nil
	case "FCUnpublish", "deleteStream", "closeStream":
		if sc.pub != nil {
			sc.stopPublish()
			_ = sc.status("status", codeUnpublishSuccess, "Stopped publishing.")
		}
		if sc.sub != nil && cmd.name != "FCUnpublish" {
			sc.sub.Close()
		}
		return nil
	}
	// releaseStream, FCPublish, getStreamLength, ...: no answer (Wowza
	// does not answer the first two either; clients must cope).
	return nil
}

func firstString(vals []any) (string, bool) {
	if len(vals) == 0 {
		return "", false
	}
	s, ok := vals[0].(string)
	return s, ok
}

// playLoop sends a subscription's tags to a player.
func (sc *serverConn) playLoop(sub *Subscription) {
	defer sc.playWG.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sc.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	var msg message
	for {
		t, err := sub.ReadTag(ctx)
		if err != nil {
			if err == io.EOF {
				_ = sc.conn.writeUserControl(eventStreamEOF, serverStreamID)
				_ = sc.status("status", codePlayUnpublish, "Stream was unpublished.")
				_ = sc.status("status", codePlayStop, "Stopped playing.")
			}
			return
		}
		msg = message{Type: t.Type, Timestamp: t.Timestamp, StreamID: serverStreamID, Payload: t.Data}
		switch t.Type {
		case flv.TagAudio:
			msg.ChunkStreamID = csidAudio
		case flv.TagVideo:
			msg.ChunkStreamID = csidVideo
		default:
			msg.ChunkStreamID, msg.Type = csidData, typeDataAMF0
		}
		if err := sc.conn.write(&msg); err != nil {
			sc.nc.Close()
			return
		}
	}
}
