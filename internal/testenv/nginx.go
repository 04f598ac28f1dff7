package testenv

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// NginxConfig says what StartNginx's "live" application does besides
// serving live streams. The zero value records nothing.
type NginxConfig struct {
	// Record records every stream published to "live" as FLV into
	// Nginx.RecordDir, one file per stream name (record all, record_path,
	// record_unique off).
	Record bool
	// RecordAppend appends a stream's later publications (after a
	// reconnect or a restart) to its file instead of starting it anew
	// (record_append on). It needs Record.
	RecordAppend bool
	// LiveDirectives are more directives for application "live", e.g.
	// "on_publish http://127.0.0.1:8080/auth;". Empty means none.
	LiveDirectives string
}

// Nginx is a real nginx with libnginx-mod-rtmp on loopback, started for one
// test: an RTMP server with a "live" application and an HTTP server whose
// /stat location is the module's rtmp_stat page.
type Nginx struct {
	t        testing.TB
	bin      string
	conf     string
	prefix   string
	RTMPPort int // RTMP port on 127.0.0.1
	HTTPPort int // HTTP port on 127.0.0.1 (/stat)
	// RecordDir is where streams are recorded (NginxConfig.Record), one
	// NAME.flv per stream. Empty without Record.
	RecordDir string

	mu sync.Mutex
	p  *Process
}

// rtmpModule finds the RTMP module's shared object.
func rtmpModule(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("dpkg", "-L", "libnginx-mod-rtmp").Output()
	if err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if strings.HasSuffix(line, "ngx_rtmp_module.so") {
				return line
			}
		}
	}
	const fallback = "/usr/lib/nginx/modules/ngx_rtmp_module.so"
	if _, statErr := os.Stat(fallback); statErr == nil {
		return fallback
	}
	if InCI() {
		t.Fatalf("libnginx-mod-rtmp is required in CI but not installed (.ci/run installs it)")
	}
	t.Skipf("libnginx-mod-rtmp not installed")
	return ""
}

// StartNginxRTMP starts nginx-rtmp on free loopback ports with the zero
// NginxConfig: a "live" application that records nothing.
func StartNginxRTMP(t testing.TB) *Nginx {
	t.Helper()
	return StartNginx(t, NginxConfig{})
}

// StartNginx starts nginx-rtmp configured by cfg on free loopback ports
// and kills it when the test ends; nginx exiting by itself before that
// (not by Stop) fails the test. It fails under CI (and skips elsewhere)
// when nginx or the module is missing.
func StartNginx(t testing.TB, cfg NginxConfig) *Nginx {
	t.Helper()
	if cfg.RecordAppend && !cfg.Record {
		t.Fatal("testenv: NginxConfig.RecordAppend needs Record")
	}
	n := &Nginx{
		t:        t,
		bin:      LookPath(t, "nginx"),
		prefix:   t.TempDir(),
		RTMPPort: FreePort(t, "tcp"),
		HTTPPort: FreePort(t, "tcp"),
	}
	module := rtmpModule(t)
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(n.prefix, d), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(n.prefix, "tmp")
	live := "live on;\n"
	if cfg.Record {
		// The directory is open to all in case a worker runs unprivileged.
		n.RecordDir = filepath.Join(n.prefix, "rec")
		if err := os.MkdirAll(n.RecordDir, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(n.RecordDir, 0o777); err != nil {
			t.Fatal(err)
		}
		live += "      record all;\n      record_path " + n.RecordDir + ";\n      record_unique off;\n"
		if cfg.RecordAppend {
			live += "      record_append on;\n"
		}
	} else {
		live += "      record off;\n"
	}
	if cfg.LiveDirectives != "" {
		live += "      " + cfg.LiveDirectives + "\n"
	}
	// master_process off: one process, no worker switching to an
	// unprivileged user that could not write the test's folders.
	conf := fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
worker_processes 1;
error_log stderr info;
pid %s/nginx.pid;
events { worker_connections 256; }
rtmp {
  server {
    listen 127.0.0.1:%d;
    chunk_size 4096;
    application live {
      %s    }
  }
}
http {
  access_log off;
  client_body_temp_path %s/body;
  proxy_temp_path %s/proxy;
  fastcgi_temp_path %s/fastcgi;
  uwsgi_temp_path %s/uwsgi;
  scgi_temp_path %s/scgi;
  server {
    listen 127.0.0.1:%d;
    location /stat { rtmp_stat all; }
  }
}
`, module, n.prefix, n.RTMPPort, live, tmp, tmp, tmp, tmp, tmp, n.HTTPPort)
	n.conf = filepath.Join(n.prefix, "nginx.conf")
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.Start()
	t.Cleanup(func() {
		n.mu.Lock()
		p := n.p
		n.mu.Unlock()
		if p != nil && p.Crashed() {
			t.Errorf("nginx exited during the test: %v", p.Wait(0))
		}
		n.Stop()
	})
	return n
}

// RTMPURL returns the URL of the "live" application:
// rtmp://127.0.0.1:PORT/live.
func (n *Nginx) RTMPURL() string { return fmt.Sprintf("rtmp://127.0.0.1:%d/live", n.RTMPPort) }

// StatURL returns the rtmp_stat page's URL.
func (n *Nginx) StatURL() string { return fmt.Sprintf("http://127.0.0.1:%d/stat", n.HTTPPort) }

// RecordFile returns the file NginxConfig.Record writes stream to.
func (n *Nginx) RecordFile(stream string) string { return filepath.Join(n.RecordDir, stream+".flv") }

// Start starts nginx (again, after Stop) on the same ports and waits until
// it accepts RTMP connections.
func (n *Nginx) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p != nil {
		return
	}
	n.p = StartProcess(n.t, exec.Command(n.bin, "-p", n.prefix, "-c", n.conf, "-e", "stderr"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.RTMPPort), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if n.p.Exited() {
			n.t.Fatalf("nginx exited at start:\n%s", n.p.Output())
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nginx did not listen on %d within 15 s:\n%s", n.RTMPPort, n.p.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills nginx (SIGKILL: connections drop as in a crash) and waits for
// it to exit. Start brings it back.
func (n *Nginx) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.p == nil {
		return
	}
	n.p.Kill()
	n.p = nil
}

// NginxStream is what nginx-rtmp's statistics page (rtmp_stat) says about
// a stream of application "live": what it made of the publisher's
// metadata and sequence headers.
type NginxStream struct {
	Name  string `xml:"name"`
	Video struct {
		Width   int    `xml:"width"`
		Height  int    `xml:"height"`
		Codec   string `xml:"codec"`   // "H264"
		Profile string `xml:"profile"` // "Baseline"
	} `xml:"meta>video"`
	Audio struct {
		Codec      string `xml:"codec"` // "AAC", "G711A"
		SampleRate int    `xml:"sample_rate"`
	} `xml:"meta>audio"`
	// Publishing is non-nil while a publisher publishes the stream (a
	// stream listed without it has players waiting).
	Publishing *struct{} `xml:"publishing"`
}

// Streams reads the statistics page and returns the streams of
// application "live": published ones and those players wait for.
func (n *Nginx) Streams(ctx context.Context) ([]NginxStream, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.StatURL(), nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Apps []struct {
			Name    string        `xml:"name"`
			Streams []NginxStream `xml:"live>stream"`
		} `xml:"server>application"`
	}
	if err := xml.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return nil, fmt.Errorf("nginx stat page: %w", err)
	}
	for _, a := range st.Apps {
		if a.Name == "live" {
			return a.Streams, nil
		}
	}
	return nil, nil
}

// WaitStream waits until the statistics page lists stream, which it does
// once a player waits for it (or a publisher publishes it), or ctx ends.
func (n *Nginx) WaitStream(ctx context.Context, stream string) error {
	for {
		streams, _ := n.Streams(ctx)
		for _, s := range streams {
			if s.Name == stream {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nginx never listed stream %q: %w", stream, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
