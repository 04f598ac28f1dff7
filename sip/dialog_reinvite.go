package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
)

// maxOfferLen bounds a re-INVITE's SDP offer (a few KiB in practice; a
// UDP datagram holds 64 KiB in all).
const maxOfferLen = 32 << 10

// maxGlareRetries is how often Reinvite tries again after 491 Request
// Pending before it gives up.
const maxGlareRetries = 2

// errInviteBusy: another INVITE transaction of the dialog is in progress.
var errInviteBusy = errors.New("sip: an INVITE is in progress")

// glareDelay is how long to wait before retrying a re-INVITE answered 491
// (RFC 3261 §14.1): 2.1 to 4 s for the owner of the Call-ID (the UAC of the
// initial INVITE: this UA only places calls), in units of 10 ms.
func glareDelay() time.Duration {
	return 2100*time.Millisecond + time.Duration(rand.IntN(191))*10*time.Millisecond
}

// Reinvite sends offer (an SDP body starting with "v=0", at most 32 KiB,
// else a *ParamError) in an in-dialog INVITE (RFC 3261 §14): a new SDP
// offer for the session, built by the caller (sendonly or inactive
// directions to put the peer on hold, sendrecv to resume it, RFC 3264 §8.4).
// It waits for the final answer, ACKs it (sipgo ACKs a non-2xx itself) and
// returns the SDP answer of the 2xx.
//
// The offer's o= session version must be higher than the last SDP this
// side sent (RFC 3264 §8); when it is not, it is raised to one more than
// that. After a 2xx the offer is the dialog's current local SDP: session
// timer refreshes resend it (a refresh never silently takes a call off
// hold) and offers from the peer are answered from it.
//
// Errors: a non-2xx answer is a *StatusError and leaves the session as it
// was. 491 Request Pending (glare with the peer's own re-INVITE) is retried
// twice after RFC 3261's random delay of 2.1 to 4 s, then returned. 401
// and 407 are answered with the call's credentials like every in-dialog
// request. A 481 or 408 answer, or no answer at all within
// Config.TransactionTimeout, ends the dialog (RFC 5057 §5.1, RFC 3261
// §12.2.1.2: the peer has lost it) and Err then wraps that *StatusError.
// ctx ending first returns an error wrapping ctx's, but the transaction
// goes on in the background, bounded by Config.TransactionTimeout: a late
// 2xx is still ACKed and becomes the session, a late 481 or 408 still ends
// the dialog, and the next Reinvite waits for it. An offer
// the peer accepts with a 2xx without SDP is an error, with the session
// unchanged. Reinvite waits for a session-timer refresh or another
// Reinvite in flight to finish first (RFC 3261 §14.1: one INVITE at a
// time); meanwhile a re-INVITE from the peer is answered 491.
func (d *Dialog) Reinvite(ctx context.Context, offer []byte) (answer []byte, err error) {
	switch {
	case len(offer) == 0:
		return nil, paramErr("offer", "empty")
	case len(offer) > maxOfferLen:
		return nil, paramErr("offer", tooLong(maxOfferLen))
	case !bytes.HasPrefix(offer, []byte("v=0")):
		return nil, paramErr("offer", "not SDP: it must start with v=0")
	}
	offer = append([]byte(nil), offer...)
	for attempt := 0; ; attempt++ {
		res, err := d.reinviteOnce(ctx, offer)
		if err != nil {
			return nil, err
		}
		if res.StatusCode == 491 && attempt < maxGlareRetries {
			delay := d.glareDelay()
			d.log.Info("sip: re-INVITE glare, retrying", "after", delay)
			if err := d.pause(ctx, delay); err != nil {
				return nil, err
			}
			continue
		}
		if !res.IsSuccess() {
			return nil, statusError("INVITE", res)
		}
		if !isSDP(res) {
			return nil, errors.New("sip: re-INVITE: 2xx without an SDP answer")
		}
		return append([]byte(nil), res.Body()...), nil
	}
}

// pause waits for delay before a re-INVITE is tried (again); it fails when
// ctx or the dialog ends first.
func (d *Dialog) pause(ctx context.Context, delay time.Duration) error {
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sip: re-INVITE: %w", ctx.Err())
	case <-d.done:
		return ErrDialogClosed
	}
}

// reinviteOnce runs one re-INVITE transaction. It returns the final
// response, or an error when there was none or ctx ended first (the
// transaction then goes on in the background, see Reinvite).
func (d *Dialog) reinviteOnce(ctx context.Context, offer []byte) (*sipgox.Response, error) {
	type result struct {
		res *sipgox.Response
		err error
	}
	done := make(chan result, 1)
	for started := false; !started; {
		var err error
		ok := d.call(func() {
			switch {
			case d.finished || d.ending || !d.up:
				err = ErrDialogClosed
			case d.reinviting || d.st.busy:
				err = errInviteBusy
			default:
				d.reinviting, started = true, true
				req := d.newRequest(sipgox.INVITE, raiseSDPVersion(offer, d.localSDP), "application/sdp")
				req.AppendHeader(sipgox.NewHeader("Allow", allowedMethods))
				req.AppendHeader(sipgox.NewHeader("Supported", "timer"))
				if d.st.interval > 0 {
					who := "uas"
					if d.st.refresher {
						who = "uac"
					}
					req.AppendHeader(sipgox.NewHeader("Session-Expires", strconv.Itoa(int(d.st.interval/time.Second))+";refresher="+who))
				}
				d.log.Info("sip: sending re-INVITE", "directions", sdpDirections(req.Body()))
				// The transaction runs on the dialog's context, not ctx
				// (and is started from the loop, so that the loop's end
				// waits for it): a caller who stops waiting must not leave
				// a late 2xx un-ACKed (the peer would retransmit it, then
				// hang up, RFC 3261 §13.3.1.4) nor the peer's new session
				// state unknown to us. Config.TransactionTimeout bounds it.
				d.goBackground(func(bg context.Context) {
					res, err := d.refresh(bg, req)
					d.observeCSeq(req.CSeq().SeqNo)
					if err != nil && res != nil && res.IsSuccess() {
						// The 2xx arrived; only its ACK failed to go out
						// (the peer retransmits it and ends the dialog if
						// it never gets one).
						d.log.Warn("sip: ACK for re-INVITE 2xx failed", "err", err)
						err = nil
					}
					applied := make(chan struct{})
					d.post(func() {
						d.reinviteDone(req, res, err)
						close(applied)
					})
					select {
					case <-applied:
					case <-bg.Done():
						if err != nil {
							err = ErrDialogClosed // ended under the transaction
						}
					}
					done <- result{res, err}
				})
			}
		})
		switch {
		case !ok:
			return nil, ErrDialogClosed
		case errors.Is(err, errInviteBusy):
			if err := d.pause(ctx, 20*time.Millisecond); err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		}
	}
	select {
	case r := <-done:
		return r.res, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("sip: re-INVITE: %w", ctx.Err())
	}
}

// reinviteDone applies the outcome of our re-INVITE (loop goroutine).
func (d *Dialog) reinviteDone(req *sipgox.Request, res *sipgox.Response, err error) {
	d.reinviting = false
	if d.finished {
		return
	}
	var se *StatusError
	switch {
	case err != nil && errors.As(err, &se) && se.Code == 408,
		err == nil && (res.StatusCode == 408 || res.StatusCode == 481):
		if err == nil {
			err = statusError("INVITE", res)
		}
		d.log.Warn("sip: re-INVITE failed, dialog lost", "err", err)
		err = fmt.Errorf("sip: re-INVITE ended the dialog: %w", err)
		if res != nil && res.StatusCode == 481 {
			d.ending = true // the peer has no dialog to BYE
			d.finish(err)
		} else {
			d.expire(err)
		}
	case err == nil && res.IsSuccess() && isSDP(res):
		d.localSDP = req.Body()
		d.baseSDP = req.Body()
		d.sdpBump = 0
		d.remoteSDP = append([]byte(nil), res.Body()...)
		if c := res.Contact(); c != nil {
			d.remoteTarget = *c.Address.Clone()
		}
		d.sessionRefreshed(res)
	}
}
