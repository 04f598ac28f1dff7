package sip

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
)

// parseSessionExpires parses "1800;refresher=uac".
func parseSessionExpires(v string) (secs int, refresher string) {
	parts := strings.Split(v, ";")
	n, err := strconv.Atoi(strings.TrimSpace(parts[0]))
	if err != nil || n <= 0 || n > 86400*7 {
		return 0, ""
	}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "refresher") {
			refresher = strings.ToLower(strings.TrimSpace(val))
		}
	}
	return n, refresher
}

// startSessionTimer reads Session-Expires from our INVITE's 2xx.
func (d *Dialog) startSessionTimer(res *sipgox.Response, weAreUAC bool) {
	h := res.GetHeader("Session-Expires")
	if h == nil {
		return
	}
	secs, refresher := parseSessionExpires(h.Value())
	if secs == 0 {
		return
	}
	weRefresh := refresher == "uac" || refresher == ""
	d.setSessionTimer(time.Duration(secs)*time.Second, weRefresh, strings.Contains(d.peerAllow, "UPDATE"))
}

func (d *Dialog) setSessionTimer(interval time.Duration, weRefresh, useUpdate bool) {
	// A peer's 2xx may name less than Min-SE (RFC 4028 forbids it): use
	// Min-SE, so we never refresh more often than every Min-SE/2 nor end
	// the session sooner than Min-SE asks.
	interval = max(interval, d.ua.minSE)
	if d.st.timer != nil {
		d.st.timer.Stop()
	}
	d.st.interval = interval
	d.st.refresher = weRefresh
	if useUpdate {
		d.st.useUpdate = true
	}
	var wait time.Duration
	if weRefresh {
		wait = interval / 2
	} else {
		// RFC 4028 §10: BYE at interval minus min(32 s, interval/3).
		wait = interval - min(32*time.Second, interval/3)
	}
	d.st.timer = time.NewTimer(wait)
}

func (d *Dialog) sessionTimerFired() {
	if d.finished || d.ending {
		return
	}
	if !d.st.refresher {
		d.log.Warn("sip: peer did not refresh the session")
		d.expire(ErrSessionExpired)
		return
	}
	if d.st.busy {
		return
	}
	if d.reinviting {
		// Our re-INVITE refreshes the session when it succeeds
		// (sessionRefreshed); look again in a second if it does not.
		d.st.timer = time.NewTimer(time.Second)
		return
	}
	d.st.busy = true
	method := sipgox.INVITE
	var body []byte
	ct := ""
	if d.st.useUpdate {
		method = sipgox.UPDATE
	} else {
		body, ct = d.localSDP, "application/sdp"
	}
	req := d.newRequest(method, body, ct)
	secs := int(d.st.interval / time.Second)
	req.AppendHeader(sipgox.NewHeader("Session-Expires", strconv.Itoa(secs)+";refresher=uac"))
	req.AppendHeader(sipgox.NewHeader("Supported", "timer"))
	d.goBackground(func(ctx context.Context) {
		res, err := d.refresh(ctx, req)
		d.post(func() {
			d.st.busy = false
			if d.finished || d.ending {
				return
			}
			switch {
			case err == nil && res.IsSuccess():
				d.sessionRefreshed(res)
			case err == nil && (res.StatusCode == 501 || res.StatusCode == 405) && d.st.useUpdate:
				d.st.useUpdate = false // peer cannot UPDATE: re-INVITE next time
				d.st.timer = time.NewTimer(0)
			case err == nil && res.StatusCode == 491:
				d.st.timer = time.NewTimer(2 * time.Second) // glare: retry
			default:
				d.log.Warn("sip: session refresh failed", "err", err, "status", statusOf(res))
				d.expire(ErrSessionExpired)
			}
		})
	})
}

// sessionRefreshed restarts the session timer after a 2xx to our refresh
// or re-INVITE (RFC 4028 §7.4): the 2xx's Session-Expires, when present,
// says the interval and who refreshes ("uas": the peer); without it we keep
// the interval and our role. No timer runs: nothing to do.
func (d *Dialog) sessionRefreshed(res *sipgox.Response) {
	if d.st.interval == 0 {
		return
	}
	next, weRefresh := d.st.interval, d.st.refresher
	if h := res.GetHeader("Session-Expires"); h != nil {
		if s, r := parseSessionExpires(h.Value()); s > 0 {
			next, weRefresh = time.Duration(s)*time.Second, r != "uas"
		}
	}
	d.setSessionTimer(next, weRefresh, d.st.useUpdate)
}

func statusOf(res *sipgox.Response) int {
	if res == nil {
		return 0
	}
	return res.StatusCode
}

// refresh runs a refresh request; for re-INVITE it ACKs the 2xx.
func (d *Dialog) refresh(ctx context.Context, req *sipgox.Request) (*sipgox.Response, error) {
	if req.Method != sipgox.INVITE {
		return d.ua.do(ctx, req, d.transport, d.creds)
	}
	res, err := d.ua.do(ctx, req, d.transport, d.creds)
	if err != nil || !res.IsSuccess() {
		return res, err
	}
	ack := sipgox.NewRequest(sipgox.ACK, req.Recipient)
	ack.AppendHeader(d.ua.newVia(d.transport))
	sipgox.CopyHeaders("Route", req, ack)
	for _, h := range []sipgox.Header{req.From(), res.To(), req.CallID()} {
		ack.AppendHeader(sipgox.HeaderClone(h))
	}
	ack.AppendHeader(&sipgox.CSeqHeader{SeqNo: req.CSeq().SeqNo, MethodName: sipgox.ACK})
	d.ua.prepare(ack, d.transport, req.Destination())
	ack.SetBody(nil)
	return res, d.writeAck(ack)
}

// expire sends BYE in the background and ends the dialog with err.
func (d *Dialog) expire(err error) {
	d.ending = true
	bye := d.newRequest(sipgox.BYE, nil, "")
	d.finish(err)
	d.ua.goRequest(func(ctx context.Context) {
		_, _ = d.ua.do(ctx, bye, d.transport, d.creds)
	})
}

func (d *Dialog) armKeepAlive() {
	if d.keepAlive > 0 && !d.finished {
		d.kaTimer = time.NewTimer(d.keepAlive)
	}
}

func (d *Dialog) sendKeepAlive() {
	if d.finished || d.ending || d.kaBusy {
		return
	}
	d.kaBusy = true
	req := d.newRequest(sipgox.OPTIONS, nil, "")
	d.goBackground(func(ctx context.Context) {
		res, err := d.ua.do(ctx, req, d.transport, d.creds)
		d.post(func() {
			d.kaBusy = false
			if d.finished || d.ending {
				return
			}
			if err != nil || res.StatusCode == 481 || res.StatusCode == 408 {
				d.log.Warn("sip: keepalive failed", "err", err, "status", statusOf(res))
				if err == nil {
					err = statusError("OPTIONS", res)
				}
				d.expire(fmt.Errorf("%w: %w", ErrKeepAliveFailed, err))
				return
			}
			d.armKeepAlive()
		})
	})
}
