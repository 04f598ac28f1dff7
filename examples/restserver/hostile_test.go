package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/sip/siptest"
)

// The hostile-client suite of issue 12, against the whole server in-process
// (run, as main starts it) with a live call whose RTMP URL carries a user,
// a password and a query token, whose stream key and SIP password are
// secrets, plus a push whose full URL holds another key:
//
//   - 10,000 seeded random bodies (random bytes, mutated and truncated valid
//     bodies, wrong types, deep nesting, oversized bodies) with random
//     content types go to every endpoint, a third without login, a third
//     with a wrong password (from another loopback address), a third as the
//     admin: no panic, no 5xx, no login bypass, the live call goes on;
//   - goroutines and file descriptors return to their baseline;
//   - no secret appears in any response (but the admin's /call/find and
//     /push/find, which return them as the product does), event, webhook
//     body, metric or log line captured during the suite.
func TestHostileBodies(t *testing.T) {
	const (
		secretKey     = "HOSTILE-STREAM-KEY-1"
		secretPass    = "HOSTILE-URL-PASS-2"
		secretTok     = "HOSTILE-QUERY-TOKEN-3"
		secretSIP     = "HOSTILE-SIP-PASS-4"
		secretPushKey = "HOSTILE-PUSH-KEY-5"
	)
	secretList := []string{secretKey, secretPass, secretTok, secretSIP, secretPushKey}
	peer := startPeer(t, siptest.Script{Audio: true, Video: true})
	_, rtmpApp := startRTMPServer(t)
	var hookMu sync.Mutex
	var hookBodies strings.Builder
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		hookMu.Lock()
		hookBodies.Write(b)
		hookBodies.WriteByte('\n')
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	srv := startRun(t, "-webhook", hook.URL, "-allow-callees", "*@127.0.0.1", "-allow-rtmp-hosts", "127.0.0.1")

	// The key carries a query, as Facebook's do.
	rtmpURL := strings.Replace(rtmpApp, "rtmp://", "rtmp://bob:"+secretPass+"@", 1)
	code, out := rest(t, srv.base, "/call/startup", map[string]any{
		"callId": "live-1", "callee": peer.URI(), "rtmpUrl": rtmpURL, "rtmpStream": secretKey + "?s=" + secretTok,
		"toStream": "live-show", "sipPassword": secretSIP, "sipLogin": "alice",
	})
	require.Equal(t, http.StatusOK, code, string(out))
	if _, ok := findCall(t, srv.base, "live-1"); !ok {
		t.Fatalf("no call:\n%s", srv.log.String())
	}
	waitCall(t, srv.base, "live-1", "ESTABLISHED", func(c wcsapi.Call) bool { return c.Status == "ESTABLISHED" })
	code, out = rest(t, srv.base, "/push/startup", map[string]any{
		"streamName": "live-show", "rtmpUrl": rtmpApp + "/" + secretPushKey + "?k=" + secretTok, "rtmpTransponderFullUrl": true,
	})
	c0, _ := findCall(t, srv.base, "live-1")
	require.Equal(t, http.StatusOK, code, "%s\n%+v\n%s", out, c0, srv.log.String())

	// The page's event stream, as the admin, for the whole suite.
	sseCtx, sseCancel := context.WithCancel(context.Background())
	var sse testenv.SyncBuffer
	sseDone := make(chan struct{})
	req, _ := http.NewRequestWithContext(sseCtx, http.MethodGet, srv.base+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	go func() {
		defer close(sseDone)
		defer resp.Body.Close()
		_, _ = io.Copy(&sse, resp.Body)
	}()

	admin := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 20 * time.Second}
	stranger := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: 20 * time.Second}
	// The wrong-password client comes from 127.0.0.2, so that its throttling
	// does not lock the admin (127.0.0.1) out.
	guesser := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8,
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	closeIdle := func() {
		for _, c := range []*http.Client{admin, stranger, guesser, http.DefaultClient} {
			c.CloseIdleConnections()
		}
	}
	plain := "http://" + srv.addr
	endpoints := []string{
		"/rest-api/call/startup", "/rest-api/call/find", "/rest-api/call/find_all", "/rest-api/call/terminate",
		"/rest-api/call/send_dtmf", "/rest-api/push/startup", "/rest-api/push/find", "/rest-api/push/find_all",
		"/rest-api/push/terminate", "/rest-api/push/mute", "/rest-api/push/unmute", "/rest-api/viewer/token",
		"/rest-api/nope", "/whep/live-show", "/whep/nope", "/events", "/metrics", "/",
	}
	type result struct {
		i      int
		path   string
		who    int // 0 stranger, 1 guesser, 2 admin
		status int
		body   string
	}
	// fire sends requests first..first+count-1, 8 at a time.
	fire := func(first, count int) []result {
		results := make(chan result, count)
		var next atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := first + int(next.Add(1)) - 1
					if i >= first+count {
						return
					}
					rng := rand.New(rand.NewPCG(12, uint64(i))) // seeded: request i is the same every run
					path := endpoints[i%len(endpoints)]
					who := (i / len(endpoints)) % 3
					method := http.MethodPost
					if path == "/events" || path == "/metrics" || path == "/" {
						method = []string{http.MethodGet, http.MethodPost}[rng.IntN(2)]
					}
					body := hostileBody(rng)
					timeout := 5 * time.Second
					if path == "/events" && method == http.MethodGet {
						timeout = 300 * time.Millisecond // an admin's stream lasts until then
					}
					ctx, cancel := context.WithTimeout(context.Background(), timeout)
					req, _ := http.NewRequestWithContext(ctx, method, plain+path, strings.NewReader(body))
					if ct := hostileContentTypes[rng.IntN(len(hostileContentTypes))]; ct != "" {
						req.Header.Set("Content-Type", ct)
					}
					c := stranger
					switch who {
					case 1:
						c = guesser
						req.SetBasicAuth(testUser, fmt.Sprintf("guess-%d", i))
					case 2:
						c = admin
						req.SetBasicAuth(testUser, testPass)
					}
					resp, err := c.Do(req)
					r := result{i: i, path: path, who: who}
					if err != nil {
						// The event stream as the admin lasts until the
						// deadline: that is not a failure.
						if !(path == "/events" && who == 2 && method == http.MethodGet) {
							r.status, r.body = -1, err.Error()
						}
					} else {
						b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
						resp.Body.Close()
						r.status, r.body = resp.StatusCode, string(b)
					}
					cancel()
					results <- r
				}
			}()
		}
		wg.Wait()
		close(results)
		var out []result
		for r := range results {
			out = append(out, r)
		}
		return out
	}

	// A warm-up round (checked like the rest) fills the pools and caches
	// of net/http and the runtime before the baseline is taken.
	const n = 10000
	warm := fire(n, 1000)
	closeIdle()
	baseG, baseFD := settle(t, 0, 0, false)
	baseHeap := heapInUse()
	if d := os.Getenv("HOSTILE_PROF"); d != "" {
		f, _ := os.Create(d + "/base.pprof")
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
	t.Logf("baseline: %d goroutines, %d fds, heap %.1f MiB", baseG, baseFD, float64(baseHeap)/(1<<20))
	start := time.Now()
	var peak atomic.Uint64
	stopPeak := make(chan struct{})
	peakDone := make(chan struct{})
	go func() {
		defer close(peakDone)
		for {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stopPeak:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	results := fire(0, n)
	close(stopPeak)
	<-peakDone
	t.Logf("%d hostile requests in %v; heap peak %.1f MiB", n, time.Since(start).Round(time.Millisecond), float64(peak.Load())/(1<<20))

	counts := map[string]int{}
	adminFoundSecrets := false
	for _, r := range append(results, warm...) {
		if r.status == 0 {
			continue // an admin event stream ended by its deadline
		}
		counts[fmt.Sprint(r.who, " ", r.status)]++
		require.NotEqual(t, -1, r.status, "request %d %s: %s", r.i, r.path, r.body)
		require.Less(t, r.status, 500, "request %d to %s (who %d): %d %s", r.i, r.path, r.who, r.status, r.body)
		switch r.who {
		case 0:
			require.Equal(t, http.StatusUnauthorized, r.status, "request %d to %s without login: %s", r.i, r.path, r.body)
		case 1:
			require.Contains(t, []int{http.StatusUnauthorized, http.StatusTooManyRequests}, r.status, "request %d to %s with a wrong password", r.i, r.path)
		}
		adminFind := r.who == 2 && (strings.Contains(r.path, "/find") || strings.HasSuffix(r.path, "/find_all"))
		if adminFind {
			adminFoundSecrets = adminFoundSecrets || strings.Contains(r.body, secretKey)
			continue
		}
		for _, s := range secretList {
			require.NotContains(t, r.body, s, "request %d to %s (who %d) answered a secret", r.i, r.path, r.who)
		}
	}
	t.Logf("answers (who status: count): %v", counts)
	require.True(t, adminFoundSecrets, "the admin's /call/find returns the stream key (so the check above can see one)")

	// The live call went on.
	c, ok := findCall(t, srv.base, "live-1")
	require.True(t, ok)
	require.Equal(t, "ESTABLISHED", c.Status)

	metrics := getMetrics(t, srv.base)
	sseCancel()
	<-sseDone
	closeIdle()
	g, fd := settle(t, baseG, baseFD, true)
	heap := heapInUse()
	results, warm = nil, nil
	heap = heapInUse()
	if d := os.Getenv("HOSTILE_PROF"); d != "" {
		f, _ := os.Create(d + "/after.pprof")
		_ = pprof.WriteHeapProfile(f)
		f.Close()
	}
	t.Logf("after: %d goroutines, %d fds, heap %.1f MiB", g, fd, float64(heap)/(1<<20))
	// Memory comes back to within 10 % of the baseline, or 4 MiB on a heap
	// this small: the live call's packets in flight (jitter buffer, the
	// peer's sender) move the heap by 1-2 MiB from one moment to the next.
	require.LessOrEqual(t, heap, baseHeap+max(baseHeap/10, 4<<20), "heap did not come back")

	hookMu.Lock()
	hooks := hookBodies.String()
	hookMu.Unlock()
	for _, s := range secretList {
		require.NotContains(t, sse.String(), s, "event stream")
		require.NotContains(t, hooks, s, "webhook")
		require.NotContains(t, metrics, s, "metrics")
		require.NotContains(t, srv.log.String(), s, "log")
	}
	require.Contains(t, sse.String(), `"callId":"live-1"`, "the event stream saw the call")
	require.Contains(t, hooks, `"callId":"live-1"`, "the webhook saw the call")
}

// settle waits (up to 15 s) until the goroutine and fd counts are within 3
// of the baseline (when check), and returns them; without check it returns
// the smallest counts seen within a second.
func settle(t *testing.T, baseG, baseFD int, check bool) (int, int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	if !check {
		deadline = time.Now().Add(time.Second)
	}
	minG, minFD := 1<<30, 1<<30
	for {
		g, fd := runtime.NumGoroutine(), openFDs(t)
		minG, minFD = min(minG, g), min(minFD, fd)
		if check && g <= baseG+3 && fd <= baseFD+3 {
			return g, fd
		}
		if time.Now().After(deadline) {
			if check {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Fatalf("goroutines %d (baseline %d), fds %d (baseline %d) did not come back:\n%s", g, baseG, fd, baseFD, buf)
			}
			return minG, minFD
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// heapInUse is the live heap after two collections.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd on this system") // only non-Linux development machines
	}
	return len(ents)
}

var hostileContentTypes = []string{
	"application/json", "application/json", "application/json; charset=utf-8", "", "text/plain",
	"application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json;;;", "application/jsonx",
}

var hostileFields = []string{
	"callId", "callee", "rtmpUrl", "rtmpStream", "toStream", "hasAudio", "hasVideo", "sipLogin",
	"sipAuthenticationName", "sipPassword", "sipDomain", "sipOutboundProxy", "sipPort", "sipTransport",
	"sipRegisterRequired", "visibleName", "appKey", "sipHeaders", "record", "connection", "dtmf", "type",
	"streamName", "mediaSessionId", "rtmpTransponderFullUrl", "options", "status", "ttl", "token",
}

// hostileValues never name the live call, its stream or the test peer, so
// that no hostile request may legitimately start, end or drive anything.
var hostileValues = []string{
	`""`, `" "`, `"\u0000"`, `"💥"`, `"sip:"`, `"@"`, `"rtmp://"`, `"rtmp://[::1"`, `"rtmp://10.0.0.1:22/x"`,
	`"rtmps://169.254.169.254/latest"`, `"sip:1@10.0.0.1"`, `"1001@evil.example"`, `"%zz"`, `"\r\nVia: x"`,
	`"1001"`, `"true"`, `"false"`, `"65536"`, `"-1"`, `"tcp"`, `"INFO"`, `"1234#"`, `"call-x"`,
	`-1`, `0`, `65536`, `1e308`, `true`, `false`, `null`, `[]`, `{}`, `[1,"a",null]`, `{"x":{"y":[]}}`,
	`{"Via":"x","X-A":"b\r\nc"}`, `{"sipLogin":"a","sipPassword":"b"}`, `{"action":"mute"}`,
}

// hostileBody is one random body.
func hostileBody(r *rand.Rand) string {
	switch r.IntN(8) {
	case 0: // random bytes
		b := make([]byte, r.IntN(600))
		for i := range b {
			b[i] = byte(r.UintN(256))
		}
		return string(b)
	case 1, 2, 3: // an object of known fields with random values
		var sb strings.Builder
		sb.WriteByte('{')
		for i, n := 0, r.IntN(8); i < n; i++ {
			if i > 0 {
				sb.WriteByte(',')
			}
			v := hostileValues[r.IntN(len(hostileValues))]
			if r.IntN(20) == 0 {
				v = `"` + strings.Repeat("A", r.IntN(70000)) + `"`
			}
			fmt.Fprintf(&sb, "%q:%s", hostileFields[r.IntN(len(hostileFields))], v)
		}
		sb.WriteByte('}')
		s := sb.String()
		if r.IntN(4) == 0 { // truncated or with a byte changed
			if len(s) > 1 && r.IntN(2) == 0 {
				s = s[:r.IntN(len(s))]
			} else if len(s) > 0 {
				b := []byte(s)
				b[r.IntN(len(b))] = byte(r.UintN(256))
				s = string(b)
			}
		}
		return s
	case 4: // deep nesting
		d := 1 + r.IntN(20000)
		return strings.Repeat(`{"connection":`, d/2) + strings.Repeat("[", d/2)
	case 5: // oversized
		if r.IntN(4) == 0 {
			// Past wcsapi's bound on any body (1 MiB).
			return `{"callId":"` + strings.Repeat("x", 1<<20+r.IntN(1000)) + `"}`
		}
		// Past its bound on a REST body (64 KiB).
		return `{"callee":"` + strings.Repeat("y", 64<<10+r.IntN(1000)) + `"}`
	case 6: // several values, or not an object
		return []string{`{}{}`, `[]`, `"x"`, `123`, `null`, `{"a":1} x`, `{"callId":"a","callId":"b"}`, ``, ` `}[r.IntN(9)]
	default: // an SDP-like text (for WHEP)
		return "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video " + fmt.Sprint(r.IntN(70000)) + " UDP/TLS/RTP/SAVPF 96\r\n"
	}
}

// 1,000 idle TCP connections to the HTTP port (half of them after sending
// part of a request) do not stop a real request from being answered at
// once, and the server's timeouts close every one of them; goroutines and
// file descriptors return to their baseline.
func TestHostileIdleConnections(t *testing.T) {
	srv := startRun(t)
	code, _ := rest(t, srv.base, "/call/find_all", map[string]any{})
	require.Equal(t, http.StatusNotFound, code)
	http.DefaultClient.CloseIdleConnections()
	baseG, baseFD := settle(t, 0, 0, false)

	const n = 1000
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", srv.addr)
		require.NoError(t, err)
		if i%2 == 1 {
			_, err = io.WriteString(c, "POST /rest-api/call/find_all HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n")
			require.NoError(t, err)
		}
		conns = append(conns, c)
	}
	opened := time.Now()
	t0 := time.Now()
	code, _ = rest(t, srv.base, "/call/find_all", map[string]any{})
	require.Equal(t, http.StatusNotFound, code)
	took := time.Since(t0)
	t.Logf("a real request with %d idle connections open: %v", n, took)
	require.Less(t, took, 2*time.Second)

	// Every idle connection is closed by the server (ReadHeaderTimeout).
	var closed atomic.Int32
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func(c net.Conn) {
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(wcsapi.NewServer(nil, nil).ReadHeaderTimeout + 10*time.Second))
			_, err := bufio.NewReader(c).ReadString(0)
			var ne net.Error
			if !(errors.As(err, &ne) && ne.Timeout()) {
				closed.Add(1) // EOF, reset, or the server's 408
			}
		}(c)
	}
	wg.Wait()
	t.Logf("%d of %d idle connections closed by the server within %v", closed.Load(), n, time.Since(opened).Round(time.Millisecond))
	require.Equal(t, int32(n), closed.Load())
	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	http.DefaultClient.CloseIdleConnections()
	settle(t, baseG, baseFD, true)
}
