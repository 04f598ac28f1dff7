package wcsapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/sipstream/sipstream/callmgr"
)

// The calls' event logs (issue 19): POST /rest-api/call/log {callId}
// returns a call's last callmgr.CallLogSize entries, and every new entry is
// a "log" event on GET /events.

// LogEntry is one entry of a call's log.
type LogEntry struct {
	// T is when it happened (unix ms).
	T int64 `json:"t"`
	// Kind is sip, media, output, dtmf or call.
	Kind string `json:"kind"`
	// Text says what happened ("← 200 OK (INVITE)"); never a secret.
	Text string `json:"text"`
	// Level is info, warn or error.
	Level string `json:"level"`
}

// CallLog is the answer of /call/log.
type CallLog struct {
	CallID  string     `json:"callId"`
	Entries []LogEntry `json:"entries"`
}

// logEvent is the data of a "log" event.
type logEvent struct {
	CallID string   `json:"callId"`
	Entry  LogEntry `json:"entry"`
}

// logEntryOf is the REST form of e, with the secrets this server knows
// scrubbed (callmgr's texts carry none; a reason a peer or an RTMP server
// sent might quote one back).
func (s *server) logEntryOf(e callmgr.LogEntry) LogEntry {
	return LogEntry{T: e.Time.UnixMilli(), Kind: string(e.Kind), Level: string(e.Level), Text: s.logText(e.Text)}
}

// logText is a log entry's text as an API caller may see it: from the
// first ": "-separated part that is a connection error on, the text
// becomes "connection failed", as publicReason makes of errors (the server's log keeps the
// details), and secrets are scrubbed.
func (s *server) logText(text string) string {
	for i := 0; i <= len(text); {
		seg := text[i:]
		next := strings.Index(seg, ": ")
		if next >= 0 {
			seg = seg[:next+1] // "connect:" is one of the words
		}
		if publicReason(seg, s.secrets) == "connection failed" {
			text = text[:i] + "connection failed"
			break
		}
		if next < 0 {
			break
		}
		i += next + 2
	}
	return s.secrets.Scrub(text)
}

// publishLog is the Manager's log watch: it sends the entry to the event
// stream. It never blocks.
func (s *server) publishLog(callID string, e callmgr.LogEntry) {
	if s.hub.subscribers() == 0 {
		return
	}
	b, err := json.Marshal(logEvent{CallID: callID, Entry: s.logEntryOf(e)})
	if err != nil {
		return
	}
	s.hub.publish(sseMessage("log", b))
}

// callLog serves POST /rest-api/call/log {callId}: a live call's log, or
// that of a call that ended lately (the Manager remembers the last 64);
// 404 otherwise.
func (s *server) callLog(w http.ResponseWriter, r *http.Request) error {
	id, err := s.callIDOnly(w, r)
	if err != nil {
		return err
	}
	if s.ops == nil {
		return errStatus(http.StatusNotFound, "call logs are not available here")
	}
	entries, err := s.ops.m.CallLog(id)
	if errors.Is(err, callmgr.ErrCallNotFound) {
		return errStatus(http.StatusNotFound, "no such call "+truncate(id, 64))
	}
	if err != nil {
		return err
	}
	out := CallLog{CallID: id, Entries: make([]LogEntry, len(entries))}
	for i, e := range entries {
		out.Entries[i] = s.logEntryOf(e)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
