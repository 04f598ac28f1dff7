package sip

import (
	sipgox "github.com/emiago/sipgo/sip"
)

// registerHandlers routes incoming requests: in-dialog ones to their
// Dialog's goroutine, out-of-dialog ones answered here.
func (ua *UA) registerHandlers() {
	for _, m := range []sipgox.RequestMethod{sipgox.BYE, sipgox.INFO, sipgox.UPDATE, sipgox.ACK, sipgox.NOTIFY, sipgox.PRACK, sipgox.MESSAGE, sipgox.REFER} {
		ua.srv.OnRequest(m, ua.dispatch)
	}
	ua.srv.OnInvite(func(req *sipgox.Request, tx sipgox.ServerTransaction) {
		if toTag(req) != "" {
			ua.dispatch(req, tx)
			return
		}
		ua.handleInvite(req, tx)
	})
	ua.srv.OnOptions(func(req *sipgox.Request, tx sipgox.ServerTransaction) {
		if toTag(req) != "" {
			ua.dispatch(req, tx)
			return
		}
		respond(tx, req, 200, "OK", nil, sipgox.NewHeader("Allow", allowedMethods),
			sipgox.NewHeader("Accept", "application/sdp"))
	})
	ua.srv.OnRegister(func(req *sipgox.Request, tx sipgox.ServerTransaction) {
		if toTag(req) != "" {
			ua.dispatch(req, tx)
			return
		}
		ua.handleRegister(req, tx)
	})
	ua.srv.OnCancel(func(req *sipgox.Request, tx sipgox.ServerTransaction) {
		respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
	})
}

func toTag(req *sipgox.Request) string {
	if to := req.To(); to != nil {
		t, _ := to.Params.Get("tag")
		return t
	}
	return ""
}

// dispatch hands an in-dialog request to its dialog and waits until the
// dialog has answered it (sipgo terminates the transaction when the
// handler returns).
func (ua *UA) dispatch(req *sipgox.Request, tx sipgox.ServerTransaction) {
	var d *Dialog
	if cid := req.CallID(); cid != nil {
		d = ua.findDialog(cid.Value())
	}
	if d == nil {
		if !req.IsAck() {
			respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		}
		return
	}
	in := inbound{req: req, tx: tx, done: make(chan struct{})}
	select {
	case d.in <- in:
	case <-d.loopDone:
		if !req.IsAck() {
			respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		}
		return
	}
	select {
	case <-in.done:
	case <-d.loopDone:
	}
}

// onUnhandledResponse sees responses whose client transaction is gone:
// retransmitted 2xx to our INVITE get the ACK again (RFC 3261 §13.2.2.4).
func (ua *UA) onUnhandledResponse(res *sipgox.Response) {
	cseq := res.CSeq()
	if !res.IsSuccess() || cseq == nil || cseq.MethodName != sipgox.INVITE || res.CallID() == nil {
		return
	}
	if d := ua.findDialog(res.CallID().Value()); d != nil {
		d.resendAck(cseq.SeqNo)
	}
}
