package callmgr_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sip/siptest"
)

// A call's event log: what the operator reads to understand a stream
// (SIP exchanges, keyframes, outputs, DTMF), kept for the call's life and
// for a while after it ended. WatchLog follows every call's new entries
// (an event stream for a page, a log shipper).
func ExampleManager_CallLog() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peer, err := siptest.NewPeer(siptest.Config{Script: siptest.Script{Ring: 20 * time.Millisecond}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer peer.Close()
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 22000, RTPPortMax: 22999})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer m.Close(ctx)
	stop := m.WatchLog(func(callID string, e callmgr.LogEntry) {
		// Runs on the call's goroutines: hand the entry on, never block.
	})
	defer stop()

	call, err := m.StartCall(ctx, callmgr.CallParams{CallID: "call-1", Callee: peer.URI(), HasAudio: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := call.WaitEstablished(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := m.Terminate(ctx, "call-1"); err != nil {
		fmt.Println(err)
		return
	}
	<-call.Done()
	entries, err := m.CallLog("call-1") // still there after the end
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range entries {
		text := e.Text
		if strings.HasPrefix(text, "→ INVITE ") {
			text = "→ INVITE (the peer's URI)"
		}
		fmt.Println(e.Kind, e.Level, text)
	}
	// Output:
	// sip info → INVITE (the peer's URI)
	// sip info ← 180 Ringing (INVITE)
	// sip info ← 200 OK (INVITE)
	// sip info → BYE
	// call info call ended: FINISH (200 OK)
}
