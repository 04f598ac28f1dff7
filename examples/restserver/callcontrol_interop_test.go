//go:build interop

package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip/siptest"
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

// TestInteropServerPushSound: /push/sound_on mixes a -sound-dir WAV (1 kHz)
// into one push of a call whose phone sends a 440 Hz tone; nginx-rtmp
// takes the push and ffmpeg decodes what it published: both tones while the
// sound plays, the call's tone alone after /push/sound_off. The push object
// says soundEnabled meanwhile.
func TestInteropServerPushSound(t *testing.T) {
	dir := t.TempDir()
	// A 1 kHz tone, 0.25 s, at half scale (looped by the tests).
	wav := testmedia.WAV(testmedia.Tone(1000, 16000, 0, 4000, 0.5), 16000)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "beep.wav"), wav, 0o644))
	ngx := testenv.StartNginx(t, testenv.NginxConfig{})
	peer := startPeer(t, siptest.Script{Audio: true, ToneHz: 440, AudioCodecs: []media.Codec{media.CodecPCMA}, Video: true})
	srv := startRun(t, "-sound-dir", dir)

	code, body := rest(t, srv.base, "/call/startup", map[string]any{"callId": "snd", "callee": peer.URI(), "toStream": "show", "hasAudio": true, "hasVideo": true})
	require.Equal(t, http.StatusOK, code, string(body))
	waitCall(t, srv.base, "snd", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })
	rec := testenv.RecordStream(t, ngx.RTMPURL()+"/rtmp_show", 7*time.Second)
	code, body = rest(t, srv.base, "/push/startup", map[string]any{"streamName": "show", "rtmpUrl": ngx.RTMPURL()})
	require.Equal(t, http.StatusOK, code, string(body))
	var push wcsapi.Push
	require.NoError(t, json.Unmarshal(body, &push))
	waitPush := time.Now()
	for time.Since(waitPush) < 20*time.Second {
		if _, b := rest(t, srv.base, "/push/find", map[string]any{"streamName": "show"}); strings.Contains(string(b), "RTMP_STREAM_ACTIVE") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)

	code, body = rest(t, srv.base, "/push/sound_on", map[string]any{"mediaSessionId": push.MediaSessionID, "soundFile": "beep.wav", "loop": true})
	require.Equal(t, http.StatusOK, code, string(body))
	code, body = rest(t, srv.base, "/push/find", map[string]any{"streamName": "show"})
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Contains(t, string(body), `"soundEnabled":true`)
	time.Sleep(2500 * time.Millisecond)
	code, body = rest(t, srv.base, "/push/sound_off", map[string]any{"mediaSessionId": push.MediaSessionID})
	require.Equal(t, http.StatusOK, code, string(body))
	require.NoError(t, rec.Wait(60*time.Second))

	pcm := testenv.DecodePCM(t, rec.File, 8000)
	require.Greater(t, len(pcm), 6*8000, "about 7 s recorded")
	// Where the sound is, in quarter seconds of the recording (it starts
	// when nginx got the push's first frame).
	const q = 2000
	var with []int
	for i := 0; (i+1)*q <= len(pcm); i++ {
		b := pcm[i*q : (i+1)*q]
		k, c := testmedia.Goertzel(b, 8000, 1000), testmedia.Goertzel(b, 8000, 440)
		t.Logf("%.2f s: 1 kHz %.2f, 440 Hz %.2f", float64(i)/4, k, c)
		if k > 0.2 && c > 0.2 {
			with = append(with, i)
		}
	}
	require.NotEmpty(t, with, "the sound is mixed in, with the call's audio")
	first, last := with[0], with[len(with)-1]
	assert.Equal(t, last-first+1, len(with), "the sound plays without a break")
	assert.InDelta(t, 2.5, float64(len(with))/4, 0.6, "for the 2.5 s between sound_on and sound_off")
	assert.GreaterOrEqual(t, first, 2, "the call alone before sound_on")
	tail := pcm[(last+2)*q:]
	require.Greater(t, len(tail), 8000, "a second after sound_off")
	assert.Less(t, testmedia.Goertzel(tail, 8000, 1000), 0.05, "no sound after sound_off")
	assert.Greater(t, testmedia.Goertzel(tail, 8000, 440), 0.8, "the call's audio alone")
}
