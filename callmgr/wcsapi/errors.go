package wcsapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// ErrorBody is the JSON error body, in the shape the product's Spring-based
// server returns, so clients that parse it keep working: its members in the
// order of the product's documented example (wcs-docs "Stream capturing
// from a SIP call", Known issues 3; TestReplayWCSDocs).
type ErrorBody struct {
	Error string `json:"error"`
	// Exception is the Java exception class the product names, e.g.
	// "com.flashphoner.rest.server.exception.InternalErrorException"
	// (wcs-docs "Stream capturing from a SIP call", Known issues 3, the one
	// the docs show); other statuses follow its pattern from the status
	// text (NotFoundException, ConflictException, BadRequestException...).
	Exception string `json:"exception"`
	Message   string `json:"message"`
	Path      string `json:"path"`
	Status    int    `json:"status"`
	Timestamp int64  `json:"timestamp"` // Unix milliseconds
}

// httpError is an error that knows its HTTP status.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errStatus(status int, msg string) error { return &httpError{status: status, msg: msg} }

// writeError writes err as a JSON error body. The status comes from an
// *httpError or *fieldError in err's chain, or from the service's sentinel
// errors (see statusOf); anything else is a 500 whose message is not shown,
// since it may carry internals.
func writeError(w http.ResponseWriter, r *http.Request, err error, now time.Time) {
	status, msg := statusOf(err)
	body := ErrorBody{
		Timestamp: now.UnixMilli(),
		Status:    status,
		Error:     http.StatusText(status),
		Exception: exceptionOf(status),
		Message:   msg,
		Path:      r.URL.Path,
	}
	writeJSON(w, status, body)
}

// exceptionPackage is where the product's REST exceptions live.
const exceptionPackage = "com.flashphoner.rest.server.exception."

// exceptionOf names the product-style exception class of an HTTP status:
// 500 is the documented InternalErrorException, others are the status text
// without spaces and punctuation plus "Exception".
func exceptionOf(status int) string {
	text := http.StatusText(status)
	if status == http.StatusInternalServerError || text == "" {
		return exceptionPackage + "InternalErrorException"
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, text)
	return exceptionPackage + name + "Exception"
}

func statusOf(err error) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.status, he.msg
	}
	var fe *fieldError
	if errors.As(err, &fe) {
		return http.StatusBadRequest, err.Error()
	}
	if status, ok := serviceStatus(err); ok {
		return status, err.Error()
	}
	return http.StatusInternalServerError, "internal error"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"Internal Server Error","exception":"` + exceptionPackage + `InternalErrorException","message":"encoding the response failed","status":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
