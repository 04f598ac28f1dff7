//go:build interop

package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
)

// sipScenario reads one of package sip's sipp scenarios (sip/testdata),
// which check what the call-control requests carry.
func sipScenario(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "sip", "testdata", name))
	require.NoError(t, err)
	return string(b)
}

// TestInteropServerHoldSipp: /call/hold and /call/unhold against sipp,
// whose scenario fails unless the first re-INVITE offers a=sendonly and
// the second a=sendrecv; the REST status follows (HOLD, ESTABLISHED).
func TestInteropServerHoldSipp(t *testing.T) {
	sp := testenv.StartSipp(t, testenv.SippConfig{Scenario: sipScenario(t, "sipp_reinvite_hold.xml"), Timeout: 60 * time.Second})
	srv := startRun(t)
	code, body := rest(t, srv.base, "/call/startup", map[string]any{"callId": "hold-1", "callee": sp.URI("bob"), "hasAudio": true, "hasVideo": false})
	require.Equal(t, http.StatusOK, code, string(body))
	waitCall(t, srv.base, "hold-1", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })

	code, body = rest(t, srv.base, "/call/hold", map[string]any{"callId": "hold-1"})
	require.Equal(t, http.StatusOK, code, string(body))
	c, _ := findCall(t, srv.base, "hold-1")
	assert.Equal(t, "HOLD", c.Status)
	code, body = rest(t, srv.base, "/call/unhold", map[string]any{"callId": "hold-1"})
	require.Equal(t, http.StatusOK, code, string(body))
	c, _ = findCall(t, srv.base, "hold-1")
	assert.Equal(t, "ESTABLISHED", c.Status)
	code, body = rest(t, srv.base, "/call/terminate", map[string]any{"callId": "hold-1"})
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, sp.Wait(30*time.Second), "sipp saw sendonly, then sendrecv, then BYE")
}

// TestInteropServerTransferSipp: /call/transfer against sipp, which checks
// the REFER's Refer-To and Referred-By, answers 202 and reports 100 and 200
// by NOTIFY; the webhook gets TransferStatusEvents TRYING then ESTABLISHED
// and the call ends (our BYE, which sipp expects).
func TestInteropServerTransferSipp(t *testing.T) {
	sp := testenv.StartSipp(t, testenv.SippConfig{Scenario: sipScenario(t, "sipp_refer.xml"), Timeout: 60 * time.Second,
		Vars: map[string]string{"TARGET_RE": `^ *.sip:carol@127\.0\.0\.1:5099>$`, "FINAL_STATUS": "200 OK"}})
	hook := newWebhookRecorder(t)
	srv := startRun(t, "-webhook", hook.srv.URL)
	code, body := rest(t, srv.base, "/call/startup", map[string]any{"callId": "xfer-1", "callee": sp.URI("bob"),
		"sipLogin": "alice", "sipDomain": "127.0.0.1", "hasAudio": true, "hasVideo": false})
	require.Equal(t, http.StatusOK, code, string(body))
	waitCall(t, srv.base, "xfer-1", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })

	code, body = rest(t, srv.base, "/call/transfer", map[string]any{"callId": "xfer-1", "target": "sip:carol@127.0.0.1:5099"})
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, sp.Wait(30*time.Second), "sipp saw the REFER it expects and our BYE after the transfer")
	hook.waitStatus(t, "xfer-1", "FINISH")

	hook.mu.Lock()
	var transfer []string
	for _, ev := range hook.events {
		if ev.CallID == "xfer-1" && ev.Type == "TransferStatusEvent" {
			transfer = append(transfer, ev.Status)
			assert.Contains(t, ev.Info, "sip:carol@127.0.0.1:5099")
		}
	}
	hook.mu.Unlock()
	assert.Equal(t, []string{"TRYING", "ESTABLISHED"}, transfer)
}
