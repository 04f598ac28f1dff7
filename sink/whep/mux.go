package whep

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// ErrNameInUse is what a *NameInUseError is (errors.Is).
var ErrNameInUse = errors.New("whep: stream name in use")

// NameInUseError is Mux.Reserve's refusal of a name another owner holds.
type NameInUseError struct {
	Name  string // the name asked for
	Owner string // who holds it
}

// Error says which name and who holds it.
func (e *NameInUseError) Error() string {
	return fmt.Sprintf("whep: stream %q is already used by %q", e.Name, e.Owner)
}

// Is reports whether target is ErrNameInUse.
func (e *NameInUseError) Is(target error) bool { return target == ErrNameInUse }

// MuxConfig configures a Mux. The zero value serves under /whep/ and lets
// every viewer in.
type MuxConfig struct {
	// Prefix is the path the Mux is mounted at, ending with '/': requests
	// are for Prefix+NAME (the WHEP endpoint) and Prefix+NAME/VIEWER (a
	// viewer's resource). Zero means "/whep/".
	Prefix string
	// Authorize, when set, is asked before a request reaches a stream's
	// sink: it returns true to let the request in, or writes the refusal
	// itself and returns false. name is the stream the request is for
	// (unescaped; "" when the path has none). DELETE and PATCH are not
	// asked about: they address a viewer's own resource, whose URL (with a
	// random ID) only that viewer was given. Nil lets everyone in.
	Authorize func(w http.ResponseWriter, r *http.Request, name string) bool
}

// Mux routes WHEP requests to named sinks: Prefix+NAME to the sink
// registered as NAME, Prefix+NAME/VIEWER to that sink's viewer resource. A
// name belongs to one owner (a call ID, say) at a time. The Mux never
// closes a sink: whoever feeds it does.
//
// A name is first reserved by its owner (Reserve), which fails while another
// owner holds it, then given its sink (Attach); requests for a name without a
// sink get 404. Release, ReleaseOwner and ReleaseID forget names.
type Mux struct {
	prefix    string
	authorize func(http.ResponseWriter, *http.Request, string) bool

	mu      sync.Mutex
	streams map[string]*muxEntry
}

type muxEntry struct {
	owner string
	sink  *Sink  // nil until attached
	id    string // the caller's ID for the sink (Attach)
}

// NewMux returns an empty Mux.
func NewMux(cfg MuxConfig) *Mux {
	if cfg.Prefix == "" {
		cfg.Prefix = "/whep/"
	}
	return &Mux{prefix: cfg.Prefix, authorize: cfg.Authorize, streams: make(map[string]*muxEntry)}
}

// Reserve claims name for owner. It fails with a *NameInUseError while
// another owner holds the name; reserving a name owner already holds is
// allowed.
func (m *Mux) Reserve(name, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.streams[name]; ok && e.owner != owner {
		return &NameInUseError{Name: name, Owner: e.owner}
	} else if ok {
		return nil
	}
	m.streams[name] = &muxEntry{owner: owner}
	return nil
}

// Attach gives name, reserved by owner, its sink; id is the caller's name for
// the sink, for ReleaseID. It reports false when owner no longer holds name
// (it was released meanwhile); the sink is then not served.
func (m *Mux) Attach(name, owner string, s *Sink, id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.streams[name]
	if !ok || e.owner != owner {
		return false
	}
	e.sink, e.id = s, id
	return true
}

// Release forgets name if owner holds it.
func (m *Mux) Release(name, owner string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.streams[name]; ok && e.owner == owner {
		delete(m.streams, name)
	}
}

// ReleaseOwner forgets every name owner holds.
func (m *Mux) ReleaseOwner(owner string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, e := range m.streams {
		if e.owner == owner {
			delete(m.streams, name)
		}
	}
}

// ReleaseID forgets the name whose sink was attached with id ("" does
// nothing).
func (m *Mux) ReleaseID(id string) {
	if id == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, e := range m.streams {
		if e.id == id {
			delete(m.streams, name)
		}
	}
}

// Owner returns the owner of name once its sink is attached.
func (m *Mux) Owner(name string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.streams[name]; ok && e.sink != nil {
		return e.owner, true
	}
	return "", false
}

// MuxStats are a Mux's streams (names with a sink) and their viewers now.
type MuxStats struct {
	Streams int
	Viewers int
}

// Stats counts the streams and their viewers.
func (m *Mux) Stats() MuxStats {
	m.mu.Lock()
	sinks := make([]*Sink, 0, len(m.streams))
	for _, e := range m.streams {
		if e.sink != nil {
			sinks = append(sinks, e.sink)
		}
	}
	m.mu.Unlock()
	st := MuxStats{Streams: len(sinks)}
	for _, s := range sinks {
		st.Viewers += s.Stats().Viewers
	}
	return st
}

func (m *Mux) lookup(name string) *Sink {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.streams[name]; ok {
		return e.sink
	}
	return nil
}

// StreamName is the unescaped NAME of a request for prefix+NAME[/...]
// (prefix ends with '/'); "" when the path has none or does not unescape.
func StreamName(r *http.Request, prefix string) string {
	rest, _ := strings.CutPrefix(r.URL.EscapedPath(), prefix)
	seg, _, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(seg)
	if err != nil {
		return ""
	}
	return name
}

// ServeHTTP routes Prefix+NAME (POST an offer) and Prefix+NAME/VIEWER
// (DELETE, PATCH) to the sink of NAME, after Config.Authorize.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m.authorize != nil && r.Method != http.MethodDelete && r.Method != http.MethodPatch &&
		!m.authorize(w, r, StreamName(r, m.prefix)) {
		return
	}
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), m.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	seg, _, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(seg)
	if err != nil || name == "" {
		http.Error(w, "no stream name in the WHEP URL", http.StatusNotFound)
		return
	}
	s := m.lookup(name)
	if s == nil {
		http.Error(w, "no live call streams as "+truncate(name, 64), http.StatusNotFound)
		return
	}
	s.ServeHTTP(w, r)
}

// truncate shortens s to n bytes for a message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
