package wcsapi

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// redacted replaces a secret wherever one is removed.
const redacted = "***"

// redactURL hides the secrets an RTMP (or any) URL may carry: the user
// information and the query go, and for rtmp:// and rtmps:// everything
// after the application (the first path segment), which is where stream
// keys are ("rtmp://u:p@host/live/KEY?token=T" -> "rtmp://host/live/***").
// A URL that does not parse is hidden whole.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return redacted
	}
	out := u.Scheme + "://" + u.Host
	p := u.EscapedPath()
	switch strings.ToLower(u.Scheme) {
	case "rtmp", "rtmps":
		app, rest, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		if app != "" {
			out += "/" + app
		}
		if strings.Trim(rest, "/") != "" {
			out += "/" + redacted
		}
	default:
		out += p
	}
	if u.RawQuery != "" || u.ForceQuery {
		out += "?" + redacted
	}
	return out
}

// urlRE finds URLs in free text (log lines, error texts).
var urlRE = regexp.MustCompile(`(?i)\b(?:rtmps?|https?|sips?|wss?)://[^\s"'<>\x60]+`)

// urlSecrets are the parts of a URL that are secrets: its password, user
// name, query and (RTMP) the path after the application.
func urlSecrets(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil {
		return []string{raw}
	}
	var out []string
	if u.User != nil {
		out = append(out, u.User.Username())
		if p, ok := u.User.Password(); ok {
			out = append(out, p, url.QueryEscape(p))
		}
	}
	if u.RawQuery != "" {
		out = append(out, u.RawQuery)
		for _, vs := range u.Query() {
			out = append(out, vs...)
		}
	}
	if s := strings.ToLower(u.Scheme); s == "rtmp" || s == "rtmps" {
		if _, rest, ok := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/"); ok {
			out = append(out, strings.Trim(rest, "/"))
		}
	}
	return out
}

// Secrets are the secret strings a Handler has seen (stream keys, SIP
// passwords, URL credentials), removed from every log line (see
// NewRedactingHandler), error text and event. Structured fields are redacted where they are built; this is the
// net under them, for free text that quotes a secret. Secrets shorter than
// minSecret are not searched for (they would match everywhere); at most
// maxSecrets are kept (the oldest go first).
type Secrets struct {
	mu    sync.RWMutex
	set   map[string]bool
	order []string
	repl  *strings.Replacer
}

const (
	minSecret  = 6
	maxSecrets = 10000
)

// NewSecrets returns an empty set.
func NewSecrets() *Secrets { return &Secrets{set: map[string]bool{}} }

// Add remembers vals as secrets (values shorter than 6 bytes are ignored).
// A nil *Secrets ignores them.
func (s *Secrets) Add(vals ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	for _, v := range vals {
		if len(v) < minSecret || s.set[v] {
			continue
		}
		s.set[v] = true
		s.order = append(s.order, v)
		changed = true
	}
	for len(s.order) > maxSecrets {
		delete(s.set, s.order[0])
		s.order = s.order[1:]
		changed = true
	}
	if !changed {
		return
	}
	// Longest first, so that a secret containing another goes whole.
	list := slices.Clone(s.order)
	slices.SortFunc(list, func(a, b string) int { return len(b) - len(a) })
	pairs := make([]string, 0, 2*len(list))
	for _, v := range list {
		pairs = append(pairs, v, redacted)
	}
	s.repl = strings.NewReplacer(pairs...)
}

// Scrub returns text without any known secret and with every URL in it
// redacted (user information, query and an RTMP URL's stream name go).
func (s *Secrets) Scrub(text string) string {
	if text == "" {
		return text
	}
	if s != nil {
		s.mu.RLock()
		r := s.repl
		s.mu.RUnlock()
		if r != nil {
			text = r.Replace(text)
		}
	}
	if strings.Contains(text, "://") {
		text = urlRE.ReplaceAllStringFunc(text, redactURL)
	}
	return text
}

// networkWords are what Go's and the OS's connection errors say. An error
// text with one of them is replaced by a generic message before it reaches
// an API caller, so that calls and pushes cannot be used as a port scanner
// (refused, timed out and unreachable look the same from outside). The log
// keeps the details.
var networkWords = []string{
	"dial ", "connect:", "connection refused", "no route to host", "i/o timeout",
	"network is unreachable", "no such host", "lookup ", "host is down",
	"connection reset", "broken pipe", "tls:", "x509:", "handshake", "deadline exceeded",
}

// publicReason is reason as an API caller may see it: connection errors
// become "connection failed", secrets are scrubbed.
func publicReason(reason string, sec *Secrets) string {
	lo := strings.ToLower(reason)
	for _, w := range networkWords {
		if strings.Contains(lo, w) {
			return "connection failed"
		}
	}
	return sec.Scrub(reason)
}

// redactingHandler is a slog.Handler that scrubs every message and string
// attribute (and errors and Stringers) through secrets, so that no log line
// carries a stream key or password, whoever logs it.
type redactingHandler struct {
	next slog.Handler
	sec  *Secrets
}

// NewRedactingHandler returns a slog.Handler that passes every record to
// next with its message and string attributes (errors and Stringers too)
// scrubbed through sec: give the Manager and the Handler a logger made of it
// and no log line carries a stream key or password, whoever logs it.
func NewRedactingHandler(next slog.Handler, sec *Secrets) slog.Handler {
	return &redactingHandler{next: next, sec: sec}
}

func (h *redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.sec.Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *redactingHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.sec.Scrub(v.String()))
	case slog.KindGroup:
		g := v.Group()
		out := make([]any, 0, len(g))
		for _, ga := range g {
			out = append(out, h.attr(ga))
		}
		return slog.Group(a.Key, out...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.sec.Scrub(x.Error()))
		case interface{ String() string }:
			return slog.String(a.Key, h.sec.Scrub(x.String()))
		case []byte:
			return slog.String(a.Key, h.sec.Scrub(string(x)))
		default:
			return slog.String(a.Key, h.sec.Scrub(fmt.Sprintf("%+v", x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func (h *redactingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = h.attr(a)
	}
	return &redactingHandler{next: h.next.WithAttrs(out), sec: h.sec}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{next: h.next.WithGroup(name), sec: h.sec}
}
