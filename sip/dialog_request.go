package sip

import (
	"context"
	"strings"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
)

// parseRouteValues parses one Record-Route header (which may hold several
// comma-separated values) into URIs.
func parseRouteValues(h sipgox.Header) []sipgox.Uri {
	if rr, ok := h.(*sipgox.RecordRouteHeader); ok {
		return []sipgox.Uri{*rr.Address.Clone()}
	}
	var out []sipgox.Uri
	for _, v := range splitHeaderList(h.Value()) {
		v = strings.TrimSpace(v)
		if i := strings.IndexByte(v, '<'); i >= 0 {
			if j := strings.IndexByte(v[i:], '>'); j > 0 {
				v = v[i+1 : i+j]
			}
		}
		var u sipgox.Uri
		if err := sipgox.ParseUri(v, &u); err == nil {
			out = append(out, u)
		}
	}
	return out
}

// splitHeaderList splits a comma-separated header value, ignoring commas
// inside <> and quotes.
func splitHeaderList(s string) []string {
	var out []string
	depth, quoted, start := 0, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '<':
			depth++
		case c == '>':
			if depth > 0 {
				depth--
			}
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// newRequest builds an in-dialog request (loop goroutine only): remote
// target, route set, tags, next CSeq, and the destination (outbound proxy,
// else first route, else remote target).
func (d *Dialog) newRequest(method sipgox.RequestMethod, body []byte, contentType string) *sipgox.Request {
	req := sipgox.NewRequest(method, d.remoteTarget)
	req.AppendHeader(d.ua.newVia(d.transport))
	for _, r := range d.routeSet {
		req.AppendHeader(&sipgox.RouteHeader{Address: *r.Clone()})
	}
	from := d.from
	from.Params = d.from.Params.Clone()
	req.AppendHeader(&from)
	to := d.to
	to.Params = d.to.Params.Clone()
	req.AppendHeader(&to)
	cid := sipgox.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sipgox.CSeqHeader{SeqNo: d.nextCSeq(), MethodName: method})
	if method == sipgox.INVITE || method == sipgox.UPDATE {
		c := d.localContact
		req.AppendHeader(&c)
	}
	if contentType != "" {
		req.AppendHeader(sipgox.NewHeader("Content-Type", contentType))
	}
	dest := d.proxy
	if dest == "" {
		if len(d.routeSet) > 0 {
			dest = destination(d.routeSet[0], uriTransport(d.routeSet[0], d.transport))
		} else {
			dest = destination(d.remoteTarget, d.transport)
		}
	}
	d.ua.prepare(req, d.transport, dest)
	req.SetBody(body)
	return req
}

func uriTransport(u sipgox.Uri, def string) string {
	if u.UriParams != nil {
		if t, ok := u.UriParams.Get("transport"); ok {
			if n, err := normTransport("", t); err == nil {
				return n
			}
		}
	}
	return def
}

// request builds an in-dialog request on the loop and runs its transaction
// on the calling goroutine.
func (d *Dialog) request(ctx context.Context, method sipgox.RequestMethod, body []byte, contentType string) (*sipgox.Response, error) {
	var req *sipgox.Request
	var err error
	ok := d.call(func() {
		if d.finished || d.ending {
			err = ErrDialogClosed
			return
		}
		req = d.newRequest(method, body, contentType)
	})
	if !ok {
		return nil, ErrDialogClosed
	}
	if err != nil {
		return nil, err
	}
	res, err := d.ua.do(ctx, req, d.transport, d.creds)
	if req.CSeq() != nil {
		d.observeCSeq(req.CSeq().SeqNo)
	}
	return res, err
}

// Bye hangs up. It runs on a context derived from ctx that ctx's
// cancellation cannot end (context.WithoutCancel), bounded by
// Config.CleanupTimeout, so a cancelled caller still sends the BYE. The
// dialog ends (Err() == nil) whatever the answer. Calling Bye on an ended
// dialog returns nil.
func (d *Dialog) Bye(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.ua.cfg.CleanupTimeout)
	defer cancel()
	var req *sipgox.Request
	ok := d.call(func() {
		if d.finished || d.ending {
			return
		}
		d.ending = true
		if !d.up {
			d.finish(nil)
			return
		}
		req = d.newRequest(sipgox.BYE, nil, "")
	})
	if !ok || req == nil {
		select {
		case <-d.done:
		case <-ctx.Done():
		}
		return nil
	}
	d.log.Info("sip: sending BYE")
	res, err := d.ua.do(ctx, req, d.transport, d.creds)
	d.call(func() { d.finish(nil) })
	if err != nil {
		return err
	}
	if !res.IsSuccess() && res.StatusCode != 481 {
		return statusError("BYE", res)
	}
	return nil
}

// SendInfo sends an in-dialog INFO and waits for its final answer; a
// non-2xx answer is a *StatusError.
func (d *Dialog) SendInfo(ctx context.Context, contentType string, body []byte) error {
	if err := checkHeader("contentType", Header{Name: "X", Value: contentType}); err != nil || contentType == "" {
		return paramErr("contentType", "invalid")
	}
	res, err := d.request(ctx, sipgox.INFO, body, contentType)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return statusError("INFO", res)
	}
	return nil
}

// SendDTMF sends one DTMF digit (0-9, *, #, A-D) in SIP INFO: with relay
// as application/dtmf-relay ("Signal=5\r\nDuration=160\r\n"), otherwise
// as application/dtmf ("5").
func (d *Dialog) SendDTMF(ctx context.Context, digit rune, relay bool) error {
	body, ct, err := formatDTMF(digit, relay, 160*time.Millisecond)
	if err != nil {
		return err
	}
	return d.SendInfo(ctx, ct, body)
}

// keyframeRequest is the XML of RFC 5168 (picture_fast_update).
const keyframeRequest = `<?xml version="1.0" encoding="utf-8" ?>
<media_control>
  <vc_primitive>
    <to_encoder>
      <picture_fast_update/>
    </to_encoder>
  </vc_primitive>
</media_control>
`

// RequestKeyframe asks the peer's video encoder for a keyframe with SIP INFO
// application/media_control+xml picture_fast_update.
// Specification: RFC 5168.
func (d *Dialog) RequestKeyframe(ctx context.Context) error {
	return d.SendInfo(ctx, "application/media_control+xml", []byte(keyframeRequest))
}
