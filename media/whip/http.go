package whip

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// MaxNameLen is the longest publication name accepted, in bytes.
const MaxNameLen = 256

// errBadPath: a path that names no publication or resource.
var errBadPath = errors.New("whip: the path names no publication")

// parsePath splits an escaped request path into the publication name
// (unescaped) and the resource ID ("" for the endpoint). The name must be
// 1 to MaxNameLen bytes of valid UTF-8 without control characters; the ID,
// when present, is one more path segment.
func parsePath(escaped, prefix string) (name, id string, err error) {
	rest, ok := strings.CutPrefix(escaped, prefix)
	if !ok {
		return "", "", errBadPath
	}
	seg, id, _ := strings.Cut(rest, "/")
	if strings.Contains(id, "/") {
		return "", "", errBadPath
	}
	name, err = url.PathUnescape(seg)
	if err != nil || name == "" || len(name) > MaxNameLen || !utf8.ValidString(name) ||
		strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", "", errBadPath
	}
	return name, id, nil
}

// ServeHTTP serves the WHIP endpoint Prefix+NAME (POST, OPTIONS) and the
// publications' resources Prefix+NAME/ID (DELETE, OPTIONS).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if s.cfg.AllowOrigin != "" {
		h.Set("Access-Control-Allow-Origin", s.cfg.AllowOrigin)
		h.Set("Access-Control-Expose-Headers", "Location, Accept-Post")
	}
	name, id, err := parsePath(r.URL.EscapedPath(), s.cfg.Prefix)
	if err != nil {
		http.Error(w, "no publication name in the WHIP URL", http.StatusNotFound)
		return
	}
	methods := "OPTIONS, POST"
	if id != "" {
		methods = "OPTIONS, DELETE"
	}
	switch {
	case r.Method == http.MethodOptions:
		h.Set("Allow", methods)
		if s.cfg.AllowOrigin != "" {
			h.Set("Access-Control-Allow-Methods", methods)
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization")
		}
		if id == "" {
			h.Set("Accept-Post", "application/sdp")
		}
		w.WriteHeader(http.StatusNoContent)
	case id == "" && r.Method == http.MethodPost:
		s.servePost(w, r, name)
	case id != "" && r.Method == http.MethodDelete:
		p := s.lookupID(id)
		if p == nil || p.name != name {
			http.Error(w, "no such publication", http.StatusNotFound)
			return
		}
		p.stop()
		select {
		case <-p.done:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	default:
		h.Set("Allow", methods)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (s *Server) servePost(w http.ResponseWriter, r *http.Request, name string) {
	if s.cfg.Authorize != nil && !s.cfg.Authorize(w, r, name) {
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.EqualFold(mt, "application/sdp") {
		http.Error(w, "Content-Type must be application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBody))
	if err != nil {
		http.Error(w, "offer too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	p, err := s.reserve(name)
	if err != nil {
		writeError(w, err)
		return
	}
	answer, err := p.start(r.Context(), string(body))
	if err != nil {
		writeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", strings.TrimSuffix(r.URL.EscapedPath(), "/")+"/"+p.id)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// writeError answers err with its HTTP status.
func writeError(w http.ResponseWriter, err error) {
	var oe *offerError
	code := http.StatusInternalServerError
	switch {
	case errors.As(err, &oe):
		code = http.StatusBadRequest
	case errors.Is(err, ErrNameInUse):
		code = http.StatusConflict
	case errors.Is(err, ErrNoAudio):
		code = http.StatusNotAcceptable
	case errors.Is(err, ErrTooManyPublishers), errors.Is(err, ErrClosed), errors.Is(err, ErrNoCandidates):
		w.Header().Set("Retry-After", "1")
		code = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	http.Error(w, err.Error(), code)
}
