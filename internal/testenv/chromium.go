//go:build unix

package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Chromium is a headless Chromium started by StartChromium.
type Chromium struct {
	p       *Process
	profile string // --user-data-dir
}

// ChromiumConfig says what StartChromium opens.
type ChromiumConfig struct {
	// URL is the page opened.
	URL string
	// HostRules maps host names to addresses for this browser only
	// (Chromium's --host-resolver-rules, e.g. "MAP evil.test 127.0.0.1"),
	// so that a test can serve a page under a name of its choosing. Empty
	// means the system's resolver.
	HostRules string
	// Args are more command-line switches.
	Args []string
	// DevTools opens Chromium's DevTools protocol on a loopback port the
	// system chooses (--remote-debugging-port=0), so that a test can drive
	// the browser (e.g. with chromedp's remote allocator on DevToolsURL).
	DevTools bool
}

// StartChromium starts headless Chromium (found with LookPath: a failure in
// CI, a skip elsewhere) on cfg.URL, with a fresh profile, no background
// traffic, audio muted, autoplay allowed and WebRTC allowed on loopback. The
// test's cleanup kills it and its helper processes.
func StartChromium(t testing.TB, cfg ChromiumConfig) *Chromium {
	t.Helper()
	bin := LookPath(t, "chromium")
	profile := t.TempDir()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--mute-audio", "--autoplay-policy=no-user-gesture-required",
		"--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
		"--user-data-dir=" + profile}
	if cfg.DevTools {
		args = append(args, "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0")
	}
	if cfg.HostRules != "" {
		args = append(args, "--host-resolver-rules="+cfg.HostRules)
	}
	args = append(args, cfg.Args...)
	args = append(args, cfg.URL)
	// Chromium forks its helpers: StartProcess kills the group.
	return &Chromium{p: StartProcess(t, exec.Command(bin, args...)), profile: profile}
}

// DevToolsURL waits (at most 30 s) for the DevTools endpoint of a Chromium
// started with ChromiumConfig.DevTools and returns its browser WebSocket
// URL (ws://127.0.0.1:PORT/devtools/browser/ID), read from the
// DevToolsActivePort file Chromium writes in its profile. It fails the test
// when Chromium exits first or never opens it.
func (c *Chromium) DevToolsURL(t testing.TB) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(c.profile, "DevToolsActivePort"))
		if err == nil {
			// Two lines: the port, then the browser target's path.
			lines := strings.Fields(string(b))
			if len(lines) == 2 {
				return fmt.Sprintf("ws://127.0.0.1:%s%s", lines[0], lines[1])
			}
		}
		if c.p.Exited() {
			t.Fatalf("chromium exited before opening DevTools:\n%s", c.p.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromium opened no DevTools port within 30 s (started without ChromiumConfig.DevTools?):\n%s", c.p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close kills Chromium and its helpers and waits for it (at most 10 s).
// The test's cleanup does it too.
func (c *Chromium) Close() { c.p.Kill() }
