package callmgr

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/sipstream/sipstream/media"
)

type setupResult struct {
	reg registration
	dlg dialog
	err error
	// fallback is why the INVITE was sent again with the plain RTP offer
	// (SRTPOptional refused by the peer); empty otherwise.
	fallback string
}

// run is the call's run loop: the only goroutine that touches the dialog,
// the media session and the sink table. It never blocks on the network
// until teardown: INVITE runs on a helper goroutine (setup), requests and
// callbacks arrive through the inbox.
func (c *Call) run() {
	defer c.m.wg.Done()
	setupCtx, cancel := context.WithCancel(context.Background())
	c.cancelSetup = cancel
	c.setupPending = true
	c.setupDone = make(chan struct{})
	go c.setup(setupCtx)

	ring := time.NewTimer(c.p.RingTimeout)
	defer ring.Stop()
	ringC := ring.C
	watch := time.NewTicker(mediaWatch)
	defer watch.Stop()
	for !c.ending {
		select {
		case <-watch.C:
			c.watchMedia()
		case <-c.inbox.ready:
			c.runInbox()
			if c.dlg != nil && ringC != nil {
				ring.Stop()
				ringC = nil
			}
		case <-ringC:
			c.end(StatusFailed, 408, "Request Timeout", &SIPError{Code: 408, Reason: "Request Timeout", Err: ErrNoAnswer})
		case <-c.dlgDone:
			c.logf(LogSIP, LogInfo, "← BYE")
			c.dlgEnded = true
			c.dlgDone = nil
			err := c.dlg.Err()
			if err == nil {
				err = ErrRemoteHangup
			}
			st := c.Info()
			c.end(StatusFinish, st.SIPStatus, st.SIPReason, err)
		}
	}
	c.teardown()
}

func (c *Call) runInbox() {
	items, _ := c.inbox.drain()
	for _, f := range items {
		f()
	}
}

// setup registers (if asked) and sends the INVITE. It reports its result
// through the inbox, behind the provisional responses it reported before,
// then closes setupDone.
func (c *Call) setup(ctx context.Context) {
	defer close(c.setupDone)
	if c.in != nil {
		c.setupIncoming(ctx)
		return
	}
	report := func(r setupResult) { c.inbox.push(func() { c.onSetup(r) }) }
	acct := account{
		User:        c.p.SIPLogin,
		AuthUser:    c.p.SIPAuthName,
		Password:    c.p.SIPPassword,
		Domain:      c.p.SIPDomain,
		Proxy:       c.p.SIPOutboundProxy,
		Port:        c.p.SIPPort,
		Transport:   c.p.SIPTransport,
		DisplayName: c.p.VisibleName,
	}
	if acct.User == "" {
		acct.User = c.m.cfg.DefaultUser
	}
	if acct.AuthUser == "" {
		acct.AuthUser = acct.User
	}
	var r setupResult
	if c.p.SIPRegisterRequired && !c.m.accountRegistered(acct.User, acct.Domain) {
		r.reg, r.err = c.m.be.sig.Register(ctx, acct)
		if r.err != nil {
			report(r)
			return
		}
	}
	req := &inviteRequest{
		account: acct,
		Callee:  c.p.Callee,
		CallID:  c.p.CallID,
		Headers: c.p.Headers,
		Offer:   c.offer.Marshal(),
		OnProgress: func(code int, reason string, sdp []byte) {
			sdp = append([]byte(nil), sdp...)
			c.inbox.push(func() { c.onProgress(code, reason, sdp) })
		},
		OnReinvite: c.onReinviteRequest,
		OnDTMF: func(d rune) {
			c.inbox.push(func() { c.emitDTMF(d) })
		},
	}
	r.dlg, r.err = c.m.be.sig.Invite(ctx, req)
	var se *SIPError
	if c.plainOffer != nil && errors.As(r.err, &se) && (se.Code == 488 || se.Code == 415) && ctx.Err() == nil {
		// SRTPOptional: the peer refused the RTP/SAVP offer; the same call
		// again with plain RTP (a new INVITE transaction, same Call-ID).
		r.fallback = fmt.Sprintf("%d %s", se.Code, se.Reason)
		c.m.cfg.Logger.Warn("SRTP refused by the peer: calling again with plain RTP", "callID", c.p.CallID, "answer", r.fallback)
		again := *req
		again.Offer = c.plainOffer.Marshal()
		r.dlg, r.err = c.m.be.sig.Invite(ctx, &again)
	}
	report(r)
}

// useOffer makes o (the plain RTP offer after an SRTP fallback) the call's
// offer; run loop only.
func (c *Call) useOffer(o sdpOffer) {
	c.offer = o
	c.offerCfg.SRTP = false
}

func (c *Call) onProgress(code int, reason string, sdp []byte) {
	if c.ending || c.dlg != nil {
		return
	}
	st := StatusTrying
	switch {
	case code >= 180 && len(sdp) > 0 && c.startEarlyMedia(sdp):
		st = StatusRingMedia
	case code >= 180 && c.early:
		st = StatusRingMedia // a later 18x without SDP: the early media goes on
	case code == 183:
		st = StatusSessionProgress
	case code >= 180:
		st = StatusRing
	}
	c.setStatus(st, code, reason)
}

// startEarlyMedia starts the media session on a provisional answer's SDP
// (RFC 3960 early media: ringback, IVR prompts) and the call's own sinks
// with it, so the stream is live before the answer; run loop only. It
// reports whether early media runs. A second SDP in another 18x (a forking
// proxy, an updated answer) updates the session.
func (c *Call) startEarlyMedia(sdp []byte) bool {
	specs, err := c.offer.Negotiate(sdp)
	if err == nil && c.p.SRTP == SRTPRequired && !secureSpecs(specs) {
		err = errors.New("SRTP required, the early answer is plain RTP")
	}
	if err != nil {
		c.m.cfg.Logger.Info("early media SDP not usable; waiting for the answer", "callID", c.id, "err", err)
		return c.early
	}
	if c.early {
		if err := c.sess.Update(specs); err != nil {
			c.m.cfg.Logger.Info("early media update", "callID", c.id, "err", err)
			return true
		}
		c.specs = specs
		return true
	}
	if err := c.sess.Start(specs); err != nil {
		c.m.cfg.Logger.Info("early media start", "callID", c.id, "err", err)
		return false
	}
	c.early = true
	c.specs, c.prevSpecs = specs, specs
	c.mu.Lock()
	c.info.Secure = secureSpecs(specs)
	if c.p.Record {
		// Named now: the recording starts with the early media.
		c.info.RecordPath = filepath.Join(c.m.cfg.RecordDir, recordName(c.p.ToStream, time.Now(), c.m.cfg.RecordFormat))
	}
	c.mu.Unlock()
	c.activatePending()
	c.startPrimarySinks()
	return true
}

// setupReason is the SIPReason of a call whose setup failed without a SIP
// answer: the error's text, at most 200 bytes (package sip's errors carry no
// secrets).
func setupReason(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func (c *Call) onSetup(r setupResult) {
	c.setupPending = false
	c.reg = r.reg
	if r.err != nil {
		if c.ending {
			return
		}
		var se *SIPError
		if errors.As(r.err, &se) {
			c.logResponse(se.Code, se.Reason)
			st := StatusFailed
			switch {
			case se.Code == 486 || se.Code == 600:
				st = StatusBusy
			case se.Code == 487 && c.in != nil:
				st = StatusFinish // the caller cancelled
			}
			c.end(st, se.Code, se.Reason, se)
			return
		}
		// No SIP answer (a transport failure: connection refused, a TLS
		// certificate not trusted, DNS): no SIP code, the reason says why.
		c.logf(LogSIP, LogError, "INVITE failed: %s", setupReason(r.err))
		c.end(StatusFailed, 0, setupReason(r.err), fmt.Errorf("callmgr: call setup: %w", r.err))
		return
	}
	c.dlg = r.dlg
	c.dlgDone = r.dlg.Done()
	if c.ending {
		return
	}
	fallback := r.fallback
	if fallback != "" {
		c.useOffer(c.plainOffer)
	}
	specs, err := c.negotiated(r.dlg)
	if err != nil && fallback == "" && c.plainOffer != nil {
		// SRTPOptional: a 200 without usable a=crypto (some PBXs answer
		// RTP/AVP to an RTP/SAVP offer) is taken as plain RTP.
		if pspecs, perr := c.plainOffer.Negotiate(r.dlg.AnswerSDP()); perr == nil {
			fallback = err.Error()
			c.m.cfg.Logger.Warn("SRTP not in the answer: plain RTP", "callID", c.p.CallID, "why", fallback)
			c.useOffer(c.plainOffer)
			specs, err = pspecs, nil
		}
	}
	if err == nil && c.p.SRTP == SRTPRequired && !secureSpecs(specs) {
		err = errors.New("SRTP required, a stream of the answer is plain RTP")
	}
	if err != nil {
		c.end(StatusFailed, 488, "Not Acceptable Here", &SIPError{Code: 488, Reason: "Not Acceptable Here", Err: fmt.Errorf("%w: %w", ErrNegotiation, err)})
		return
	}
	c.mu.Lock()
	c.info.Secure = secureSpecs(specs)
	c.info.SRTPFallback = fallback
	c.mu.Unlock()
	start := c.sess.Start
	if c.early || c.earlyToCaller {
		// The answer may differ from the early SDP (RFC 3261 §13.2.1 lets a
		// forking proxy's other branch answer); Update also restarts the
		// media timeouts from now.
		start = c.sess.Update
	}
	if err := start(specs); err != nil {
		c.end(StatusFailed, 0, "", fmt.Errorf("callmgr: media start: %w", err))
		return
	}
	c.specs, c.prevSpecs = specs, specs
	c.mu.Lock()
	c.info.Established = time.Now()
	if c.p.Record && !c.early {
		// Named now, so the ESTABLISHED event and every snapshot from then
		// on carry the path; startPrimarySinks creates the file.
		c.info.RecordPath = filepath.Join(c.m.cfg.RecordDir, recordName(c.p.ToStream, c.info.Established, c.m.cfg.RecordFormat))
	}
	c.mu.Unlock()
	c.endEarlySound()
	c.setStatus(StatusEstablished, 200, "OK")
	if !c.early {
		c.activatePending()
		c.startPrimarySinks()
	}
	close(c.estab)
}

// onReinviteRequest is called by the user agent for an in-dialog INVITE
// with an offer; it hands the work to the run loop and waits for the
// answer.
func (c *Call) onReinviteRequest(offer []byte) ([]byte, error) {
	type res struct {
		answer []byte
		err    error
	}
	reply := make(chan res, 1)
	if !c.inbox.push(func() {
		a, err := c.onReinvite(offer)
		reply <- res{a, err}
	}) {
		return nil, ErrCallEnded
	}
	select {
	case r := <-reply:
		return r.answer, r.err
	case <-c.life.Done():
		// Teardown has begun: do not hold the dialog's goroutine (our BYE
		// may need it).
		return nil, ErrCallEnded
	}
}

func (c *Call) onReinvite(offer []byte) ([]byte, error) {
	if c.ending {
		return nil, ErrCallEnded
	}
	if c.dlg == nil {
		return nil, ErrNotEstablished
	}
	// What would the peer do if sipstream wanted to send everything? If it
	// still would not receive anything, it put the call on hold.
	probe := c.offerCfg
	probe.AudioDir, probe.VideoDir = media.SendRecv, media.SendRecv
	_, pspecs, err := c.m.be.sdp.Answer(offer, probe)
	if err != nil {
		return nil, err
	}
	cfg := c.offerCfg
	cfg.Version++
	answer, specs, err := c.m.be.sdp.Answer(offer, cfg)
	if err != nil {
		return nil, err
	}
	if c.p.SRTP == SRTPRequired && !secureSpecs(specs) {
		// No downgrade to plain RTP in the middle of the call.
		return nil, fmt.Errorf("%w: SRTP required, the re-INVITE offers plain RTP", ErrNegotiation)
	}
	c.offerCfg = cfg
	if err := c.sess.Update(specs); err != nil {
		return nil, err
	}
	c.specs = specs
	was := c.peerHeld
	c.peerHeld = isHold(pspecs)
	c.logf(LogSIP, LogInfo, "← re-INVITE (%s) → 200 OK", peerHoldWord(was, c.peerHeld))
	c.afterRenegotiation()
	if c.sound != nil || c.live != nil {
		// The codec may have changed: hand the mix over again.
		if err := c.applyAudio(); err != nil {
			c.m.cfg.Logger.Info("injected audio after re-INVITE", "callID", c.id, "err", err)
		}
	}
	return answer, nil
}

// isHold reports whether the peer receives nothing from us: every stream is
// recvonly or inactive from our side, or has an unspecified remote address
// (c=0.0.0.0, RFC 2543 hold).
func isHold(specs []media.StreamSpec) bool {
	if len(specs) == 0 {
		return false
	}
	for _, s := range specs {
		if s.Direction.Sends() && !(s.Remote.IsValid() && s.Remote.Addr().IsUnspecified()) {
			return false
		}
	}
	return true
}

// Media session callbacks (session goroutines): hand over to the run loop.

func (c *Call) onMediaDTMF(d rune, _ time.Duration) {
	c.inbox.push(func() { c.emitDTMF(d) })
}

func (c *Call) onMediaTimeout(reason string) {
	c.inbox.push(func() {
		if c.dlg == nil {
			// Early media that stopped or never came: the answer restarts
			// the timeouts (Update).
			return
		}
		cur := c.Info()
		c.logf(LogMedia, LogError, "media timeout: %s", reason)
		c.end(StatusFailed, cur.SIPStatus, cur.SIPReason, fmt.Errorf("%w: %s", ErrMediaTimeout, reason))
	})
}

func (c *Call) onKeyframeFallback() {
	c.inbox.push(func() {
		if c.ending || c.dlg == nil || c.kfInFlight {
			return
		}
		c.kfInFlight = true
		c.logf(LogSIP, LogInfo, "→ INFO picture_fast_update (keyframe request)")
		d := c.dlg
		c.ops.Add(1)
		go func() {
			defer c.ops.Done()
			ctx, cancel := context.WithTimeout(c.life, 5*time.Second)
			defer cancel()
			_ = d.RequestKeyframe(ctx)
			c.inbox.push(func() { c.kfInFlight = false })
		}()
	})
}

// RequestKeyframe asks the peer for a video keyframe: RTCP PLI or FIR when
// the peer accepts them, SIP INFO picture_fast_update otherwise. Sinks added
// with AddSink call it when they need one (a WebRTC viewer that joins or
// sends a PLI); the call's own sinks do so by themselves. It never blocks;
// the media session paces the requests (repeated after the phone's measured
// response time while no keyframe comes, three times at most for a request
// like this, never closer than 100 ms), and it does nothing before the
// answer or once the call is ending.
func (c *Call) RequestKeyframe() { c.askKeyframe("a viewer asked") }

// requestKeyframe is what sinks call (from their goroutines) when they need
// a keyframe: the session sends PLI or FIR, or falls back to SIP INFO.
func (c *Call) requestKeyframe() {
	c.inbox.push(func() {
		if !c.ending && c.sess != nil && c.dlg != nil {
			c.sess.RequestKeyframe()
		}
	})
}

// endLocally handles Terminate and Close.
func (c *Call) endLocally() {
	if c.ending {
		return
	}
	if c.dlg != nil {
		cur := c.Info()
		c.end(StatusFinish, cur.SIPStatus, cur.SIPReason, nil)
		return
	}
	if c.in != nil { // setup refuses the INVITE with this
		c.end(StatusFinish, 603, "Decline", &SIPError{Code: 603, Reason: "Decline", Err: ErrCallEnded})
		return
	}
	c.end(StatusFinish, 487, "Request Terminated", &SIPError{Code: 487, Reason: "Request Terminated", Err: ErrCallEnded})
}

// end decides how the call ends; teardown carries it out.
func (c *Call) end(st Status, code int, reason string, err error) {
	if c.ending {
		return
	}
	c.ending = true
	c.final = finalState{status: st, code: code, reason: reason, err: err}
}

// teardown releases everything, on its own context: a cancelled request
// cannot skip the BYE.
func (c *Call) teardown() {
	log := c.m.cfg.Logger
	c.lifeEnd()
	ctx, cancel := context.WithTimeout(context.Background(), c.m.cfg.TeardownTimeout)
	defer cancel()

	if c.setupPending { // INVITE (or REGISTER) still in flight: CANCEL it
		if c.in == nil {
			c.logf(LogSIP, LogInfo, "→ CANCEL")
		}
		c.cancelSetup()
		<-c.setupDone
		c.runInbox() // onSetup adopts the registration and a dialog answered meanwhile
	}
	c.cancelSetup()
	if c.dlg != nil && !c.dlgEnded {
		select {
		case <-c.dlg.Done():
		default:
			c.logf(LogSIP, LogInfo, "→ BYE")
			if err := c.dlg.Bye(ctx); err != nil {
				c.logf(LogSIP, LogWarn, "BYE failed: %s", setupReason(err))
				log.Info("BYE failed", "callID", c.id, "err", err)
			}
		}
	}
	c.ops.Wait()
	if c.transferTimer != nil {
		c.transferTimer.Stop()
	}
	if c.liveStop != nil {
		go c.liveStop() // another call's run loop, or a source's lock
	}
	c.filler.Close()
	if err := c.sess.Close(); err != nil {
		log.Info("media session close", "callID", c.id, "err", err)
	}
	c.fan.Close(ctx)
	for id, e := range c.sinks {
		if e.s == nil {
			continue
		}
		if err := e.s.Close(ctx); err != nil {
			log.Info("sink close", "callID", c.id, "sink", id, "err", err)
		}
	}
	if c.reg != nil {
		if err := c.reg.Close(ctx); err != nil {
			log.Info("unREGISTER failed", "callID", c.id, "err", err)
		}
	}
	// Statuses the sinks reported while closing, requests that came in
	// meanwhile (they get ErrCallEnded).
	c.runInbox()
	c.m.release(c)

	c.mu.Lock()
	c.info.Status = c.final.status
	c.info.SIPStatus = c.final.code
	c.info.SIPReason = c.final.reason
	c.info.Ended = time.Now()
	c.err = c.final.err
	c.mu.Unlock()
	for id, e := range c.sinks {
		delete(c.sinks, id)
		c.emitSink(e.info, true)
	}
	c.emitStatus()
	c.logEnd()
	c.inbox.close()
	c.runInbox()
	log.Info("call ended", "callID", c.id, "status", c.final.status, "sipStatus", c.final.code, "err", c.final.err)
	close(c.stopped)
	c.events.close()
}

// setStatus records a status change and reports it (once).
func (c *Call) setStatus(st Status, code int, reason string) {
	c.mu.Lock()
	changed := c.info.Status != st || c.info.SIPStatus != code || c.info.SIPReason != reason
	codeChanged := c.info.SIPStatus != code || c.info.SIPReason != reason
	c.info.Status, c.info.SIPStatus, c.info.SIPReason = st, code, reason
	c.mu.Unlock()
	if codeChanged && code != 0 {
		c.logResponse(code, reason)
	}
	if changed {
		c.emitStatus()
	}
}

func (c *Call) newEvent(t EventType) Event {
	c.mu.Lock()
	ci := c.snapshotLocked()
	c.mu.Unlock()
	return Event{
		Type:      t,
		Time:      time.Now(),
		CallID:    c.id,
		Status:    ci.Status,
		SIPStatus: ci.SIPStatus,
		SIPReason: ci.SIPReason,
		Info:      ci,
	}
}

func (c *Call) emitStatus() { c.events.push(c.newEvent(EventCallStatus)) }

func (c *Call) emitDTMF(d rune) {
	if c.ending {
		return
	}
	c.logf(LogDTMF, LogInfo, "← DTMF %c", d)
	ev := c.newEvent(EventDTMF)
	ev.Digit = d
	c.events.push(ev)
}

func (c *Call) emitSink(si SinkInfo, removed bool) {
	ev := c.newEvent(EventSinkStatus)
	ev.Sink = si
	ev.Removed = removed
	c.events.push(ev)
}

// dispatch delivers the call's events to Config.OnEvent in order, then
// closes Done.
func (c *Call) dispatch() {
	defer c.m.wg.Done()
	defer close(c.done)
	deliver(c.events, c.m.cfg.OnEvent)
}

// deliver hands box's events to on (nil: drops them), in order, until box
// is closed and empty.
func deliver(box *mailbox[Event], on func(Event)) {
	for range box.ready {
		evs, closed := box.drain()
		if on != nil {
			for _, ev := range evs {
				on(ev)
			}
		}
		if closed {
			return
		}
	}
}
