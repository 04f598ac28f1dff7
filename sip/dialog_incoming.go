package sip

import (
	"strconv"
	"strings"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
)

func respond(tx sipgox.ServerTransaction, req *sipgox.Request, code int, reason string, body []byte, hdrs ...sipgox.Header) {
	res := sipgox.NewResponseFromRequest(req, code, reason, body)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

func (d *Dialog) handleIn(in inbound) {
	req, tx := in.req, in.tx
	if req.IsAck() {
		d.handleAck(req)
		return
	}
	if req.From() == nil || req.To() == nil {
		respond(tx, req, 400, "Missing From or To", nil)
		return
	}
	fromTag, _ := req.From().Params.Get("tag")
	toTag, _ := req.To().Params.Get("tag")
	localTag, _ := d.from.Params.Get("tag")
	if d.finished || !d.up || fromTag != d.remoteTag || toTag != localTag {
		respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	switch req.Method {
	case sipgox.BYE:
		respond(tx, req, 200, "OK", nil)
		if d.ending {
			d.finish(nil)
		} else {
			d.finish(ErrRemoteBye)
		}
	case sipgox.INFO:
		d.handleInfo(req, tx)
	case sipgox.OPTIONS:
		respond(tx, req, 200, "OK", nil, sipgox.NewHeader("Allow", allowedMethods),
			sipgox.NewHeader("Accept", "application/sdp, application/dtmf-relay, application/dtmf"))
	case sipgox.INVITE, sipgox.UPDATE:
		d.handleOffer(req, tx)
	case sipgox.NOTIFY:
		d.handleNotify(req, tx)
	default:
		respond(tx, req, 501, "Not Implemented", nil, sipgox.NewHeader("Allow", allowedMethods))
	}
}

func (d *Dialog) handleInfo(req *sipgox.Request, tx sipgox.ServerTransaction) {
	ct := ""
	if h := req.ContentType(); h != nil {
		ct = strings.ToLower(strings.TrimSpace(h.Value()))
		if i := strings.IndexByte(ct, ';'); i >= 0 {
			ct = strings.TrimSpace(ct[:i])
		}
	}
	body := req.Body()
	switch ct {
	case "application/dtmf-relay", "application/dtmf":
		digit, dur, err := parseDTMF(ct, body)
		if err != nil {
			respond(tx, req, 400, "Bad DTMF", nil)
			return
		}
		respond(tx, req, 200, "OK", nil)
		if d.onDTMF != nil {
			d.onDTMF(digit, dur)
		}
	default:
		respond(tx, req, 200, "OK", nil)
		if d.onInfo != nil && (ct != "" || len(body) > 0) {
			d.onInfo(ct, append([]byte(nil), body...))
		}
	}
}

// handleOffer answers a re-INVITE or UPDATE (target refresh, new offer,
// session-timer refresh).
func (d *Dialog) handleOffer(req *sipgox.Request, tx sipgox.ServerTransaction) {
	if se := req.GetHeader("Session-Expires"); se != nil {
		// RFC 4028 §8.1: refuse an interval below our Min-SE before
		// anything else of the request is applied.
		if secs, _ := parseSessionExpires(se.Value()); secs > 0 && time.Duration(secs)*time.Second < d.ua.minSE {
			minSE := strconv.Itoa(int(d.ua.minSE / time.Second))
			d.log.Info("sip: session interval too small", "method", req.Method, "asked", secs)
			respond(tx, req, 422, "Session Interval Too Small", nil, sipgox.NewHeader("Min-SE", minSE))
			return
		}
	}
	if d.st.busy && !d.st.useUpdate && req.Method == sipgox.INVITE && len(req.Body()) > 0 ||
		d.reinviting && (req.Method == sipgox.INVITE || len(req.Body()) > 0) {
		// Glare with our refreshing re-INVITE or Reinvite (RFC 3261
		// §14.2; RFC 3311 §5.2 for an UPDATE with an offer).
		respond(tx, req, 491, "Request Pending", nil)
		return
	}
	if c := req.Contact(); c != nil {
		d.remoteTarget = *c.Address.Clone()
	}
	var answer []byte
	if body := req.Body(); len(body) > 0 {
		offer := append([]byte(nil), body...)
		if d.onReinvite != nil {
			a, err := d.onReinvite(offer)
			if err != nil || len(a) == 0 {
				respond(tx, req, 488, "Not Acceptable Here", nil)
				return
			}
			answer = a
		} else {
			d.sdpBump++
			answer = mirrorAnswer(d.baseSDP, offer, d.sdpBump)
		}
		d.remoteSDP = offer
		d.localSDP = answer
		d.held = isHold(offer)
		d.log.Info("sip: offer answered", "method", req.Method, "hold", d.held)
	} else if req.Method == sipgox.INVITE {
		// Offerless re-INVITE: we offer our current SDP in the 200.
		answer = d.localSDP
	}
	hdrs := []sipgox.Header{}
	c := d.localContact
	hdrs = append(hdrs, &c, sipgox.NewHeader("Allow", allowedMethods), sipgox.NewHeader("Supported", "timer"))
	if se := req.GetHeader("Session-Expires"); se != nil {
		secs, refresher := parseSessionExpires(se.Value())
		if secs > 0 {
			if refresher == "" {
				refresher = "uac" // the peer sends this request: it refreshes
			}
			hdrs = append(hdrs, sipgox.NewHeader("Session-Expires", strconv.Itoa(secs)+";refresher="+refresher),
				sipgox.NewHeader("Require", "timer"))
			d.setSessionTimer(time.Duration(secs)*time.Second, refresher == "uas", false)
		}
	} else if d.st.interval > 0 && !d.st.refresher {
		// A refresh without Session-Expires still proves the peer is alive.
		d.setSessionTimer(d.st.interval, false, false)
	}
	if answer != nil {
		hdrs = append(hdrs, sipgox.NewHeader("Content-Type", "application/sdp"))
	}
	respond(tx, req, 200, "OK", answer, hdrs...)
}

func isHold(offer []byte) bool {
	for _, dir := range sdpDirections(offer) {
		if dir == "sendonly" || dir == "inactive" {
			return true
		}
	}
	return false
}
