package sip

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"

	sipgox "github.com/emiago/sipgo/sip"
)

// maxReferrals bounds the REFER subscriptions a dialog keeps open at once.
const maxReferrals = 8

// ReferOptions are the optional parts of a call transfer (Dialog.Refer).
type ReferOptions struct {
	// Replaces, when not nil, makes an attended transfer (RFC 5589 §7): the
	// Refer-To URI carries a Replaces header (RFC 3891) naming this other
	// dialog (its Call-ID, the peer's tag as to-tag, ours as from-tag), so
	// that the transferee's INVITE replaces our call with the transfer
	// target. It must be another dialog that is up. Nil means a blind
	// transfer.
	Replaces *Dialog
	// OnProgress receives the progress of the transfer that the transferee
	// reports in NOTIFYs (RFC 3515 §2.4.4): the status line of each
	// message/sipfrag body ("SIP/2.0 100 Trying", "SIP/2.0 200 OK", ...).
	// The report with Final set is the last one: a final status (200 or
	// more), the subscription terminated, or the dialog ended before either
	// (StatusCode 0 then). Called on the dialog's goroutine, in order; must
	// not block or call the Dialog's methods. Nil means nobody is told.
	OnProgress func(ReferProgress)
}

// ReferProgress is one progress report of a transfer (Dialog.Refer).
type ReferProgress struct {
	// StatusCode and Reason are the status line the transferee got for its
	// INVITE to the target (100, 180, 200, 486, 603 ...). StatusCode is 0
	// when the dialog ended, or the subscription was terminated by a
	// NOTIFY without a body, before a final status arrived.
	StatusCode int
	Reason     string
	// Final says this is the last report of the transfer. The transfer
	// succeeded when StatusCode is 2xx; a final report below 200 means the
	// transferee stopped reporting before the outcome was known.
	Final bool
}

// referral is the implicit subscription a REFER creates (RFC 3515 §2.4.4).
type referral struct {
	cseq       uint32 // of the REFER (its id); the first CSeq sent until answered
	answered   bool   // the REFER's final answer arrived (cseq is then exact)
	onProgress func(ReferProgress)
	final      bool // the final report was delivered
}

// Refer asks the peer to call target and take our place (RFC 3515 call
// transfer, RFC 5589): it sends REFER with "Refer-To: <target>" and
// "Referred-By: <our From URI>" and returns once the REFER is answered: nil
// for 2xx (202 Accepted), a *StatusError with the code for 3xx to 6xx, an
// error wrapping ctx's for a cancelled wait. The transfer itself goes on:
// opts.OnProgress gets the NOTIFYs' reports. The call is not hung up here:
// after a final 2xx report, or when the peer hangs up, the caller ends it.
//
// target is read like InviteRequest.Callee: a "sip:"/"sips:" URI (checked
// with ValidateURI, URI parameters and headers allowed), "user@host[:port]"
// (made "sip:user@host[:port]"), or a bare user or phone number ("carol",
// "+4930123") which becomes a SIP URI at the host and port of the dialog's
// To URI ("sip:carol@pbx.example"). With opts.Replaces, target may be
// empty: it is then the other dialog's remote target (its Contact).
// Whatever fails validation is a *ParamError (Field "target").
//
// NOTIFYs of the subscription (Event: refer) are answered 200 and their
// sipfrag status line reported; a NOTIFY for no subscription of ours gets
// 481, one with another event package 489, one whose body is not a
// message/sipfrag status line 400 (RFC 3515 §2.4.5). Whether the peer can
// do all this shows in PeerAllows("REFER") and PeerSupports("replaces").
func (d *Dialog) Refer(ctx context.Context, target string, opts ReferOptions) error {
	replaces := ""
	if r := opts.Replaces; r != nil {
		if r == d {
			return paramErr("Replaces", "the dialog being transferred cannot replace itself")
		}
		var err error
		ok := r.call(func() {
			if r.finished || r.ending || !r.up {
				err = paramErr("Replaces", "that dialog is not up")
				return
			}
			fromTag, _ := r.from.Params.Get("tag")
			replaces = r.callID + ";to-tag=" + r.remoteTag + ";from-tag=" + fromTag
			if target == "" {
				t := r.remoteTarget
				t.UriParams = nil
				t.Headers = nil
				target = t.String()
			}
		})
		if !ok {
			return paramErr("Replaces", "that dialog is not up")
		}
		if err != nil {
			return err
		}
	}
	var req *sipgox.Request
	var ref *referral
	var err error
	ok := d.call(func() {
		switch {
		case d.finished || d.ending || !d.up:
			err = ErrDialogClosed
			return
		case len(d.referrals) >= maxReferrals:
			err = errors.New("sip: REFER: too many transfers in progress on this dialog")
			return
		}
		var referTo string
		if referTo, err = referTarget(target, uriHostPort(d.to.Address), replaces); err != nil {
			return
		}
		req = d.newRequest(sipgox.REFER, nil, "")
		req.AppendHeader(sipgox.NewHeader("Refer-To", "<"+referTo+">"))
		by := d.from.Address
		by.UriParams, by.Headers = nil, nil
		req.AppendHeader(sipgox.NewHeader("Referred-By", "<"+by.String()+">"))
		c := d.localContact
		req.AppendHeader(&c)
		ref = &referral{cseq: req.CSeq().SeqNo, onProgress: opts.OnProgress}
		if d.referrals == nil {
			d.referrals = map[uint32]*referral{}
		}
		d.referrals[ref.cseq] = ref
	})
	if !ok {
		return ErrDialogClosed
	}
	if err != nil {
		return err
	}
	d.log.Info("sip: sending REFER", "attended", replaces != "")
	res, err := d.ua.do(ctx, req, d.transport, d.creds)
	d.observeCSeq(req.CSeq().SeqNo)
	d.call(func() {
		if d.referrals[ref.cseq] != ref {
			return // the dialog ended meanwhile
		}
		delete(d.referrals, ref.cseq)
		if err == nil && res.IsSuccess() && !ref.final {
			// A digest retry raised the CSeq: the subscription's id is the
			// CSeq of the REFER that was accepted.
			ref.cseq, ref.answered = req.CSeq().SeqNo, true
			d.referrals[ref.cseq] = ref
		}
	})
	if err != nil {
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		return err
	}
	if !res.IsSuccess() {
		return statusError("REFER", res)
	}
	return nil
}

// referTarget turns target into the Refer-To URI, validated, with the
// escaped Replaces header when replaces is not empty.
func referTarget(target, domain, replaces string) (string, error) {
	if err := checkCallee("target", "target", target, domain); err != nil {
		return "", err
	}
	uri := target
	switch {
	case hasSIPScheme(target):
	case strings.IndexByte(target, '@') >= 0:
		uri = "sip:" + target
	default:
		uri = "sip:" + target + "@" + domain
	}
	if replaces != "" {
		sep := "?"
		if strings.IndexByte(uri, '?') >= 0 {
			sep = "&"
		}
		uri += sep + "Replaces=" + escapeURIHeaderValue(replaces)
	}
	if len(uri) > MaxURILen {
		return "", paramErr("target", tooLong(MaxURILen))
	}
	if _, err := parseSIPURI("target", uri); err != nil {
		return "", err
	}
	return uri, nil
}

// escapeURIHeaderValue escapes s as the hvalue of a URI header (RFC 3261
// §19.1.1): everything but unreserved characters becomes %XX, so ";" is
// %3B, "=" %3D and "@" %40 (RFC 3891 §5's Replaces in a Refer-To).
func escapeURIHeaderValue(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; isUnreserved(c) {
			b.WriteByte(c)
		} else {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// uriHostPort returns "host" or "host:port" of u.
func uriHostPort(u sipgox.Uri) string {
	if u.Port == 0 {
		return u.Host
	}
	return u.Host + ":" + strconv.Itoa(u.Port)
}

// handleNotify answers a NOTIFY of a REFER subscription (loop goroutine).
func (d *Dialog) handleNotify(req *sipgox.Request, tx sipgox.ServerTransaction) {
	ev := req.GetHeader("Event")
	if ev == nil {
		ev = req.GetHeader("o")
	}
	if ev == nil {
		respond(tx, req, 400, "Missing Event", nil)
		return
	}
	pkg, id, hasID := parseEventHeader(ev.Value())
	if pkg != "refer" {
		respond(tx, req, 489, "Bad Event", nil, sipgox.NewHeader("Allow-Events", "refer"))
		return
	}
	ref := d.findReferral(id, hasID)
	if ref == nil {
		respond(tx, req, 481, "Subscription Does Not Exist", nil)
		return
	}
	terminated := false
	if st := req.GetHeader("Subscription-State"); st != nil {
		state, _, _ := strings.Cut(st.Value(), ";")
		terminated = strings.EqualFold(strings.TrimSpace(state), "terminated")
	}
	ct := ""
	if h := req.ContentType(); h != nil {
		ct, _, _ = strings.Cut(h.Value(), ";")
		ct = strings.ToLower(strings.TrimSpace(ct))
	}
	var code int
	var reason string
	switch {
	case ct == "" && len(req.Body()) == 0 && terminated:
		// A last NOTIFY without a body (e.g. the subscription expired).
	case ct != "message/sipfrag":
		respond(tx, req, 415, "Unsupported Media Type", nil, sipgox.NewHeader("Accept", "message/sipfrag"))
		return
	default:
		var err error
		if code, reason, err = parseSipfrag(req.Body()); err != nil {
			respond(tx, req, 400, "Bad sipfrag", nil)
			return
		}
	}
	respond(tx, req, 200, "OK", nil)
	if terminated {
		delete(d.referrals, ref.cseq)
	}
	if ref.final || code == 0 && !terminated {
		return
	}
	final := code >= 200 || terminated
	ref.final = final
	d.log.Info("sip: transfer progress", "status", code, "final", final)
	if ref.onProgress != nil {
		ref.onProgress(ReferProgress{StatusCode: code, Reason: reason, Final: final})
	}
}

// findReferral returns the subscription a NOTIFY's Event id names, or
// without an id the oldest one (RFC 3515 §2.4.6: only the first REFER's
// NOTIFYs may omit it). A REFER still waiting for its answer matches ids up
// to two above its CSeq (digest retries raise it).
func (d *Dialog) findReferral(id uint32, hasID bool) *referral {
	var best *referral
	for _, r := range d.referrals {
		switch {
		case !hasID:
			if best == nil || r.cseq < best.cseq {
				best = r
			}
		case r.cseq == id, !r.answered && id > r.cseq && id-r.cseq <= 2:
			return r
		}
	}
	return best
}

// endReferrals gives every open subscription its final report when the
// dialog ends (loop goroutine).
func (d *Dialog) endReferrals() {
	keys := make([]uint32, 0, len(d.referrals))
	for k := range d.referrals {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		r := d.referrals[k]
		if !r.final && r.onProgress != nil {
			r.final = true
			r.onProgress(ReferProgress{Reason: "dialog ended", Final: true})
		}
	}
	d.referrals = nil
}

// parseEventHeader reads "refer;id=93809824" into the package (lower case)
// and the id parameter.
func parseEventHeader(v string) (pkg string, id uint32, hasID bool) {
	parts := strings.Split(v, ";")
	pkg = strings.ToLower(strings.TrimSpace(parts[0]))
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "id") {
			n, err := strconv.ParseUint(strings.TrimSpace(val), 10, 32)
			if err == nil {
				return pkg, uint32(n), true
			}
		}
	}
	return pkg, 0, false
}

// headerSource is a request or a response.
type headerSource interface {
	GetHeaders(name string) []sipgox.Header
	GetHeader(name string) sipgox.Header
}

// headerTokens returns the comma-separated tokens of every header called
// name (or its compact form), mapped by norm.
func headerTokens(res headerSource, name, compact string, norm func(string) string) []string {
	hs := res.GetHeaders(name)
	if compact != "" {
		hs = append(hs, res.GetHeaders(compact)...)
	}
	var out []string
	for _, h := range hs {
		for _, t := range strings.Split(h.Value(), ",") {
			if t = strings.TrimSpace(t); t != "" {
				out = append(out, norm(t))
			}
		}
	}
	return out
}

// PeerAllows reports whether the peer listed method ("REFER", "UPDATE",
// any case) in the Allow header of the 2xx that established the dialog.
// False also when that 2xx had no Allow header at all: RFC 3261 lets a UA
// omit it, so false means "not advertised", not "refused".
func (d *Dialog) PeerAllows(method string) bool {
	return slices.Contains(d.allow, strings.ToUpper(strings.TrimSpace(method)))
}

// PeerSupports reports whether the peer listed the option tag ext
// ("replaces", "timer", any case) in the Supported header of the 2xx that
// established the dialog. Check PeerSupports("replaces") before an attended
// transfer (ReferOptions.Replaces).
func (d *Dialog) PeerSupports(ext string) bool {
	return slices.Contains(d.supported, strings.ToLower(strings.TrimSpace(ext)))
}
