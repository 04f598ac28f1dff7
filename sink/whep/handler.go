package whep

import (
	"bufio"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"

	"github.com/pion/webrtc/v4"
)

// maxBody bounds an SDP offer or a trickle fragment.
const maxBody = 64 << 10

// ServeHTTP implements the WHEP endpoint and its viewer resources.
//
// POST to any path that is not a viewer resource creates a viewer; the
// resource's URL is that path plus "/" plus the viewer's ID, as the client
// sent the path (http.StripPrefix in front of the handler is fine). Mount the
// handler for the endpoint's path and everything below it, e.g.
// mux.Handle("/whep/call1/", s) together with mux.Handle("/whep/call1", s).
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if s.cfg.AllowOrigin != "" {
		h.Set("Access-Control-Allow-Origin", s.cfg.AllowOrigin)
		h.Set("Access-Control-Expose-Headers", "Location, Accept-Patch, Accept-Post, ETag")
	}
	id := path.Base(r.URL.Path)
	s.mu.Lock()
	v := s.viewers[id]
	s.mu.Unlock()

	if v != nil {
		switch r.Method {
		case http.MethodDelete:
			v.stop()
			select {
			case <-v.done:
			case <-r.Context().Done():
			}
			w.WriteHeader(http.StatusOK)
		case http.MethodPatch:
			s.servePatch(w, r, v)
		case http.MethodOptions:
			s.preflight(w, "OPTIONS, PATCH, DELETE")
			h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
			w.WriteHeader(http.StatusNoContent)
		default:
			h.Set("Allow", "OPTIONS, PATCH, DELETE")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
		return
	}

	switch r.Method {
	case http.MethodPost:
		s.servePost(w, r)
	case http.MethodOptions:
		s.preflight(w, "OPTIONS, POST")
		h.Set("Accept-Post", "application/sdp")
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete, http.MethodPatch:
		http.Error(w, "no such viewer", http.StatusNotFound)
	default:
		h.Set("Allow", "OPTIONS, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (s *Sink) preflight(w http.ResponseWriter, methods string) {
	h := w.Header()
	h.Set("Allow", methods)
	if s.cfg.AllowOrigin != "" {
		h.Set("Access-Control-Allow-Methods", methods)
		h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, If-Match")
	}
}

func hasContentType(r *http.Request, want string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && strings.EqualFold(mt, want)
}

func (s *Sink) servePost(w http.ResponseWriter, r *http.Request) {
	if !hasContentType(r, "application/sdp") {
		http.Error(w, "Content-Type must be application/sdp", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "offer too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	v, answer, err := s.addViewer(r.Context(), string(body))
	if err != nil {
		var oe *offerError
		switch {
		case errors.As(err, &oe):
			http.Error(w, oe.Error(), http.StatusBadRequest)
		case errors.Is(err, ErrNoCommonCodec):
			http.Error(w, err.Error(), http.StatusNotAcceptable)
		case errors.Is(err, ErrNoMedia), errors.Is(err, ErrTooManyViewers):
			w.Header().Set("Retry-After", "1")
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case errors.Is(err, ErrClosed):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			// The client went away.
			http.Error(w, "request cancelled", http.StatusServiceUnavailable)
		default:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/sdp")
	h.Set("Location", resourcePath(r)+"/"+v.id)
	h.Set("ETag", `"`+v.id+`"`)
	h.Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// resourcePath is the endpoint's path as the client addressed it (before any
// http.StripPrefix), without a trailing slash.
func resourcePath(r *http.Request) string {
	p := r.URL.EscapedPath()
	if r.RequestURI != "" && !strings.Contains(r.RequestURI, "://") {
		if u, err := url.ParseRequestURI(r.RequestURI); err == nil {
			p = u.EscapedPath()
		}
	}
	return strings.TrimSuffix(p, "/")
}

// servePatch adds trickled ICE candidates (RFC 8840 SDP fragment). ICE
// restarts are not supported.
func (s *Sink) servePatch(w http.ResponseWriter, r *http.Request, v *viewer) {
	if !hasContentType(r, "application/trickle-ice-sdpfrag") {
		http.Error(w, "Content-Type must be application/trickle-ice-sdpfrag", http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "fragment too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	cands, err := parseSDPFrag(string(body), v.pc.RemoteDescription())
	if errors.Is(err, errICERestart) {
		// WHIP/WHEP: a resource doing trickle but not ICE restarts
		// answers 422 to a restart request.
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for _, c := range cands {
		if err := v.pc.AddICECandidate(c); err != nil {
			http.Error(w, "bad candidate: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

var errICERestart = errors.New("whep: ICE restart not supported")

// parseSDPFrag extracts the candidates of a trickle-ice-sdpfrag body. A
// fragment whose ice-ufrag differs from the offer's asks for an ICE restart,
// which is refused.
func parseSDPFrag(frag string, remote *webrtc.SessionDescription) ([]webrtc.ICECandidateInit, error) {
	var out []webrtc.ICECandidateInit
	var mid *string
	mline := -1
	sc := bufio.NewScanner(strings.NewReader(frag))
	sc.Buffer(make([]byte, 0, 4096), maxBody)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "m="):
			mline++
			mid = nil
		case strings.HasPrefix(line, "a=mid:"):
			m := strings.TrimPrefix(line, "a=mid:")
			mid = &m
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			uf := strings.TrimPrefix(line, "a=ice-ufrag:")
			if remote != nil && !strings.Contains(remote.SDP, "a=ice-ufrag:"+uf+"\r") &&
				!strings.Contains(remote.SDP, "a=ice-ufrag:"+uf+"\n") {
				return nil, errICERestart
			}
		case strings.HasPrefix(line, "a=candidate:"):
			c := webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a=")}
			if mid != nil {
				m := *mid
				c.SDPMid = &m
			} else {
				i := uint16(max(mline, 0))
				c.SDPMLineIndex = &i
			}
			out = append(out, c)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
