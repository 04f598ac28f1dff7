package testenv

import (
	"strings"
	"testing"
)

// sippTrace is a UAC's message trace as sipp 3.6.1 writes it: the offer
// sent (its ports must not be taken), a 180, a 200 to an INFO (no SDP)
// and the 200 to the INVITE with the answer.
var sippTrace = strings.ReplaceAll(`----------------------------------------------- 2026-12-07 21:26:35.346508
UDP message sent (514 bytes):

INVITE sip:service@127.0.0.1:15090 SIP/2.0
CSeq: 1 INVITE
Content-Type: application/sdp

v=0
m=audio 6004 RTP/AVP 0
m=video 6006 RTP/AVP 96

----------------------------------------------- 2026-12-07 21:26:35.347575
UDP message received [313] bytes :

SIP/2.0 180 Ringing
CSeq: 1 INVITE
Content-Length: 0

----------------------------------------------- 2026-12-07 21:26:35.347575
UDP message received [313] bytes :

SIP/2.0 200 OK
CSeq: 2 INFO
Content-Length: 0

----------------------------------------------- 2026-12-07 21:26:35.349136
UDP message received [472] bytes :

SIP/2.0 200 OK
CSeq: 1 INVITE
Content-Type: application/sdp

v=0
m=audio 20002 RTP/AVP 8 101
m=video 20004 RTP/AVP 96

`, "\n", "\r\n")

func TestAnsweredPort(t *testing.T) {
	for kind, want := range map[string]int{"audio": 20002, "video": 20004} {
		got, ok := answeredPort(sippTrace, kind)
		if !ok || got != want {
			t.Errorf("%s: got %d %v, want %d", kind, got, ok, want)
		}
	}
	if _, ok := answeredPort(sippTrace, "image"); ok {
		t.Error("a kind the answer lacks was found")
	}
	// Until the 200 arrives, only the offer is in the trace.
	before := sippTrace[:strings.Index(sippTrace, "SIP/2.0 200 OK\r\nCSeq: 1 INVITE")]
	if p, ok := answeredPort(before, "audio"); ok {
		t.Errorf("found port %d before the answer", p)
	}
}

func FuzzAnsweredPort(f *testing.F) {
	f.Add(sippTrace, "audio")
	f.Add("UDP message received\nSIP/2.0 200 OK\nCSeq: 1 INVITE\nm=video 99999999999999999999 RTP/AVP 96\n", "video")
	f.Fuzz(func(t *testing.T, trace, kind string) {
		if port, ok := answeredPort(trace, kind); ok && (port < 0 || !strings.Contains(trace, "m="+kind+" ")) {
			t.Fatalf("port %d for %q", port, kind)
		}
	})
}
