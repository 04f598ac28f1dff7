package callmgr

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/media"
)

// Manager places SIP calls and republishes their media to sinks. It is safe
// for concurrent use. Create it with New, end it with Close.
type Manager struct {
	cfg Config
	be  *backend

	mu      sync.Mutex
	calls   map[string]*Call // by call ID
	streams map[string]*Call // by streamKey(RTMPURL, RTMPStream)
	sources []StreamSource   // AddStreamSource
	sinkIDs map[string]*Call // by sink ID
	closing bool
	adm     *admission

	// Incoming calls and accounts.
	pending      atomic.Int64 // INVITEs deciding or ringing
	inCounts     [len(incomingResults)]atomic.Uint64
	accMu        sync.Mutex
	accounts     map[string]*accountEntry // by Name
	accClosed    bool
	bindSince    map[string]time.Time // registrar bindings first seen
	accWG        sync.WaitGroup       // keepRegistered goroutines
	accountRetry time.Duration        // first backoff of a failed registration
	regEvents    *mailbox[Event]
	regDone      chan struct{} // dispatchRegistrations returned

	life    context.Context // ends when Close starts
	lifeEnd context.CancelFunc

	wg        sync.WaitGroup // run loops and event dispatchers of all calls, INVITE handlers
	waitOnce  sync.Once
	allDone   chan struct{}
	closeOnce sync.Once
	closeErr  error

	// logs are the calls' log watchers and the ended calls' logs.
	logs logBook
}

// New validates cfg and starts a Manager: it opens the SIP user agent on
// cfg.ListenAddr (UDP and TCP) and prepares the RTP port range.
func New(cfg Config) (*Manager, error) {
	c, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	be := c.backend
	if be == nil {
		be, err = newRealBackend(&c)
		if err != nil {
			return nil, err
		}
	}
	m := &Manager{
		cfg:          c,
		adm:          newAdmission(c.Admission, c.admissionClock, c.admissionCPU),
		be:           be,
		calls:        make(map[string]*Call),
		streams:      make(map[string]*Call),
		sinkIDs:      make(map[string]*Call),
		allDone:      make(chan struct{}),
		accounts:     make(map[string]*accountEntry),
		bindSince:    make(map[string]time.Time),
		accountRetry: c.accountRetry,
		regEvents:    newMailbox[Event](),
		regDone:      make(chan struct{}),
	}
	m.life, m.lifeEnd = context.WithCancel(context.Background())
	if m.accountRetry <= 0 {
		m.accountRetry = accountRetryMin
	}
	go m.dispatchRegistrations()
	err = m.serveInbound()
	for _, a := range c.Accounts {
		if err != nil {
			break
		}
		if err = m.AddAccount(context.Background(), a); err != nil {
			err = fmt.Errorf("callmgr: Config.Accounts: %w", err)
		}
	}
	if err != nil {
		_ = m.Close(context.Background())
		return nil, err
	}
	return m, nil
}

// StartCall validates p and places the call. It returns once the call is
// accepted (media ports allocated, the call visible to Find with status
// TRYING); REGISTER, INVITE and everything after happen on the call's own
// goroutine and are reported through Config.OnEvent and Call.Info.
//
// ctx bounds only this admission: the call outlives it. To give up on a call
// (CANCEL before the answer, BYE after), use Terminate; to wait for the
// answer, Call.WaitEstablished.
//
// Errors: *ParamError (errors.Is ErrInvalidParams), ErrDuplicateCallID,
// ErrDuplicateStream, ErrTooManyCalls (Config.MaxCalls reached, or no free
// RTP port pair), *OverloadError (errors.Is ErrOverloaded: admission
// control found no headroom, see AdmissionConfig), ErrClosed, or another
// media error.
func (m *Manager) StartCall(ctx context.Context, p CallParams) (*Call, error) {
	q, err := p.validate(&m.cfg)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return m.launch(q, p.ToStream == "", nil)
}

// launch builds and starts a call from validated params: the placed calls
// of StartCall and (in non-nil) the answered ones of the INVITE handler.
func (m *Manager) launch(q CallParams, toStreamDefaulted bool, in *incomingSetup) (*Call, error) {
	skey := streamKey(q.RTMPURL, q.RTMPStream)
	if err := m.admissible(q.CallID, skey, nil); err != nil {
		return nil, err
	}

	c := newCall(m, q, in)
	c.info.ToStreamDefaulted = toStreamDefaulted // nothing else sees c yet
	c.fan = m.be.sinks.NewFanout(c.onDetach, func() { c.askKeyframe("a sink waits for a keyframe") })
	c.filler = newHoldFiller(c.writeFan, func() { c.askKeyframe("the picture resumes after hold") })
	sess, err := m.be.media.New(mediaConfig{
		CallID:             q.CallID,
		IP:                 m.cfg.MediaIP,
		Audio:              true,
		Video:              true,
		OnFrame:            c.filler.WriteFrame,
		OnDTMF:             c.onMediaDTMF,
		OnTimeout:          c.onMediaTimeout,
		OnKeyframeFallback: c.onKeyframeFallback,
	})
	if err != nil {
		c.filler.Close()
		c.fan.Close(context.Background()) // no sink yet
		return nil, fmt.Errorf("callmgr: media session: %w", err)
	}
	c.sess = sess
	c.offerCfg = offerConfig{
		Addr:        m.cfg.PublicIP,
		AudioPort:   sess.LocalPort(media.KindAudio),
		VideoPort:   sess.LocalPort(media.KindVideo),
		AudioDir:    direction(q.HasAudio),
		VideoDir:    direction(q.HasVideo),
		AudioCodecs: m.cfg.AudioCodecs,
		VideoCodecs: m.cfg.VideoCodecs,
		SessionID:   randUint63(),
		Version:     1,
		SRTP:        q.SRTP != SRTPOff,
	}
	if in != nil && in.offer == nil {
		// A delayed offer: our offer in the 200 cannot fall back to plain
		// RTP if the caller refuses SRTP, so it is SRTP only when required.
		c.offerCfg.SRTP = q.SRTP == SRTPRequired
	}
	if in != nil && in.offer != nil {
		err = c.answerOffer()
	} else {
		c.offer, err = m.be.sdp.NewOffer(c.offerCfg)
	}
	if err == nil && q.SRTP == SRTPOptional && in == nil {
		plain := c.offerCfg
		plain.SRTP = false
		c.plainOffer, err = m.be.sdp.NewOffer(plain)
	}
	if err == nil {
		err = m.admissible(q.CallID, skey, c) // registers c when admissible
	}
	if err != nil {
		_ = sess.Close()
		c.filler.Close()
		c.fan.Close(context.Background()) // no sink yet
		return nil, err
	}
	m.cfg.Logger.Info("call starting", "callID", q.CallID, "incoming", in != nil, "params", q)
	c.emitStatus()
	if in != nil {
		c.logf(LogSIP, LogInfo, "← INVITE from %s", c.info.Caller)
		if c.info.SIPStatus != 0 { // ringing: sent with the answer's decision
			c.logResponse(c.info.SIPStatus, c.info.SIPReason)
		}
	} else {
		c.logf(LogSIP, LogInfo, "→ INVITE %s", q.Callee)
	}
	go c.run()
	go c.dispatch()
	return c, nil
}

func direction(sendrecv bool) media.Direction {
	if sendrecv {
		return media.SendRecv
	}
	return media.RecvOnly
}

// admissible checks the conflicts and limits; with c non-nil it also
// registers c (atomically with the checks).
func (m *Manager) admissible(callID, skey string, c *Call) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.closing:
		return ErrClosed
	case m.calls[callID] != nil:
		return ErrDuplicateCallID
	case skey != "" && m.streams[skey] != nil:
		return ErrDuplicateStream
	case m.cfg.MaxCalls > 0 && len(m.calls) >= m.cfg.MaxCalls:
		return ErrTooManyCalls
	}
	if c == nil {
		return m.adm.check(false)
	}
	for _, id := range c.primarySinkIDs() {
		if m.sinkIDs[id] != nil {
			return ErrDuplicateSinkID
		}
	}
	if err := m.adm.check(true); err != nil {
		return err
	}
	m.calls[callID] = c
	m.startSampler()
	if skey != "" {
		m.streams[skey] = c
	}
	for _, id := range c.primarySinkIDs() {
		m.sinkIDs[id] = c
	}
	m.wg.Add(2)
	return nil
}

// release forgets c; called by c's run loop when the call is over.
func (m *Manager) release(c *Call) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.calls[c.id] == c {
		delete(m.calls, c.id)
		m.logs.remember(c.id, &c.clog)
	}
	if k := streamKey(c.p.RTMPURL, c.p.RTMPStream); k != "" && m.streams[k] == c {
		delete(m.streams, k)
	}
	for id, owner := range m.sinkIDs {
		if owner == c {
			delete(m.sinkIDs, id)
		}
	}
}

func (m *Manager) reserveSinkID(id string, c *Call) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sinkIDs[id] != nil {
		return ErrDuplicateSinkID
	}
	if m.calls[c.id] != c {
		return ErrCallEnded
	}
	m.sinkIDs[id] = c
	return nil
}

func (m *Manager) releaseSinkID(id string, c *Call) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sinkIDs[id] == c {
		delete(m.sinkIDs, id)
	}
}

// ListenPort returns the local SIP port for transport "udp" or "tcp" (useful
// with Config.ListenAddr port 0), or 0 when not listening on it.
func (m *Manager) ListenPort(transport string) int {
	if m.be.listenPort == nil {
		return 0
	}
	return m.be.listenPort(transport)
}

// Call returns the live call with that ID.
func (m *Manager) Call(callID string) (*Call, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.calls[callID]
	return c, ok
}

func (m *Manager) call(callID string) (*Call, error) {
	if c, ok := m.Call(callID); ok {
		return c, nil
	}
	return nil, ErrCallNotFound
}

func (m *Manager) liveCalls() []*Call {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs := make([]*Call, 0, len(m.calls))
	for _, c := range m.calls {
		cs = append(cs, c)
	}
	return cs
}

// Terminate ends the call: CANCEL before the answer, BYE after. It returns
// when the call has ended (BYE sent, sinks flushed, ports returned) or ctx is
// done; the teardown goes on even if ctx is cancelled. ErrCallNotFound when
// no live call has that ID.
func (m *Manager) Terminate(ctx context.Context, callID string) error {
	c, err := m.call(callID)
	if err != nil {
		return err
	}
	return c.Terminate(ctx)
}

// SendDTMF sends digits (0-9, *, #, A-D) on an established call, by RFC 4733
// events or SIP INFO. It returns when they have been sent.
func (m *Manager) SendDTMF(ctx context.Context, callID, digits string, t DTMFType) error {
	c, err := m.call(callID)
	if err != nil {
		return err
	}
	return c.SendDTMF(ctx, digits, t)
}

// AddSink adds a sink to a live call (the REST API's /push/startup).
func (m *Manager) AddSink(ctx context.Context, callID string, spec SinkSpec) (SinkInfo, error) {
	c, err := m.call(callID)
	if err != nil {
		return SinkInfo{}, err
	}
	return c.AddSink(ctx, spec)
}

func (m *Manager) sinkOwner(sinkID string) (*Call, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.sinkIDs[sinkID]; c != nil {
		return c, nil
	}
	return nil, ErrSinkNotFound
}

// RemoveSink removes a sink by ID from whichever call has it (the REST API's
// /push/terminate). The sink is closed (flushed) in the background.
// A call's own RTMP leg and recording can be removed too.
func (m *Manager) RemoveSink(ctx context.Context, sinkID string) error {
	c, err := m.sinkOwner(sinkID)
	if err != nil {
		return err
	}
	return c.RemoveSink(ctx, sinkID)
}

// MuteSink mutes (or unmutes) the audio a sink receives: G.711 is replaced
// by silence of the same length, other audio codecs are withheld while
// muted (the RTMP sink fills the gap with silent AAC). Video is unaffected.
func (m *Manager) MuteSink(ctx context.Context, sinkID string, muted bool) error {
	c, err := m.sinkOwner(sinkID)
	if err != nil {
		return err
	}
	return c.MuteSink(ctx, sinkID, muted)
}

// Find returns snapshots of the live calls that match f, oldest first.
func (m *Manager) Find(f Filter) []CallInfo {
	var out []CallInfo
	for _, c := range m.liveCalls() {
		ci := c.Info()
		if f.match(&ci) {
			out = append(out, ci)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Started.Equal(out[j].Started) {
			return out[i].Started.Before(out[j].Started)
		}
		return out[i].CallID < out[j].CallID
	})
	return out
}

// FindAll returns snapshots of every live call, oldest first.
func (m *Manager) FindAll() []CallInfo { return m.Find(Filter{}) }

// FindSinks returns the sinks of live calls that match f, ordered by call
// then sink ID.
func (m *Manager) FindSinks(f SinkFilter) []SinkInfo {
	var out []SinkInfo
	for _, ci := range m.FindAll() {
		for _, si := range ci.Sinks {
			if f.match(&si) {
				out = append(out, si)
			}
		}
	}
	return out
}

// Close ends every call (CANCEL or BYE sent, recordings flushed, ports
// returned), then closes the SIP user agent. New calls are refused with
// ErrClosed from the moment Close is called. If ctx ends first Close
// returns ctx.Err() and the calls go on ending in the background; calling
// Close again waits for them. Close is idempotent.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	m.lifeEnd() // decisions in progress end (their INVITEs get 480)
	for _, c := range m.liveCalls() {
		c.requestEnd(endLocal)
	}
	m.waitOnce.Do(func() {
		go func() {
			m.wg.Wait()
			close(m.allDone)
		}()
	})
	select {
	case <-m.allDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	m.stopSampler()
	if err := m.stopAccounts(ctx); err != nil {
		return err
	}
	m.regEvents.close()
	select {
	case <-m.regDone:
	case <-ctx.Done():
		return ctx.Err()
	}
	m.closeOnce.Do(func() {
		if m.be.close != nil {
			m.closeErr = m.be.close()
		}
	})
	return m.closeErr
}

// errIsCtx reports whether err is a context error.
func errIsCtx(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
