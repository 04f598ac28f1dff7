package rtmp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/handshake"
)

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
