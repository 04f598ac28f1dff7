//go:build unix

package testenv

import (
	"os/exec"
	"testing"
)

// Chromium is a headless Chromium started by StartChromium.
type Chromium struct {
	p *Process
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
}

// StartChromium starts headless Chromium (found with LookPath: a failure in
// CI, a skip elsewhere) on cfg.URL, with a fresh profile, no background
// traffic, audio muted, autoplay allowed and WebRTC allowed on loopback. The
// test's cleanup kills it and its helper processes.
func StartChromium(t testing.TB, cfg ChromiumConfig) *Chromium {
	t.Helper()
	bin := LookPath(t, "chromium")
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--mute-audio", "--autoplay-policy=no-user-gesture-required",
		"--allow-loopback-in-peer-connection", "--disable-features=WebRtcHideLocalIpsWithMdns",
		"--user-data-dir=" + t.TempDir()}
	if cfg.HostRules != "" {
		args = append(args, "--host-resolver-rules="+cfg.HostRules)
	}
	args = append(args, cfg.Args...)
	args = append(args, cfg.URL)
	// Chromium forks its helpers: StartProcess kills the group.
	return &Chromium{p: StartProcess(t, exec.Command(bin, args...))}
}

// Close kills Chromium and its helpers and waits for it (at most 10 s).
// The test's cleanup does it too.
func (c *Chromium) Close() { c.p.Kill() }
