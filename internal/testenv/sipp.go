package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SippConfig says what StartSipp runs. sipp 3.6.1's quirks, seen in our tests:
// it cannot play an audio and a video pcap in one call (send media from
// testmedia.Replayer instead), a message arriving while a call sits on a
// <pause> after a <send> aborts the call, a variable assigned but never
// used aborts at load, [media_port] inside <exec command> aborts, and
// "&amp;" in attributes is not decoded.
type SippConfig struct {
	// Scenario is the text of an XML scenario (-sf). Empty means Builtin.
	Scenario string
	// Vars are replaced in Scenario before it is written, each key by its
	// value (plain text, e.g. "AUDIOPORT" by "40000"), for what sipp's own
	// [keywords] cannot say.
	Vars map[string]string
	// Builtin names one of sipp's built-in scenarios (-sn, e.g. "uac")
	// when Scenario is empty.
	Builtin string
	// Transport is "udp" or "tcp" (-t u1 or t1). Empty means "udp".
	Transport string
	// Remote is "host:port" to send the first request to (a UAC). Empty
	// means sipp waits for one (a UAS).
	Remote string
	// Calls is how many calls sipp runs before it exits (-m). Zero means 1.
	Calls int
	// Timeout ends sipp with a failure after this long (-timeout with
	// -timeout_error). Zero means no limit (the test's own ends it).
	Timeout time.Duration
	// Args are more options (e.g. "-rtp_echo", "-d", "2000", "-s", "peer").
	Args []string
}

// Sipp is a sipp process on 127.0.0.1 started by StartSipp.
type Sipp struct {
	// Port is its SIP port on 127.0.0.1 (-p).
	Port int
	// MediaPort is its RTP port (-mp): what [media_port] says.
	MediaPort int
	dir       string
	p         *Process
}

// StartSipp writes cfg's scenario, starts sipp on free loopback ports
// (-i and -mi 127.0.0.1) with message and error traces, and, for a UAS,
// waits until it has bound its port. sipp is killed when the test ends;
// its traces go into the test log if the test failed. It fails under CI
// (and skips elsewhere) when sipp is missing.
func StartSipp(t testing.TB, cfg SippConfig) *Sipp {
	t.Helper()
	bin := LookPath(t, "sipp")
	network, tr := "udp", "u1"
	switch cfg.Transport {
	case "", "udp":
	case "tcp":
		network, tr = "tcp", "t1"
	default:
		t.Fatalf("testenv: SippConfig.Transport %q: want udp or tcp", cfg.Transport)
	}
	// A port found free can be taken by another process (an ephemeral
	// port given to some test's socket) before sipp binds it: sipp then
	// exits with errno 98, and a new pair of ports is tried, twice at most.
	for attempt := 1; ; attempt++ {
		s, bound := startSippOnce(t, cfg, bin, network, tr)
		if bound {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("sipp traces:\n%s", s.Logs())
				}
			})
			return s
		}
		if attempt < 3 && strings.Contains(s.Logs(), "errno = 98") {
			s.p.Kill()
			t.Logf("sipp: port %d taken meanwhile (attempt %d); trying others", s.Port, attempt)
			continue
		}
		t.Fatalf("sipp did not bind %s 127.0.0.1:%d:\n%s", network, s.Port, s.Logs())
	}
}

// startSippOnce starts sipp on ports found free and reports whether a UAS
// bound its SIP port (always true for a UAC).
func startSippOnce(t testing.TB, cfg SippConfig, bin, network, tr string) (*Sipp, bool) {
	t.Helper()
	s := &Sipp{Port: FreePort(t, network), MediaPort: FreeUDPRange(t, 4), dir: t.TempDir()}
	args := []string{"-i", "127.0.0.1", "-mi", "127.0.0.1", "-p", strconv.Itoa(s.Port), "-mp", strconv.Itoa(s.MediaPort),
		"-t", tr, "-nostdin", "-trace_msg", "-message_file", s.file("messages.log"),
		"-trace_err", "-error_file", s.file("errors.log")}
	switch {
	case cfg.Scenario != "":
		scenario := cfg.Scenario
		for k, v := range cfg.Vars {
			scenario = strings.ReplaceAll(scenario, k, v)
		}
		if err := os.WriteFile(s.file("scenario.xml"), []byte(scenario), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-sf", s.file("scenario.xml"))
	case cfg.Builtin != "":
		args = append(args, "-sn", cfg.Builtin)
	default:
		t.Fatal("testenv: SippConfig needs Scenario or Builtin")
	}
	calls := cfg.Calls
	if calls == 0 {
		calls = 1
	}
	args = append(args, "-m", strconv.Itoa(calls))
	if cfg.Timeout > 0 {
		args = append(args, "-timeout", strconv.Itoa(int(cfg.Timeout.Seconds()+0.999))+"s", "-timeout_error")
	}
	args = append(args, cfg.Args...)
	if cfg.Remote != "" {
		args = append(args, cfg.Remote)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.dir
	s.p = StartProcess(t, cmd)
	return s, cfg.Remote != "" || waitBound(network, s.Port, 10*time.Second, s.p.Done())
}

// RunSipp runs sipp with cfg until it exits by itself (at most d) and
// returns its exit status (nil: every call passed the scenario).
func RunSipp(t testing.TB, cfg SippConfig, d time.Duration) (*Sipp, error) {
	t.Helper()
	s := StartSipp(t, cfg)
	return s, s.Wait(d)
}

func (s *Sipp) file(name string) string { return filepath.Join(s.dir, name) }

// URI returns a SIP URI for user at sipp's address.
func (s *Sipp) URI(user string) string { return fmt.Sprintf("sip:%s@127.0.0.1:%d", user, s.Port) }

// Addr returns "127.0.0.1:port", sipp's SIP address.
func (s *Sipp) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// Wait waits up to d for sipp to exit and returns its exit status: nil
// when every call passed the scenario (exit code 0), otherwise an error
// with the exit code and sipp's traces.
func (s *Sipp) Wait(d time.Duration) error {
	if err := s.p.Wait(d); err != nil {
		return fmt.Errorf("sipp: %w\n%s", err, s.Logs())
	}
	return nil
}

// ExitCode returns sipp's exit code (0: all calls passed, 1: some failed,
// 97/99: internal or fatal error), -1 while it runs.
func (s *Sipp) ExitCode() int { return s.p.ExitCode() }

// Messages returns sipp's message trace so far: every message sent and
// received.
func (s *Sipp) Messages() string {
	b, _ := os.ReadFile(s.file("messages.log"))
	return string(b)
}

// Logs returns sipp's output, its error trace and the end of its message
// trace, for failure messages.
func (s *Sipp) Logs() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--- output\n%s\n", tail(s.p.Output(), 6000))
	for _, name := range []string{"errors.log", "messages.log"} {
		data, _ := os.ReadFile(s.file(name))
		fmt.Fprintf(&b, "--- %s\n%s\n", name, tail(string(data), 6000))
	}
	return b.String()
}

var sdpMediaLine = regexp.MustCompile(`(?m)^m=(audio|video) (\d+) `)

// OfferedPort waits until sipp has received an INVITE and returns the
// port its SDP offer gives for kind ("audio" or "video"): where the
// caller's media session listens.
func (s *Sipp) OfferedPort(ctx context.Context, kind string) (int, error) {
	for {
		msgs := s.Messages()
		if i := strings.Index(msgs, "INVITE sip:"); i >= 0 {
			for _, m := range sdpMediaLine.FindAllStringSubmatch(msgs[i:], -1) {
				if m[1] == kind {
					return strconv.Atoi(m[2])
				}
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no %s port in the INVITE sipp received: %w", kind, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// SippCallee returns a UAS scenario for one call that answers with sdp:
// INVITE, 180, 200 with sdp, ACK, any number of INFOs (each answered
// 200), BYE (answered 200). sdp may use sipp's keywords ([media_ip],
// [local_ip_type], ...). Every <send> leads straight to the next <recv>: in
// sipp 3.6.1 a message arriving while the call sits on a pause after a
// send aborts the call.
func SippCallee(sdp string) string {
	const head = `[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
`
	const inDialog = `[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
`
	return `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sipstream callee">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
` + head + `Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
` + head + `Content-Type: application/sdp
Content-Length: [len]

` + strings.TrimRight(sdp, "\n") + `
]]></send>
  <recv request="ACK" crlf="true"/>
  <label id="1"/>
  <recv request="INFO" optional="true" next="2"/>
  <recv request="BYE"/>
  <send next="9"><![CDATA[
SIP/2.0 200 OK
` + inDialog + `
]]></send>
  <label id="2"/>
  <send next="1"><![CDATA[
SIP/2.0 200 OK
` + inDialog + `
]]></send>
  <label id="9"/>
</scenario>
`
}

// AnsweredPort waits until sipp (a UAC) has received a 2xx answer with an
// SDP body to its INVITE and returns the port that SDP gives for kind
// ("audio" or "video"): where the callee's media session listens. sipp
// cannot hand the answer's ports to a replayer of its own, so the test
// reads them from sipp's message trace.
func (s *Sipp) AnsweredPort(ctx context.Context, kind string) (int, error) {
	for {
		if port, ok := answeredPort(s.Messages(), kind); ok {
			return port, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("no %s port in a 2xx answer sipp received: %w", kind, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

var (
	// sippMessageStart matches the line sipp's message trace puts before
	// each message it sent or received.
	sippMessageStart = regexp.MustCompile(`(?m)^(UDP|TCP|TLS|SCTP) message (received|sent)`)
	sipStatus2xx     = regexp.MustCompile(`(?m)^SIP/2\.0 2\d\d `)
	cseqInvite       = regexp.MustCompile(`(?mi)^CSeq:\s*\d+\s+INVITE\s*$`)
)

// answeredPort finds, in a sipp message trace, the first received 2xx
// response to an INVITE that has an m= line for kind, and its port.
func answeredPort(trace, kind string) (int, bool) {
	starts := sippMessageStart.FindAllStringIndex(trace, -1)
	for i, st := range starts {
		end := len(trace)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		msg := trace[st[0]:end]
		if !strings.Contains(msg[:min(len(msg), 40)], "received") || !sipStatus2xx.MatchString(msg) || !cseqInvite.MatchString(msg) {
			continue
		}
		for _, m := range sdpMediaLine.FindAllStringSubmatch(msg, -1) {
			if m[1] == kind {
				port, err := strconv.Atoi(m[2])
				return port, err == nil
			}
		}
	}
	return 0, false
}
