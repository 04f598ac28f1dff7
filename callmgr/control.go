package callmgr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip"
)

// Call control on an established call: hold and unhold by re-INVITE,
// transfer by REFER. The network exchanges run on the caller's goroutine
// (bounded by its ctx and by the call's life); the run loop only prepares
// them and applies their outcome, so it never blocks.

// ErrBusy: another hold, unhold or transfer of the call is in progress.
var ErrBusy = errors.New("callmgr: another call-control request is in progress")

// ErrTransferNotSupported: the peer's Allow header does not list REFER.
var ErrTransferNotSupported = errors.New("callmgr: the peer does not support this transfer")

// holdDir is the direction we offer while holding the peer (RFC 3264 §8.4):
// what we sent we still send (silence, or an injected sound: music on hold),
// what we received we no longer ask for.
func holdDir(d media.Direction) media.Direction {
	if d.Sends() {
		return media.SendOnly
	}
	return media.Inactive
}

// receivesAny reports whether a negotiated stream carries media from the
// peer to us.
func receivesAny(specs []media.StreamSpec) bool {
	for _, s := range specs {
		if s.Direction.Receives() && !(s.Remote.IsValid() && s.Remote.Addr().IsUnspecified()) {
			return true
		}
	}
	return false
}

// Hold puts the peer on hold: a re-INVITE offering sendonly (inactive for a
// stream the call only receives). The call's status becomes HOLD and its
// published stream shows the last picture, still, with silence, until
// Unhold (sinks keep publishing: platforms drop a stream whose media
// stops). Sounds injected with InjectSound keep playing to the peer (music
// on hold). Holding a call that is held already returns nil.
func (c *Call) Hold(ctx context.Context) error { return c.setHold(ctx, true) }

// Unhold takes the peer off hold (a re-INVITE offering sendrecv again) and
// asks it for a keyframe; the stream goes on on the same timeline.
func (c *Call) Unhold(ctx context.Context) error { return c.setHold(ctx, false) }

func (c *Call) setHold(ctx context.Context, on bool) error {
	var (
		d   dialog
		cfg offerConfig
	)
	err := c.do(ctx, func() error {
		if err := c.beginControl(); err != nil {
			return err
		}
		if c.held == on {
			c.controlBusy = false
			return errNothingToDo
		}
		d, cfg = c.dlg, c.offerCfg
		cfg.AudioDir, cfg.VideoDir = direction(c.p.HasAudio), direction(c.p.HasVideo)
		if on {
			cfg.AudioDir, cfg.VideoDir = holdDir(cfg.AudioDir), holdDir(cfg.VideoDir)
		}
		cfg.Version++
		return nil
	})
	if errors.Is(err, errNothingToDo) {
		return nil
	}
	if err != nil {
		return err
	}
	offer, err := c.m.be.sdp.NewOffer(cfg)
	var answer []byte
	c.logf(LogSIP, LogInfo, "→ re-INVITE (%s: audio %s, video %s)", holdWord(on), cfg.AudioDir, cfg.VideoDir)
	if err == nil {
		octx, cancel := c.opContext(ctx)
		answer, err = d.Reinvite(octx, offer.Marshal())
		cancel()
	}
	// Apply the outcome even when ctx ended meanwhile: the peer has it.
	return c.do(context.Background(), func() error {
		c.controlBusy = false
		if err != nil {
			c.logf(LogSIP, LogWarn, "re-INVITE (%s) failed: %s", holdWord(on), setupReason(sipErr(err)))
			c.m.cfg.Logger.Info("re-INVITE failed", "callID", c.id, "hold", on, "err", err)
			return fmt.Errorf("callmgr: re-INVITE: %w", sipErr(err))
		}
		if c.ending {
			return ErrCallEnded
		}
		specs, nerr := offer.Negotiate(answer)
		if nerr != nil {
			return fmt.Errorf("%w: re-INVITE answer: %w", ErrNegotiation, nerr)
		}
		if uerr := c.sess.Update(specs); uerr != nil {
			return fmt.Errorf("callmgr: media update: %w", uerr)
		}
		c.logf(LogSIP, LogInfo, "← 200 OK (re-INVITE, %s)", holdWord(on))
		c.offer, c.offerCfg, c.specs, c.held = offer, cfg, specs, on
		c.afterRenegotiation()
		return nil
	})
}

// beginControl starts a hold, unhold or transfer: one at a time, on an
// answered call that is not ending; run loop only.
func (c *Call) beginControl() error {
	switch {
	case c.ending:
		return ErrCallEnded
	case c.dlg == nil:
		return ErrNotEstablished
	case c.controlBusy:
		return ErrBusy
	}
	c.controlBusy = true
	return nil
}

// errNothingToDo ends a request that finds the call in the state asked for.
var errNothingToDo = errors.New("nothing to do")

// afterRenegotiation updates the status and the still-picture filler after
// an offer/answer exchange (ours or the peer's); run loop only.
func (c *Call) afterRenegotiation() {
	st := StatusEstablished
	if c.held || c.peerHeld {
		st = StatusHold
	}
	// Fill while on hold either way, or while nothing can arrive. A peer
	// that holds us with a=sendonly may send music on hold: the stream
	// carries silence and the still picture instead (media/filler drops
	// real frames while it holds), as it does when we hold.
	c.filler.Hold(c.held || c.peerHeld || !receivesAny(c.specs))
	cur := c.Info()
	c.mu.Lock()
	c.info.Held = c.held
	c.mu.Unlock()
	if cur.Status == st && cur.Held != c.held {
		c.emitStatus() // held by the peer, then by us too (or the reverse)
	}
	c.setStatus(st, cur.SIPStatus, cur.SIPReason)
	if receivesAny(c.specs) && !receivesAny(c.prevSpecs) {
		c.sess.RequestKeyframe()
	}
	c.prevSpecs = c.specs
}

// TransferInfo is the progress of a call's transfer (Call.Transfer).
type TransferInfo struct {
	// Target is where the peer was asked to go (the REFER's Refer-To,
	// without the Replaces parameter).
	Target string
	// Attended is true when the transfer replaces another call (Replaces).
	Attended bool
	// ReplacesCallID is the call the peer's new call replaces (attended).
	ReplacesCallID string
	// Code and Reason are the last progress the peer reported (the status
	// line of a NOTIFY's message/sipfrag body, or the REFER's rejection);
	// 0 before any.
	Code   int
	Reason string
	// Done is true once the outcome is known: Code ≥ 200 (success when
	// 2xx), or the peer stopped reporting.
	Done bool
	// Started is when the REFER was sent.
	Started time.Time
}

// Succeeded reports whether the transfer completed: the transfer target
// answered the peer's new call.
func (t TransferInfo) Succeeded() bool { return t.Done && t.Code >= 200 && t.Code < 300 }

// transferWait is how long a transfer waits for the peer's final NOTIFY
// after the REFER was accepted (RFC 3515 implicit subscription; phones ring
// the target for up to a few tens of seconds).
const transferWait = 64 * time.Second

// Transfer asks the peer to call target instead (a blind transfer: REFER
// with Refer-To target, RFC 3515). target is a SIP URI, or a user or number
// taken at the call's SIP domain. With replacesCallID set (another live,
// established call of the Manager), the transfer is attended: the peer
// calls that call's callee and replaces that call (Refer-To with Replaces,
// RFC 3891), joining the two remote parties.
//
// Transfer returns once the peer accepted the REFER (202); the progress
// (the NOTIFYs' sipfrag status lines) arrives as EventTransfer events and in
// Info().Transfer. When the peer reports success the call ends (BYE) with
// StatusFinish; a failed transfer leaves the call as it was.
func (c *Call) Transfer(ctx context.Context, target, replacesCallID string) error {
	if replacesCallID != "" {
		if replacesCallID == c.id {
			return paramErr("replacesCallId", "the call cannot replace itself")
		}
		other, err := c.m.call(replacesCallID)
		if err != nil {
			return err
		}
		var od dialog
		err = other.do(ctx, func() error {
			if other.dlg == nil || other.ending {
				return ErrNotEstablished
			}
			od = other.dlg
			return nil
		})
		if err != nil {
			return fmt.Errorf("callmgr: the call to replace: %w", err)
		}
		return c.transfer(ctx, target, replacesCallID, od)
	}
	if target == "" {
		return paramErr("target", "missing")
	}
	return c.transfer(ctx, target, "", nil)
}

func (c *Call) transfer(ctx context.Context, target, replaces string, replacesDlg dialog) error {
	var (
		d   dialog
		seq uint64
	)
	err := c.do(ctx, func() error {
		if err := c.beginControl(); err != nil {
			return err
		}
		if !c.dlg.PeerAllows("REFER") {
			c.controlBusy = false
			return fmt.Errorf("%w: its Allow header lists no REFER", ErrTransferNotSupported)
		}
		c.transferSeq++
		seq = c.transferSeq
		c.mu.Lock()
		shown := target
		if shown == "" {
			shown = "the peer of call " + replaces
		}
		c.info.Transfer = &TransferInfo{Target: shown, Attended: replacesDlg != nil, ReplacesCallID: replaces, Started: time.Now()}
		c.mu.Unlock()
		d = c.dlg
		return nil
	})
	if err != nil {
		return err
	}
	c.logf(LogSIP, LogInfo, "→ REFER %s", c.Info().Transfer.Target)
	progress := func(code int, reason string) {
		c.inbox.push(func() { c.onTransferProgress(seq, code, reason) })
	}
	octx, cancel := c.opContext(ctx)
	err = d.Refer(octx, target, replacesDlg, progress)
	cancel()
	var pe *sip.ParamError
	if errors.As(err, &pe) {
		err = paramErr("target", "%s", pe.Reason)
	}
	return c.do(context.Background(), func() error {
		if errors.Is(err, ErrInvalidParams) {
			c.controlBusy = false
			c.mu.Lock()
			c.info.Transfer = nil
			c.mu.Unlock()
			return err
		}
		if err != nil {
			c.controlBusy = false
			code, reason := 0, err.Error()
			var se *SIPError
			if errors.As(sipErr(err), &se) {
				code, reason = se.Code, se.Reason
			}
			c.onTransferProgress(seq, max(code, 500), reason)
			return fmt.Errorf("callmgr: REFER: %w", sipErr(err))
		}
		// Accepted: the outcome comes by NOTIFY, or not at all.
		c.transferTimer = time.AfterFunc(transferWait, func() {
			c.inbox.push(func() { c.onTransferProgress(seq, 0, "no final NOTIFY from the peer") })
		})
		return nil
	})
}

// onTransferProgress records one NOTIFY (code ≥ 100) or the end of the
// transfer (code 0: the peer stopped reporting); run loop only.
func (c *Call) onTransferProgress(seq uint64, code int, reason string) {
	if seq != c.transferSeq || c.ending {
		return
	}
	c.mu.Lock()
	t := c.info.Transfer
	if t == nil || t.Done {
		c.mu.Unlock()
		return
	}
	nt := *t
	if code != 0 {
		nt.Code, nt.Reason = code, reason
		c.logf(LogSIP, sipLevel(code), "← NOTIFY (transfer: %d %s)", code, reason)
	} else {
		c.logf(LogSIP, LogWarn, "transfer: %s", reason)
	}
	nt.Done = code == 0 || code >= 200
	c.info.Transfer = &nt
	c.mu.Unlock()
	c.events.push(c.newEvent(EventTransfer))
	if !nt.Done {
		return
	}
	c.controlBusy = false
	if c.transferTimer != nil {
		c.transferTimer.Stop()
		c.transferTimer = nil
	}
	if nt.Succeeded() {
		cur := c.Info()
		c.m.cfg.Logger.Info("call transferred", "callID", c.id)
		c.end(StatusFinish, cur.SIPStatus, cur.SIPReason, nil)
	}
}

// Hold puts a live call's peer on hold (see Call.Hold).
func (m *Manager) Hold(ctx context.Context, callID string) error {
	c, err := m.call(callID)
	if err != nil {
		return err
	}
	return c.Hold(ctx)
}

// Unhold takes a live call's peer off hold (see Call.Unhold).
func (m *Manager) Unhold(ctx context.Context, callID string) error {
	c, err := m.call(callID)
	if err != nil {
		return err
	}
	return c.Unhold(ctx)
}

// Transfer transfers a live call's peer to target, or attended, to the
// callee of replacesCallID (see Call.Transfer).
func (m *Manager) Transfer(ctx context.Context, callID, target, replacesCallID string) error {
	c, err := m.call(callID)
	if err != nil {
		return err
	}
	return c.Transfer(ctx, target, replacesCallID)
}
