package sip

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
)

// Dialog is an established call (RFC 3261 §12). One goroutine owns its
// state; the methods are safe for concurrent use. It ends when either side
// sends BYE, a session timer or keepalive fails, or the UA closes: Done is
// then closed and Err says why.
type Dialog struct {
	ua  *UA
	log *slog.Logger

	// immutable after newDialog
	callID       string
	incoming     bool          // a call we answered (UAS)
	ackC         chan struct{} // UAS: closed when the ACK of our 2xx arrived
	inviteCSeq   uint32        // UAS: the CSeq of the INVITE we answered
	delayedOffer bool          // UAS: our 2xx carried the offer, the ACK the answer
	transport    string
	proxy        string
	creds        *credentials
	from         sipgox.FromHeader
	localContact sipgox.ContactHeader
	onReinvite   func([]byte) ([]byte, error)
	onDTMF       func(rune, time.Duration)
	onInfo       func(string, []byte)
	keepAlive    time.Duration
	glareDelay   func() time.Duration // wait after a 491 to our re-INVITE
	allow        []string             // methods of the 2xx's Allow, upper case
	supported    []string             // option tags of the 2xx's Supported, lower case

	cseq    atomic.Uint32
	ack     atomic.Pointer[sipgox.Request] // ACK for our INVITE's 2xx (resent on 2xx retransmissions)
	ackCSeq atomic.Uint32

	ops      chan func()
	in       chan inbound
	ctx      context.Context // cancelled when the loop ends
	cancel   context.CancelFunc
	done     chan struct{}
	loopDone chan struct{}
	bg       sync.WaitGroup
	err      error // valid after done is closed

	// owned by the loop goroutine
	up           bool
	finished     bool
	ending       bool // our BYE is under way
	to           sipgox.ToHeader
	remoteTag    string
	remoteTarget sipgox.Uri
	routeSet     []sipgox.Uri
	localSDP     []byte
	baseSDP      []byte // our INVITE offer
	sdpBump      int
	answerSDP    []byte
	remoteSDP    []byte
	peerAllow    string
	st           sessionTimer
	kaTimer      *time.Timer
	kaBusy       bool
	held         bool
	reinviting   bool                 // our re-INVITE is in flight
	referrals    map[uint32]*referral // implicit REFER subscriptions by the REFER's CSeq

	answerOnce []byte // copy of the 2xx SDP, readable without the loop
}

type inbound struct {
	req  *sipgox.Request
	tx   sipgox.ServerTransaction
	done chan struct{}
}

// sessionTimer is RFC 4028 state.
type sessionTimer struct {
	interval  time.Duration // 0: no session timer
	refresher bool          // we refresh
	useUpdate bool
	timer     *time.Timer
	busy      bool // a refresh is in flight
}

func newDialog(ua *UA, r *InviteRequest, p *invitePlan) *Dialog {
	d := &Dialog{
		ua:         ua,
		log:        ua.log.With("call_id", p.callID),
		callID:     p.callID,
		transport:  p.transport,
		proxy:      p.proxy,
		creds:      p.creds,
		from:       p.from,
		to:         p.to,
		onReinvite: r.OnReinvite,
		onDTMF:     r.OnDTMF,
		onInfo:     r.OnInfo,
		keepAlive:  r.KeepAliveInterval,
		glareDelay: glareDelay,
		localSDP:   append([]byte(nil), r.Offer...),
		baseSDP:    append([]byte(nil), r.Offer...),
	}
	d.localContact = sipgox.ContactHeader{Address: ua.contactURI(p.from.Address.User, p.transport)}
	d.start()
	return d
}

// start starts the dialog's goroutine; the fields the loop reads are set.
func (d *Dialog) start() {
	d.ops = make(chan func())
	d.in = make(chan inbound)
	d.done = make(chan struct{})
	d.loopDone = make(chan struct{})
	d.cseq.Store(uint32(time.Now().UnixNano()%10000) + 1)
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.ua.wg.Add(1)
	go d.run()
}

func (d *Dialog) nextCSeq() uint32 { return d.cseq.Add(1) }

// observeCSeq raises the counter past n (digest retries bump CSeq themselves).
func (d *Dialog) observeCSeq(n uint32) {
	for {
		c := d.cseq.Load()
		if c >= n || d.cseq.CompareAndSwap(c, n) {
			return
		}
	}
}

// Incoming reports whether this is a call we answered (UA.OnInvite)
// rather than one we placed.
func (d *Dialog) Incoming() bool { return d.incoming }

// CallID returns the dialog's SIP Call-ID.
func (d *Dialog) CallID() string { return d.callID }

// AnswerSDP returns the peer's SDP of the initial offer/answer exchange (a
// copy): for a call we placed, the answer of its 2xx; for a call we
// answered, the INVITE's offer, or the ACK's answer for a delayed offer
// (empty if the ACK had none).
func (d *Dialog) AnswerSDP() []byte { return append([]byte(nil), d.answerOnce...) }

// Done is closed when the dialog has ended.
func (d *Dialog) Done() <-chan struct{} { return d.done }

// Err says why the dialog ended: nil after our own BYE, ErrRemoteBye when
// the peer hung up, ErrSessionExpired, ErrKeepAliveFailed, ErrClosed, or
// the 481/408 *StatusError of a re-INVITE that showed the peer had lost the
// dialog (see Reinvite). It returns nil while the dialog is up.
func (d *Dialog) Err() error {
	select {
	case <-d.done:
		return d.err
	default:
		return nil
	}
}

func (d *Dialog) run() {
	defer d.ua.wg.Done()
	defer close(d.loopDone)
	for !d.finished {
		var stC, kaC <-chan time.Time
		if d.st.timer != nil {
			stC = d.st.timer.C
		}
		if d.kaTimer != nil {
			kaC = d.kaTimer.C
		}
		select {
		case f := <-d.ops:
			f()
		case in := <-d.in:
			d.handleIn(in)
			close(in.done)
		case <-stC:
			d.st.timer = nil
			d.sessionTimerFired()
		case <-kaC:
			d.kaTimer = nil
			d.sendKeepAlive()
		}
	}
	if d.st.timer != nil {
		d.st.timer.Stop()
	}
	if d.kaTimer != nil {
		d.kaTimer.Stop()
	}
	d.cancel()
	d.ua.removeDialog(d)
	d.bg.Wait()
}

// finish ends the dialog (loop goroutine only).
func (d *Dialog) finish(err error) {
	if d.finished {
		return
	}
	d.finished = true
	d.err = err
	close(d.done)
	d.endReferrals()
	if err != nil {
		d.log.Info("sip: dialog ended", "reason", err)
	} else {
		d.log.Info("sip: dialog ended")
	}
}

// call runs f on the loop goroutine and waits for it. It returns false
// when the loop has already ended (f did not run).
func (d *Dialog) call(f func()) bool {
	done := make(chan struct{})
	select {
	case d.ops <- func() { f(); close(done) }:
	case <-d.loopDone:
		return false
	}
	<-done
	return true
}

// post runs f on the loop from a background goroutine; dropped once the
// dialog has ended.
func (d *Dialog) post(f func()) {
	select {
	case d.ops <- f:
	case <-d.ctx.Done():
	}
}

func (d *Dialog) goBackground(f func(ctx context.Context)) {
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		f(d.ctx)
	}()
}

// terminate ends the dialog locally with err (no BYE).
func (d *Dialog) terminate(err error) {
	d.call(func() { d.finish(err) })
}

// established records the 2xx, sends the ACK and starts timers.
func (d *Dialog) established(inv *sipgox.Request, res *sipgox.Response) error {
	var err error
	ok := d.call(func() {
		d.up = true
		if to := res.To(); to != nil {
			t := *to
			t.Address = *to.Address.Clone()
			t.Params = to.Params.Clone()
			d.to = t
			d.remoteTag, _ = to.Params.Get("tag")
		}
		d.remoteTarget = inv.Recipient
		if c := res.Contact(); c != nil {
			d.remoteTarget = *c.Address.Clone()
		} else {
			err = errors.New("2xx without Contact")
		}
		d.routeSet = d.routeSet[:0]
		rr := res.GetHeaders("Record-Route")
		for i := len(rr) - 1; i >= 0; i-- {
			d.routeSet = append(d.routeSet, parseRouteValues(rr[i])...)
		}
		if isSDP(res) {
			d.answerSDP = append([]byte(nil), res.Body()...)
			d.remoteSDP = d.answerSDP
			d.answerOnce = d.answerSDP
		}
		d.readPeerCaps(res)
		ack := d.newRequest(sipgox.ACK, nil, "")
		ack.CSeq().SeqNo = inv.CSeq().SeqNo
		d.ack.Store(ack)
		d.ackCSeq.Store(inv.CSeq().SeqNo)
		if werr := d.writeAck(ack); werr != nil {
			err = werr
		}
		d.startSessionTimer(res, true)
		d.armKeepAlive()
	})
	if !ok {
		return ErrClosed
	}
	return err
}

// readPeerCaps records the peer's Allow and Supported from the message
// that set up the dialog (its 2xx, or the INVITE we answered).
func (d *Dialog) readPeerCaps(m headerSource) {
	if a := m.GetHeader("Allow"); a != nil {
		d.peerAllow = strings.ToUpper(a.Value())
	}
	d.allow = headerTokens(m, "Allow", "", strings.ToUpper)
	d.supported = headerTokens(m, "Supported", "k", strings.ToLower)
}

func (d *Dialog) writeAck(ack *sipgox.Request) error {
	cl, err := d.ua.client(d.transport)
	if err != nil {
		return err
	}
	a := ack.Clone()
	if d.transport == "udp" {
		a.Laddr = ack.Laddr
	}
	return cl.WriteRequest(a, noBuild)
}

// resendAck answers a retransmitted 2xx of our INVITE.
func (d *Dialog) resendAck(cseq uint32) {
	if ack := d.ack.Load(); ack != nil && d.ackCSeq.Load() == cseq {
		if err := d.writeAck(ack); err != nil {
			d.log.Debug("sip: ACK resend failed", "err", err)
		}
	}
}
