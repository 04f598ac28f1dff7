package callmgr

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// LogKind says what a call's log entry is about.
type LogKind string

// Log kinds.
const (
	// LogSIP: a SIP request sent or received, or a response (INVITE and
	// its answers, re-INVITEs, BYE, CANCEL, INFO, REFER/NOTIFY).
	LogSIP LogKind = "sip"
	// LogMedia: keyframe requests and keyframes, freezes, media timeouts,
	// injected sounds.
	LogMedia LogKind = "media"
	// LogOutput: an RTMP push's or a recording's state changed.
	LogOutput LogKind = "output"
	// LogDTMF: a DTMF digit received or digits sent.
	LogDTMF LogKind = "dtmf"
	// LogCall: the call's own life (started, ended).
	LogCall LogKind = "call"
)

// LogLevel is a log entry's severity.
type LogLevel string

// Log levels.
const (
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// LogEntry is one line of a call's event log: what explains its stream.
// Texts never carry secrets (no password, stream key or URL credentials).
type LogEntry struct {
	Time  time.Time
	Kind  LogKind
	Level LogLevel
	Text  string
}

// CallLogSize is how many entries a call's log keeps (the newest).
const CallLogSize = 200

// endedLogs is how many ended calls' logs the Manager remembers.
const endedLogs = 64

// callLog is a call's ring of log entries.
type callLog struct {
	mu    sync.Mutex
	ring  []LogEntry // grows to CallLogSize, then wraps at next
	next  int
	watch func(callID string, e LogEntry) // the Manager's watchers
}

// add appends e and hands it to the watchers, under the lock so that
// they get the entries of one call in order.
func (l *callLog) add(callID string, e LogEntry, watch func(string, LogEntry)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ring) < CallLogSize {
		l.ring = append(l.ring, e)
	} else {
		l.ring[l.next] = e
		l.next = (l.next + 1) % CallLogSize
	}
	if watch != nil {
		watch(callID, e)
	}
}

// entries returns the log, oldest first.
func (l *callLog) entries() []LogEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LogEntry, 0, len(l.ring))
	out = append(out, l.ring[l.next:]...)
	return append(out, l.ring[:l.next]...)
}

// logBook is the Manager's side of the calls' logs: its watchers and the
// logs of the calls that ended last. The zero value is ready.
type logBook struct {
	mu       sync.Mutex
	watchers map[uint64]func(string, LogEntry)
	seq      uint64
	all      func(string, LogEntry) // calls every watcher; nil: none
	ended    map[string]*callLog
	order    []string // ended call IDs, oldest first
}

func (b *logBook) watcher() func(string, LogEntry) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.all
}

func (b *logBook) rebuild() {
	if len(b.watchers) == 0 {
		b.all = nil
		return
	}
	fns := make([]func(string, LogEntry), 0, len(b.watchers))
	for _, fn := range b.watchers {
		fns = append(fns, fn)
	}
	b.all = func(id string, e LogEntry) {
		for _, fn := range fns {
			fn(id, e)
		}
	}
}

func (b *logBook) remember(id string, l *callLog) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended == nil {
		b.ended = make(map[string]*callLog)
	}
	if _, ok := b.ended[id]; !ok {
		b.order = append(b.order, id)
	}
	b.ended[id] = l
	for len(b.order) > endedLogs {
		delete(b.ended, b.order[0])
		b.order = b.order[1:]
	}
}

func (b *logBook) endedLog(id string) (*callLog, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	l, ok := b.ended[id]
	return l, ok
}

// WatchLog calls fn with every new entry of every call's log, on the
// goroutine that logged it (the call's run loop, a sink's or the media
// session's goroutine), in order per call. fn must not block and must not
// call back into the Manager. The returned function stops the watch.
func (m *Manager) WatchLog(fn func(callID string, e LogEntry)) (stop func()) {
	b := &m.logs
	b.mu.Lock()
	if b.watchers == nil {
		b.watchers = make(map[uint64]func(string, LogEntry))
	}
	b.seq++
	id := b.seq
	b.watchers[id] = fn
	b.rebuild()
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.watchers, id)
			b.rebuild()
			b.mu.Unlock()
		})
	}
}

// CallLog returns the call's log (at most CallLogSize entries, oldest
// first): a live call's, or one of the last calls that ended (the Manager
// remembers 64). ErrCallNotFound otherwise.
func (m *Manager) CallLog(callID string) ([]LogEntry, error) {
	if c, ok := m.Call(callID); ok {
		return c.Log(), nil
	}
	if l, ok := m.logs.endedLog(callID); ok {
		return l.entries(), nil
	}
	return nil, ErrCallNotFound
}

// Log returns the call's log, oldest first (at most CallLogSize entries).
func (c *Call) Log() []LogEntry { return c.clog.entries() }

// logf adds an entry to the call's log. Callers pass only texts without
// secrets: SIP codes and reasons, sink IDs, redacted URLs.
func (c *Call) logf(kind LogKind, level LogLevel, format string, args ...any) {
	text := format
	if len(args) > 0 {
		text = fmt.Sprintf(format, args...)
	}
	if len(text) > 300 {
		text = strings.ToValidUTF8(text[:300], "")
	}
	c.clog.add(c.id, LogEntry{Time: time.Now(), Kind: kind, Level: level, Text: text}, c.m.logs.watcher())
}

// sipLevel is the level of a SIP response's entry.
func sipLevel(code int) LogLevel {
	switch {
	case code >= 500:
		return LogError
	case code >= 400:
		return LogWarn
	}
	return LogInfo
}

// logResponse logs a response to the call's INVITE: received for a call we
// placed, sent for one we answer.
func (c *Call) logResponse(code int, reason string) {
	arrow := "←"
	if c.in != nil {
		arrow = "→"
	}
	c.logf(LogSIP, sipLevel(code), "%s %d %s (INVITE)", arrow, code, reason)
}

// logEnd logs how the call ended; teardown only.
func (c *Call) logEnd() {
	f := c.final
	level := LogInfo
	if f.status == StatusFailed {
		level = LogError
	}
	text := "call ended: " + string(f.status)
	if f.code != 0 {
		text += fmt.Sprintf(" (%d %s)", f.code, f.reason)
	} else if f.reason != "" {
		text += " (" + f.reason + ")"
	}
	if f.err != nil && f.status == StatusFailed {
		text += ": " + setupReason(f.err)
	}
	c.logf(LogCall, level, "%s", text)
}

// logSinkAdded logs a new output (not the taps of inject_stream).
func (c *Call) logSinkAdded(si SinkInfo) {
	switch si.Kind {
	case SinkKindTap:
	case SinkKindRTMP:
		c.logf(LogOutput, LogInfo, "rtmp output %s added: %s", si.ID, redactURL(si.RTMPURL))
	case SinkKindRecord:
		c.logf(LogOutput, LogInfo, "recording %s started: %s", si.ID, filepath.Base(si.Path))
	default:
		c.logf(LogOutput, LogInfo, "%s output %s added", si.Kind, si.ID)
	}
}

// logSink logs an output's state change from si.Status to st.
func (c *Call) logSink(si SinkInfo, st SinkStatus, reason string) {
	if si.Kind == SinkKindTap {
		return
	}
	level := LogInfo
	what := st.String()
	switch st {
	case SinkActive:
		if si.Status == SinkLost {
			what = "active again (reconnected)"
		}
	case SinkLost:
		level, what = LogWarn, "connection lost, reconnecting"
	case SinkFailed:
		level = LogError
	}
	if reason != "" {
		what += ": " + reason
	}
	c.logf(LogOutput, level, "%s output %s %s", si.Kind, si.ID, what)
}

func holdWord(on bool) string {
	if on {
		return "hold"
	}
	return "unhold"
}

// peerHoldWord says what a peer's re-INVITE did to the direction.
func peerHoldWord(was, now bool) string {
	switch {
	case now && !was:
		return "the peer holds"
	case was && !now:
		return "the peer resumes"
	}
	return "session refresh"
}
