package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/sip/siptest"
)

// startRunRaw starts run with exactly args after the loopback listeners:
// no login is added, and env is its environment.
func startRunRaw(t *testing.T, env map[string]string, args ...string) *runningServer {
	t.Helper()
	all := append([]string{"-http", "127.0.0.1:0", "-https", "", "-sip", "127.0.0.1:0", "-rtp-ports", rtpRange()}, args...)
	return launchRun(t, all, func(k string) string { return env[k] })
}

// do sends method path with body (JSON) and the given headers to base.
func do(t *testing.T, method, url, ctype, body string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// Issue 12: `go run ./examples/restserver` with no flags and no environment
// serves nothing without a login: the REST API, the page, the events and
// the metrics answer 401, and the log says how to set credentials.
func TestClosedByDefault(t *testing.T) {
	srv := startRunRaw(t, nil)
	code, body, hdr := do(t, "POST", srv.base+"/rest-api/call/find_all", "application/json", "{}", nil)
	require.Equal(t, http.StatusUnauthorized, code, body)
	require.Contains(t, hdr.Get("WWW-Authenticate"), "Basic")
	require.Contains(t, body, "SIPSTREAM_AUTH")
	for _, p := range []string{"/", "/metrics", "/events", "/defaults"} {
		code, _, _ := do(t, "GET", srv.base+p, "", "", nil)
		require.Equal(t, http.StatusUnauthorized, code, p)
	}
	// No password opens it: there is none.
	code, _, _ = do(t, "POST", withLogin(srv.base)+"/rest-api/call/find_all", "application/json", "{}", nil)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, srv.log.String(), "SIPSTREAM_AUTH=user:pass or -auth-file FILE")
	// The player page holds nothing and stays public.
	code, _, _ = do(t, "GET", srv.base+"/player/player.js", "", "", nil)
	require.Equal(t, http.StatusOK, code)
}

// Credentials come from a file, the environment or (warned) the command
// line; -no-auth opens the server with a warning; the demo on loopback
// needs no login, the demo on another address makes a password and prints
// it in the banner only.
func TestLoginSources(t *testing.T) {
	t.Run("env", func(t *testing.T) {
		srv := startRunRaw(t, map[string]string{"SIPSTREAM_AUTH": testUser + ":" + testPass})
		code, _, _ := do(t, "POST", withLogin(srv.base)+"/rest-api/call/find_all", "application/json", "{}", nil)
		require.Equal(t, http.StatusNotFound, code, "logged in: no calls")
		code, _, _ = do(t, "POST", srv.base+"/rest-api/call/find_all", "application/json", "{}", nil)
		require.Equal(t, http.StatusUnauthorized, code)
		require.NotContains(t, srv.log.String(), "visible to every user")
		require.NotContains(t, srv.log.String(), testPass)
	})
	t.Run("argv", func(t *testing.T) {
		srv := startRunRaw(t, nil, "-auth", testUser+":"+testPass)
		code, _, _ := do(t, "POST", withLogin(srv.base)+"/rest-api/call/find_all", "application/json", "{}", nil)
		require.Equal(t, http.StatusNotFound, code)
		require.Contains(t, srv.log.String(), "-auth on the command line is visible to every user of this machine (ps)")
		require.NotContains(t, srv.log.String(), testPass)
	})
	t.Run("file", func(t *testing.T) {
		srv := startRunRaw(t, nil, "-auth-file", authFile(t))
		code, _, _ := do(t, "POST", withLogin(srv.base)+"/rest-api/call/find_all", "application/json", "{}", nil)
		require.Equal(t, http.StatusNotFound, code)
	})
	t.Run("no-auth", func(t *testing.T) {
		srv := startRunRaw(t, nil, "-no-auth")
		code, _, _ := do(t, "POST", srv.base+"/rest-api/call/find_all", "application/json", "{}", nil)
		require.Equal(t, http.StatusNotFound, code)
		require.Contains(t, srv.log.String(), "level=WARN msg=\"-no-auth: the REST API")
	})
	t.Run("demo-elsewhere", func(t *testing.T) {
		// -http on the unspecified address: other machines reach it.
		srv := startRunRaw(t, nil, "-demo", "-http", "0.0.0.0:0")
		m := regexpFind(t, `log in:\s+user admin, password (\S+) \(made for this run\)`, srv.log.String())
		base := "http://127.0.0.1" + srv.addr[strings.LastIndex(srv.addr, ":"):]
		code, _, _ := do(t, "POST", base+"/rest-api/call/find_all", "application/json", "{}", nil)
		require.Equal(t, http.StatusUnauthorized, code)
		code, _, _ = do(t, "POST", withAuth(base, "admin", m)+"/rest-api/call/find_all", "application/json", "{}", nil)
		require.Equal(t, http.StatusNotFound, code)
		// Only the banner has it, not a log line.
		for _, line := range strings.Split(srv.log.String(), "\n") {
			if strings.Contains(line, "level=") {
				require.NotContains(t, line, m)
			}
		}
	})
	_, err := parseConfig([]string{"-no-auth", "-auth", "a:b"}, func(string) string { return "" }, io.Discard)
	require.ErrorContains(t, err, "-no-auth and credentials")
	bad := filepath.Join(t.TempDir(), "auth")
	require.NoError(t, os.WriteFile(bad, []byte("nocolon\n"), 0o600))
	_, err = parseConfig([]string{"-auth-file", bad}, func(string) string { return "" }, io.Discard)
	require.ErrorContains(t, err, "USER:PASS")
	_, err = parseConfig([]string{"-auth-file", bad + ".missing"}, func(string) string { return "" }, io.Discard)
	require.ErrorContains(t, err, "-auth-file")
}

func regexpFind(t *testing.T, re, s string) string {
	t.Helper()
	m := mustRE(re).FindStringSubmatch(s)
	require.NotNil(t, m, "%s not in:\n%s", re, s)
	return m[1]
}

func withAuth(base, user, pass string) string {
	return strings.Replace(base, "://", "://"+user+":"+pass+"@", 1)
}

func TestCapsFlags(t *testing.T) {
	c, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 100, c.MaxCalls)
	require.Equal(t, 50, c.MaxViewers)
	require.Equal(t, 50, c.MaxSSE)
	require.Equal(t, 10, c.MaxPushes)
	require.Equal(t, ":8081", c.HTTP, "not the demo: every address")
	_, err = parseConfig([]string{"-max-calls", "-1"}, func(string) string { return "" }, io.Discard)
	require.Error(t, err)
	_, err = parseConfig([]string{"-allow-callees", "[x"}, func(string) string { return "" }, io.Discard)
	require.ErrorContains(t, err, "-allow-callees")
}

func mustRE(re string) *regexp.Regexp { return regexp.MustCompile(re) }

// The caps with a real call manager: a call over -max-calls gets 503 with a
// clear message, a push over -max-pushes 409, a viewer over -max-viewers
// 503; and a viewer holding only a viewer token (no admin login) plays the
// call's audio and video.
func TestCapsAndViewerTokenEndToEnd(t *testing.T) {
	peer := startPeer(t, siptest.Script{Audio: true, Video: true})
	_, rtmpURL := startRTMPServer(t)
	srv := startRun(t, "-max-calls", "1", "-max-pushes", "1", "-max-viewers", "1")
	code, out := rest(t, srv.base, "/call/startup", map[string]any{"callId": "cap-1", "callee": peer.URI(), "toStream": "cap-show"})
	require.Equal(t, http.StatusOK, code, string(out))
	waitCall(t, srv.base, "cap-1", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })

	code, out = rest(t, srv.base, "/call/startup", map[string]any{"callId": "cap-2", "callee": peer.URI()})
	require.Equal(t, http.StatusServiceUnavailable, code, string(out))
	require.Contains(t, string(out), "-max-calls")

	code, out = rest(t, srv.base, "/push/startup", map[string]any{"streamName": "cap-show", "rtmpUrl": rtmpURL})
	require.Equal(t, http.StatusOK, code, string(out))
	code, out = rest(t, srv.base, "/push/startup", map[string]any{"streamName": "cap-show", "rtmpUrl": rtmpURL + "2"})
	require.Equal(t, http.StatusConflict, code, string(out))
	require.Contains(t, string(out), "-max-pushes")

	code, out = rest(t, srv.base, "/viewer/token", map[string]any{"streamName": "cap-show"})
	require.Equal(t, http.StatusOK, code, string(out))
	var tr wcsapi.ViewerToken
	require.NoError(t, json.Unmarshal(out, &tr))
	plain := "http://" + srv.addr
	code, _, _ = do(t, "POST", plain+"/whep/cap-show", "application/sdp", "v=0\r\n", nil)
	require.Equal(t, http.StatusUnauthorized, code, "no token, no login")
	v := playWHEP(t, plain+tr.WHEPURL)
	v.wait(t, 10, webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio)
	code, body, _ := do(t, "POST", plain+tr.WHEPURL, "application/sdp", v.w.PC.LocalDescription().SDP, nil)
	require.Equal(t, http.StatusServiceUnavailable, code, "-max-viewers 1: %s", body)
	v.stop(t, plain)
}
