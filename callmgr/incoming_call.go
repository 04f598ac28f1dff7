package callmgr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sipstream/sipstream/media"
)

// incomingSetup is what a call we answer keeps of its INVITE until the
// answer.
type incomingSetup struct {
	inv            incomingInvite
	decision       Decision
	caller, callee string
	offer          []byte // the caller's SDP offer; nil for a delayed offer
	// answer and specs are our answer to offer and what it negotiated
	// (set by launch before the run loop starts).
	answer []byte
	specs  []media.StreamSpec
	// release gives back the pending slot the INVITE took; setup calls it
	// once, when the INVITE is answered or over.
	release func()
}

// answerWait bounds the wait for the caller's ACK after our 200 OK (the sip
// package gives up after 64*T1 = 32 s) beyond the ringing: the call's ring
// timer.
const answerWait = 40 * time.Second

// answerOffer answers the caller's offer with the call's ports (launch,
// before the run loop starts).
func (c *Call) answerOffer() error {
	answer, specs, err := c.m.be.sdp.Answer(c.in.offer, c.offerCfg)
	if err == nil && c.p.SRTP == SRTPRequired && !secureSpecs(specs) {
		err = errors.New("SRTP required, the offer is plain RTP")
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNegotiation, err)
	}
	// Our later offers (hold) use what the caller accepted.
	c.offerCfg.SRTP = secureSpecs(specs)
	c.in.answer, c.in.specs = answer, specs
	return nil
}

// negotiated returns the streams of the answered call: for a call we
// placed, the answer to our offer; for one we answered, what our answer
// negotiated (or, for a delayed offer, the caller's answer in the ACK).
func (c *Call) negotiated(d dialog) ([]media.StreamSpec, error) {
	if c.in != nil && c.in.answer != nil {
		return c.in.specs, nil
	}
	return c.offer.Negotiate(d.AnswerSDP())
}

// setupIncoming rings (180, or 183 with early media), then answers the
// INVITE; it reports like setup: the dialog, or why the call did not come
// about (a 487 *SIPError when the caller cancelled).
func (c *Call) setupIncoming(ctx context.Context) {
	in := c.in
	defer in.release()
	d := in.decision
	report := func(r setupResult) { c.inbox.push(func() { c.onSetup(r) }) }
	log := c.m.cfg.Logger
	switch {
	case d.EarlyMedia && in.answer != nil:
		started := make(chan error, 1)
		c.inbox.push(func() { started <- c.startIncomingEarly() })
		select {
		case err := <-started:
			if err == nil {
				err = in.inv.Progress(183, "Session Progress", in.answer)
			}
			if err != nil {
				log.Info("early media", "callID", c.id, "err", err)
			}
		case <-ctx.Done():
		}
	case d.Ring > 0 || d.EarlyMedia:
		if err := in.inv.Progress(180, "Ringing", nil); err != nil {
			log.Info("180 Ringing", "callID", c.id, "err", err)
		}
	}
	if d.Ring > 0 {
		t := time.NewTimer(d.Ring)
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-in.inv.Done():
		}
		t.Stop()
	}
	cancelled := &SIPError{Code: 487, Reason: "Request Terminated", Err: ErrRemoteHangup}
	if ctx.Err() != nil {
		// Terminate, Close or the ring timer: end decided the answer
		// (written before ctx was cancelled).
		code, reason := c.final.code, c.final.reason
		if code < 400 || code > 699 {
			code, reason = 480, "Temporarily Unavailable"
		}
		if err := in.inv.Reject(code, reason); err != nil && in.inv.Cancelled() {
			c.m.countIncoming(IncomingCancelled)
		} else {
			c.m.countIncoming(IncomingRejected)
		}
		report(setupResult{err: ctx.Err()})
		return
	}
	if in.inv.Cancelled() {
		c.m.countIncoming(IncomingCancelled)
		report(setupResult{err: cancelled})
		return
	}
	sdp := in.answer
	if sdp == nil {
		sdp = c.offer.Marshal() // delayed offer: ours, the ACK answers it
	}
	dlg, err := in.inv.Answer(ctx, sdp, answerOptions{
		OnReinvite: c.onReinviteRequest,
		OnDTMF:     func(d rune) { c.inbox.push(func() { c.emitDTMF(d) }) },
	})
	switch {
	case err == nil:
		c.m.countIncoming(IncomingAnswered)
	case in.inv.Cancelled():
		c.m.countIncoming(IncomingCancelled)
		err = cancelled
	default:
		c.m.countIncoming(IncomingRejected)
	}
	report(setupResult{dlg: dlg, err: err})
}

// startIncomingEarly starts the media session of a call we answer before
// the answer: the caller hears Decision.EarlySound (or silence), the sinks
// wait for the answer; run loop only.
func (c *Call) startIncomingEarly() error {
	if c.ending {
		return ErrCallEnded
	}
	if err := c.sess.Start(c.in.specs); err != nil {
		return fmt.Errorf("callmgr: media start: %w", err)
	}
	c.earlyToCaller = true
	c.specs, c.prevSpecs = c.in.specs, c.in.specs
	if src := c.in.decision.EarlySound; src != nil {
		if err := c.sess.SetAudioSource(src); err != nil {
			c.m.cfg.Logger.Info("early sound", "callID", c.id, "err", err)
		}
	}
	c.setStatus(StatusRingMedia, 183, "Session Progress")
	return nil
}

// endEarlySound stops the early sound of a call we answered when it is
// answered (back to silence unless a sound was injected meanwhile); run
// loop only.
func (c *Call) endEarlySound() {
	if !c.earlyToCaller || c.in.decision.EarlySound == nil || c.sound != nil || c.live != nil {
		return
	}
	if err := c.sess.SetAudioSource(nil); err != nil {
		c.m.cfg.Logger.Info("early sound end", "callID", c.id, "err", err)
	}
}
