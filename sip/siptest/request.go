package siptest

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Header is one SIP header field as received.
type Header struct {
	Name, Value string
}

// Request is a SIP request the peer received, copied out of the SIP stack.
type Request struct {
	// Method is "INVITE", "INFO", "BYE", ...
	Method string
	// URI is the Request-URI.
	URI string
	// Headers are all header fields in the order received.
	Headers []Header
	// Body is the message body (nil when empty).
	Body []byte
	// Source is the host:port the request came from.
	Source string
}

// Header returns the value of the first header field called name
// (case-insensitive; compact forms are not expanded), or "".
func (r *Request) Header(name string) string {
	for _, h := range r.Headers {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// ContentType returns the Content-Type header's value, or "".
func (r *Request) ContentType() string {
	if v := r.Header("Content-Type"); v != "" {
		return v
	}
	return r.Header("c")
}

func copyRequest(req *sip.Request) Request {
	r := Request{
		Method: string(req.Method),
		URI:    req.Recipient.String(),
		Source: req.Source(),
	}
	for _, h := range req.Headers() {
		r.Headers = append(r.Headers, Header{Name: h.Name(), Value: h.Value()})
	}
	if b := req.Body(); len(b) > 0 {
		r.Body = append([]byte(nil), b...)
	}
	return r
}
