package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
)

// listeningRE finds the bound HTTP address in the server's log.
var listeningRE = regexp.MustCompile(`msg=listening scheme=http addr=(\S+)`)

// runningServer is run started in-process, as main would, on a cancelable
// context.
type runningServer struct {
	base   string // http://admin:PASS@127.0.0.1:PORT
	addr   string // 127.0.0.1:PORT
	log    *testenv.SyncBuffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// The admin's login of the servers the tests start.
const (
	testUser = "admin"
	testPass = "test-Pass-4711"
)

// authFile writes testUser:testPass to a file for -auth-file.
func authFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth")
	if err := os.WriteFile(path, []byte(testUser+":"+testPass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// withLogin is base (http://host:port) with the test admin's login in it:
// Go's client sends a URL's user information as HTTP Basic auth.
func withLogin(base string) string {
	return strings.Replace(base, "://", "://"+testUser+":"+testPass+"@", 1)
}

// startRun starts run with args (plus loopback listeners on free ports and,
// unless args say -no-auth, -auth-file or -demo, the test admin's login from
// a file) and waits until it serves HTTP. base carries the login.
func startRun(t *testing.T, args ...string) *runningServer {
	t.Helper()
	all := append([]string{"-http", "127.0.0.1:0", "-https", "", "-sip", "127.0.0.1:0", "-rtp-ports", rtpRange()}, args...)
	// -demo on loopback needs no login (demo tests check that).
	if !slices.Contains(args, "-no-auth") && !slices.Contains(args, "-auth-file") && !slices.Contains(args, "-demo") {
		all = append(all, "-auth-file", authFile(t))
	}
	// Admission control measures this process's CPU, which the race
	// detector and the test peers in it inflate: off unless a test asks.
	if !slices.Contains(args, "-max-cpu") {
		all = append(all, "-max-cpu", "0")
	}
	s := launchRun(t, all, func(string) string { return "" })
	s.base = withLogin(s.base)
	return s
}

// launchRun starts run with exactly the arguments all and the environment
// getenv, and waits until it serves HTTP (base without a login). The
// test's cleanup stops it.
func launchRun(t *testing.T, all []string, getenv func(string) string) *runningServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &runningServer{log: &testenv.SyncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- run(ctx, all, getenv, s.log) }()
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("run returned %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningRE.FindStringSubmatch(s.log.String()); m != nil && strings.Contains(s.log.String(), "msg=ready") {
			s.addr = m[1]
			s.base = "http://" + m[1]
			return s
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("run ended before serving: %v\n%s", err, s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("the server did not log its HTTP address:\n%s", s.log.String())
	return nil
}

// stop cancels run's context (as SIGINT does) and returns what run returned.
func (s *runningServer) stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(60 * time.Second):
			s.err = fmt.Errorf("run did not return within 60 s of the cancel:\n%s", s.log.String())
		}
	})
	return s.err
}

// rtpRange is a 100-port RTP range picked at random, so that parallel test
// binaries rarely meet.
func rtpRange() string {
	lo := 20000 + 2*rand.IntN(5000)
	return fmt.Sprintf("%d-%d", lo, lo+99)
}

// rest POSTs body as JSON to the REST API at base and returns the status and
// the response body.
func rest(t *testing.T, base, path string, body any) (int, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/rest-api"+path, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// findCall returns /call/find's object for callID (ok false on 404).
func findCall(t *testing.T, base, callID string) (wcsapi.Call, bool) {
	t.Helper()
	code, body := rest(t, base, "/call/find", map[string]string{"callId": callID})
	if code == http.StatusNotFound {
		return wcsapi.Call{}, false
	}
	if code != http.StatusOK {
		t.Fatalf("/call/find: %d %s", code, body)
	}
	var calls []wcsapi.Call
	if err := json.Unmarshal(body, &calls); err != nil || len(calls) != 1 {
		t.Fatalf("/call/find: %v %s", err, body)
	}
	return calls[0], true
}

// waitCall polls /call/find until cond holds.
func waitCall(t *testing.T, base, callID, what string, cond func(wcsapi.Call) bool) wcsapi.Call {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last wcsapi.Call
	for time.Now().Before(deadline) {
		c, ok := findCall(t, base, callID)
		if ok && cond(c) {
			return c
		}
		last = c
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("call %s: %s did not happen within 60 s; last seen %+v", callID, what, last)
	return last
}

// webhookRecorder is the webhook receiver of the tests.
type webhookRecorder struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []wcsapi.StatusEvent
	bad    []string
}

func newWebhookRecorder(t *testing.T) *webhookRecorder {
	w := &webhookRecorder{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ev wcsapi.StatusEvent
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		w.mu.Lock()
		// The product's REST hooks: base URL + "/" + the event's name.
		if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") ||
			json.Unmarshal(b, &ev) != nil || r.URL.Path != "/"+ev.Type {
			w.bad = append(w.bad, r.Method+" "+string(b))
		} else {
			w.events = append(w.events, ev)
		}
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// statuses returns the call statuses the webhook received for callID, in
// order, and the RTMP states (rtmpStreamStatus of its CallStatusEvents,
// which report the call's RTMP leg as the product does, and of its pushes'
// RtmpStatusEvents), each without repeats in a row (a CallStatusEvent for an
// RTMP change repeats the call's status).
func (w *webhookRecorder) statuses(callID string) (call, rtmp []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	add := func(list []string, v string) []string {
		if v == "" || (len(list) > 0 && list[len(list)-1] == v) {
			return list
		}
		return append(list, v)
	}
	for _, ev := range w.events {
		if ev.CallID != callID {
			continue
		}
		switch ev.Type {
		case "CallStatusEvent":
			call = add(call, ev.Status)
			rtmp = add(rtmp, ev.RTMPStreamStatus)
		case "RtmpStatusEvent":
			rtmp = add(rtmp, ev.RTMPStreamStatus)
		}
	}
	return call, rtmp
}

// waitStatus waits until the webhook got the call status st for callID.
func (w *webhookRecorder) waitStatus(t *testing.T, callID, st string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		call, _ := w.statuses(callID)
		for _, s := range call {
			if s == st {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	call, rtmp := w.statuses(callID)
	t.Fatalf("the webhook did not receive %s for %s within 30 s: calls %v rtmp %v", st, callID, call, rtmp)
}

// inOrder reports whether want is a subsequence of got.
func inOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// pageReports serves the HTML pages of a browser test and collects what
// they POST to /report: the page-report pattern of the Chromium tests. A
// page reports JSON that decodes into a T.
type pageReports[T any] struct {
	ch chan pageReport[T]
}

// pageReport is one report, or why it did not decode.
type pageReport[T any] struct {
	value T
	err   error
}

// newPageReports keeps up to n reports until the test reads them; more are
// dropped.
func newPageReports[T any](n int) *pageReports[T] {
	return &pageReports[T]{ch: make(chan pageReport[T], n)}
}

// mux serves pages (GET path -> the page, made on each request, so that it
// can name servers started after the mux) and POST /report.
func (p *pageReports[T]) mux(pages map[string]func() string) *http.ServeMux {
	mux := http.NewServeMux()
	for path, page := range pages {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = io.WriteString(w, page())
		})
	}
	mux.HandleFunc("POST /report", func(w http.ResponseWriter, r *http.Request) {
		var rep pageReport[T]
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&rep.value); err != nil {
			rep.err = fmt.Errorf("bad report: %w", err)
		}
		select {
		case p.ch <- rep:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// next waits up to d for the next report; it fails the test on a timeout
// or a report that did not decode. what names the page in the message.
func (p *pageReports[T]) next(t *testing.T, what string, d time.Duration) T {
	t.Helper()
	select {
	case rep := <-p.ch:
		if rep.err != nil {
			t.Fatalf("%s: %v", what, rep.err)
		}
		return rep.value
	case <-time.After(d):
		t.Fatalf("%s reported nothing within %v", what, d)
	}
	var zero T
	return zero
}
