package callmgr

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/sound"
	"github.com/sipstream/sipstream/sip"
)

// Call is one call placed by a Manager. Its methods are safe for concurrent
// use. One goroutine (the call's run loop) owns its dialog, media session and
// sinks; the methods send it requests and wait for the reply, the call's end,
// or ctx, whichever comes first.
type Call struct {
	m  *Manager
	id string
	p  CallParams // normalized; holds the password, never printed

	inbox   *mailbox[func()] // work for the run loop
	events  *mailbox[Event]  // work for the event dispatcher
	stopped chan struct{}    // run loop exited (teardown complete)
	done    chan struct{}    // and every event delivered
	estab   chan struct{}    // closed when the call is answered
	life    context.Context  // cancelled when teardown starts
	lifeEnd context.CancelFunc
	ops     sync.WaitGroup // blocking operations started on the call's objects

	dtmfMu sync.Mutex // one DTMF sequence at a time

	mu   sync.Mutex // guards info and err (written by the run loop only)
	info CallInfo
	err  error

	// Owned by the run loop.
	fan      fanout
	sess     mediaSession
	offer    sdpOffer
	offerCfg offerConfig
	// plainOffer is the plain RTP offer an SRTPOptional call falls back to
	// (set before run starts, read by setup); nil in the other modes.
	plainOffer   sdpOffer
	specs        []media.StreamSpec // negotiated
	dlg          dialog
	dlgDone      <-chan struct{}
	dlgEnded     bool
	reg          registration
	sinks        map[string]*sinkEntry
	ending       bool
	final        finalState
	kfInFlight   bool
	setupPending bool          // setup has not reported yet
	setupDone    chan struct{} // closed when setup has reported
	cancelSetup  context.CancelFunc

	// Call control and injected audio (run loop only).
	filler        holdFiller
	early         bool // media session started by early media (18x with SDP)
	held          bool // on hold by Hold
	peerHeld      bool // on hold by the peer's re-INVITE
	controlBusy   bool // a hold, unhold or transfer is in progress
	prevSpecs     []media.StreamSpec
	transferSeq   uint64
	transferTimer *time.Timer
	sound         sound.Source // injected sound (wrapped in endWatch)
	soundName     string
	soundSeq      uint64
	live          *sound.Live // injected stream
	liveFrom      string      // its stream name
	liveID        string      // this injection's ID (also its tap sink's)
	liveStop      func()      // ends its feed; not on the run loop

	// in is the INVITE a call we answer came with (nil for a call we
	// placed); set before run starts.
	in *incomingSetup
	// earlyToCaller: an answered call's session started before the answer
	// for early media toward the caller (the sinks start at the answer).
	earlyToCaller bool

	// clog is the call's event log (calllog.go); op holds the counters
	// the operator's statistics need (opstats.go).
	clog callLog
	op   opCounters
}

type finalState struct {
	status Status
	code   int
	reason string
	err    error
}

func newCall(m *Manager, p CallParams, in *incomingSetup) *Call {
	life, lifeEnd := context.WithCancel(context.Background())
	c := &Call{
		m:       m,
		id:      p.CallID,
		p:       p,
		inbox:   newMailbox[func()](),
		events:  newMailbox[Event](),
		stopped: make(chan struct{}),
		done:    make(chan struct{}),
		estab:   make(chan struct{}),
		life:    life,
		lifeEnd: lifeEnd,
		sinks:   make(map[string]*sinkEntry),
		in:      in,
	}
	caller := p.SIPLogin
	if caller == "" {
		caller = m.cfg.DefaultUser
	}
	c.info = CallInfo{
		CallID:              p.CallID,
		Callee:              p.Callee,
		Caller:              caller,
		ToStream:            p.ToStream,
		RTMPURL:             p.RTMPURL,
		RTMPStream:          p.RTMPStream,
		HasAudio:            p.HasAudio,
		HasVideo:            p.HasVideo,
		VisibleName:         p.VisibleName,
		AppKey:              p.AppKey,
		SIPLogin:            p.SIPLogin,
		SIPAuthName:         p.SIPAuthName,
		SIPDomain:           p.SIPDomain,
		SIPOutboundProxy:    p.SIPOutboundProxy,
		SIPPort:             p.SIPPort,
		SIPTransport:        p.SIPTransport,
		SIPRegisterRequired: p.SIPRegisterRequired,
		Headers:             append([]sip.Header(nil), p.Headers...),
		Status:              StatusTrying,
		Record:              p.Record,
		SRTP:                p.SRTP,
		Started:             time.Now(),
	}
	if p.RTMPURL != "" {
		c.info.RTMPStatus = SinkWait
	}
	if in != nil {
		c.info.Incoming = true
		c.info.Caller, c.info.Callee = in.caller, in.callee
		c.info.Status = StatusRing
		if in.decision.Ring > 0 {
			c.info.SIPStatus, c.info.SIPReason = 180, "Ringing"
		}
	}
	return c
}

// primarySinkIDs are the IDs of the sinks CallParams asks for.
func (c *Call) primarySinkIDs() []string {
	var ids []string
	if c.p.RTMPURL != "" {
		ids = append(ids, c.rtmpSinkID())
	}
	if c.p.Record {
		ids = append(ids, c.recordSinkID())
	}
	return ids
}

func (c *Call) rtmpSinkID() string   { return c.id + "/rtmp" }
func (c *Call) recordSinkID() string { return c.id + "/record" }

// ID returns the call ID.
func (c *Call) ID() string { return c.id }

// Info returns a snapshot of the call.
func (c *Call) Info() CallInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.snapshotLocked()
}

func (c *Call) snapshotLocked() CallInfo {
	ci := c.info
	ci.Headers = append([]sip.Header(nil), c.info.Headers...)
	ci.Sinks = append([]SinkInfo(nil), c.info.Sinks...)
	if c.info.Transfer != nil {
		t := *c.info.Transfer
		ci.Transfer = &t
	}
	return ci
}

// Done is closed when the call has ended and been cleaned up (BYE or CANCEL
// sent, sinks flushed, ports returned) and its last event delivered.
func (c *Call) Done() <-chan struct{} { return c.done }

// Err says why the call ended; nil while it is live and when it was ended by
// Terminate or Close after it was answered. Otherwise: ErrRemoteHangup,
// ErrMediaTimeout, ErrRTMPFailed, a *SIPError (rejected, ErrNoAnswer
// inside for the ring timeout; cancelled before the answer gives a 487
// SIPError wrapping ErrCallEnded), or the error that broke the call.
func (c *Call) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// WaitEstablished waits until the call is answered (nil), has ended (its
// Err, or ErrCallEnded when that is nil) or ctx is done (ctx.Err(); the call
// goes on).
func (c *Call) WaitEstablished(ctx context.Context) error {
	select {
	case <-c.estab:
		return nil
	case <-c.stopped:
		select {
		case <-c.estab:
			return nil
		default:
		}
		if err := c.Err(); err != nil {
			return err
		}
		return ErrCallEnded
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Terminate ends the call: CANCEL before the answer, BYE after. It returns
// when the call has ended or ctx is done; the teardown goes on regardless,
// on its own context bounded by Config.TeardownTimeout. Terminating a call
// that has ended already returns nil.
func (c *Call) Terminate(ctx context.Context) error {
	c.requestEnd(endLocal)
	select {
	case <-c.stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type endKind uint8

const (
	endLocal endKind = iota + 1
)

func (c *Call) requestEnd(kind endKind) {
	c.inbox.push(func() {
		if kind == endLocal {
			c.endLocally()
		}
	})
}

// do runs f on the run loop and returns its result. If the call ends before
// f ran, ErrCallEnded; if ctx ends first, ctx.Err() and f never runs (once
// the run loop has taken f, do waits for it: f never blocks).
func (c *Call) do(ctx context.Context, f func() error) error {
	var state atomic.Int32 // 0 queued, 1 taken by the run loop, 2 abandoned
	reply := make(chan error, 1)
	if !c.inbox.push(func() {
		if state.CompareAndSwap(0, 1) {
			reply <- f()
		}
	}) {
		return ErrCallEnded
	}
	select {
	case err := <-reply:
		return err
	case <-c.stopped:
		select {
		case err := <-reply:
			return err
		default:
			return ErrCallEnded
		}
	case <-ctx.Done():
		if state.CompareAndSwap(0, 2) {
			return ctx.Err()
		}
		return <-reply
	}
}

// opContext is a context for a blocking operation a caller runs on the
// call's objects: done when ctx is, or when the call starts ending.
func (c *Call) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	octx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.life, cancel)
	return octx, func() {
		stop()
		cancel()
	}
}
