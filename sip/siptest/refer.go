package siptest

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Refer is a REFER request the peer received on a call (RFC 3515), and
// what became of it.
type Refer struct {
	// ReferTo is the Refer-To header's value as received
	// ("<sip:carol@pbx.example>").
	ReferTo string
	// ReferredBy is the Referred-By header's value, "" when absent.
	ReferredBy string
	// Replaces is the Replaces header carried in the Refer-To URI (an
	// attended transfer, RFC 3891), unescaped:
	// "callid;to-tag=...;from-tag=...". Empty for a blind transfer.
	Replaces string
	// Request is the REFER as received.
	Request Request
	// Answer is the status code the peer answered the REFER with (202, or
	// Script.ReferReject).
	Answer int
	// NotifyAnswers are the caller's answers to the NOTIFYs the peer sent
	// for this REFER, in order (200 for each accepted one; 0 when a NOTIFY
	// got no answer).
	NotifyAnswers []int
}

// allowHeader is what the peer says it accepts in its 2xx and OPTIONS.
const allowHeader = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY"

// referReplaces returns the unescaped Replaces header of a Refer-To value.
func referReplaces(referTo string) string {
	uri := strings.TrimSpace(referTo)
	if i := strings.IndexByte(uri, '<'); i >= 0 {
		if j := strings.IndexByte(uri[i:], '>'); j > 0 {
			uri = uri[i+1 : i+j]
		}
	}
	_, headers, ok := strings.Cut(uri, "?")
	if !ok {
		return ""
	}
	for _, h := range strings.Split(headers, "&") {
		name, value, _ := strings.Cut(h, "=")
		if strings.EqualFold(name, "Replaces") {
			if v, err := url.PathUnescape(value); err == nil {
				return v
			}
		}
	}
	return ""
}

// onRefer answers a REFER in a call: 202 Accepted, then NOTIFYs with the
// transfer's progress as message/sipfrag, "SIP/2.0 100 Trying" and the
// final status (Script.ReferResult), as a phone does once it has called
// the target (the peer does not place that call).
func (p *Peer) onRefer(req *sip.Request, tx sip.ServerTransaction) {
	c := p.call(req)
	if c == nil {
		p.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	r := copyRequest(req)
	ref := Refer{ReferTo: r.Header("Refer-To"), ReferredBy: r.Header("Referred-By"), Request: r, Answer: 202}
	if ref.ReferTo == "" {
		ref.ReferTo = r.Header("r")
	}
	if ref.ReferredBy == "" {
		ref.ReferredBy = r.Header("b")
	}
	ref.Replaces = referReplaces(ref.ReferTo)
	c.mu().Lock()
	if c.vanished {
		c.mu().Unlock()
		return
	}
	// The dialog is confirmed once the 200 OK is sent (RFC 3261 §12.1.1):
	// a REFER may overtake the caller's ACK.
	if c.end != EndNone || !c.answered {
		c.mu().Unlock()
		p.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	switch {
	case ref.ReferTo == "":
		ref.Answer = 400
	case c.script.ReferReject != 0:
		ref.Answer = c.script.ReferReject
	}
	i := len(c.refers)
	c.refers = append(c.refers, ref)
	p.n.broadcast()
	c.mu().Unlock()
	if ref.Answer != 202 {
		p.respond(req, tx, ref.Answer, reasonPhrase(ref.Answer), nil)
		return
	}
	p.respond(req, tx, 202, "Accepted", nil, p.contact())
	// RFC 3515 §2.4.6: only NOTIFYs for a dialog's first REFER may leave
	// out the id; later ones name the REFER's CSeq.
	event := "refer"
	if i > 0 {
		event += ";id=" + strconv.FormatUint(uint64(req.CSeq().SeqNo), 10)
	}
	p.spawn(func() { c.notifyTransfer(i, event) })
}

// notifyTransfer sends the NOTIFYs of the i-th REFER.
func (c *PeerCall) notifyTransfer(i int, event string) {
	final := c.script.ReferResult
	if final == 0 {
		final = 200
	}
	steps := []struct {
		code  int
		state string
	}{{100, "active;expires=60"}, {final, "terminated;reason=noresource"}}
	for k, s := range steps {
		if k > 0 && c.script.ReferDelay > 0 {
			t := time.NewTimer(c.script.ReferDelay)
			select {
			case <-t.C:
			case <-c.done:
				t.Stop()
				return
			case <-c.p.closing:
				t.Stop()
				return
			}
		}
		code := c.sendNotify(event, s.state, "SIP/2.0 "+strconv.Itoa(s.code)+" "+reasonPhrase(s.code)+"\r\n")
		c.mu().Lock()
		c.refers[i].NotifyAnswers = append(c.refers[i].NotifyAnswers, code)
		c.p.n.broadcast()
		c.mu().Unlock()
		if code == 0 || code >= 300 {
			return
		}
	}
	if c.script.HangupAfterRefer && final >= 200 && final < 300 {
		_ = c.Hangup(context.Background())
	}
}

// sendNotify sends one NOTIFY of the refer event package and returns the
// caller's status code (0: none).
func (c *PeerCall) sendNotify(event, state, sipfrag string) int {
	c.mu().Lock()
	ok := c.end == EndNone && !c.vanished
	c.mu().Unlock()
	if !ok {
		return 0
	}
	req := c.newRequest(sip.NOTIFY)
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Subscription-State", state))
	req.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag;version=2.0"))
	req.SetBody([]byte(sipfrag))
	ctx, cancel := context.WithTimeout(context.Background(), 32*sip.T1)
	defer cancel()
	res, err := c.do(ctx, req)
	if err != nil {
		return 0
	}
	return res.StatusCode
}

// Refers returns the REFERs received on the call, in order.
func (c *PeerCall) Refers() []Refer {
	c.mu().Lock()
	defer c.mu().Unlock()
	return copyRefers(c.refers)
}

// WaitRefers waits until at least n REFERs were received and, for those
// the peer accepted, all their NOTIFYs were answered (or failed), and
// returns them all.
func (c *PeerCall) WaitRefers(ctx context.Context, n int) ([]Refer, error) {
	var out []Refer
	err := c.p.n.wait(ctx, c.p.closing, func() bool {
		if len(c.refers) < n {
			return false
		}
		for _, r := range c.refers {
			if r.Answer == 202 && !c.notifiesDone(r) {
				return false
			}
		}
		out = copyRefers(c.refers)
		return true
	})
	return out, err
}

// notifiesDone reports whether the peer is done notifying r (lock held).
func (c *PeerCall) notifiesDone(r Refer) bool {
	n := len(r.NotifyAnswers)
	return n == 2 || n > 0 && (r.NotifyAnswers[n-1] == 0 || r.NotifyAnswers[n-1] >= 300) || c.end != EndNone
}

func copyRefers(rs []Refer) []Refer {
	out := make([]Refer, len(rs))
	for i, r := range rs {
		out[i] = r
		out[i].NotifyAnswers = append([]int(nil), r.NotifyAnswers...)
	}
	return out
}

// SDPDirections returns the direction of each m= section of the request's
// SDP body, in order ("sendrecv", "sendonly", "recvonly", "inactive"): the
// section's own a= attribute, else the session-level one, else sendrecv.
// Nil without a body. For re-INVITEs: PeerCall.Reinvites()[i].SDPDirections().
func (r *Request) SDPDirections() []string {
	session := "sendrecv"
	var out []string
	for _, l := range strings.Split(string(r.Body), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "m="):
			out = append(out, session)
		case l == "a=sendrecv" || l == "a=sendonly" || l == "a=recvonly" || l == "a=inactive":
			if len(out) == 0 {
				session = l[2:]
			} else {
				out[len(out)-1] = l[2:]
			}
		}
	}
	return out
}
