package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Nginx is a real nginx with libnginx-mod-rtmp on loopback, started for one
// test: an RTMP server with a "live" application (live on, nothing recorded)
// and an HTTP server whose /stat location is the module's rtmp_stat page.
type Nginx struct {
	t        testing.TB
	bin      string
	conf     string
	prefix   string
	RTMPPort int // RTMP port on 127.0.0.1
	HTTPPort int // HTTP port on 127.0.0.1 (/stat)

	mu     sync.Mutex
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	exited chan struct{}
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

// StartNginxRTMP starts nginx-rtmp on free loopback ports and stops it when
// the test ends. It fails under CI (and skips elsewhere) when nginx or the
// module is missing.
func StartNginxRTMP(t testing.TB) *Nginx {
	t.Helper()
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
      live on;
      record off;
    }
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
`, module, n.prefix, n.RTMPPort, tmp, tmp, tmp, tmp, tmp, n.HTTPPort)
	n.conf = filepath.Join(n.prefix, "nginx.conf")
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n.Start()
	t.Cleanup(n.Stop)
	return n
}

// RTMPURL returns the URL of the "live" application:
// rtmp://127.0.0.1:PORT/live.
func (n *Nginx) RTMPURL() string { return fmt.Sprintf("rtmp://127.0.0.1:%d/live", n.RTMPPort) }

// StatURL returns the rtmp_stat page's URL.
func (n *Nginx) StatURL() string { return fmt.Sprintf("http://127.0.0.1:%d/stat", n.HTTPPort) }

// Start starts nginx (again, after Stop) on the same ports and waits until
// it accepts RTMP connections.
func (n *Nginx) Start() {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return
	}
	cmd := exec.Command(n.bin, "-p", n.prefix, "-c", n.conf, "-e", "stderr")
	n.stderr = &bytes.Buffer{}
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	n.cmd, n.exited = cmd, exited
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.RTMPPort), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			n.t.Fatalf("nginx exited at start:\n%s", n.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nginx did not listen on %d within 15 s:\n%s", n.RTMPPort, n.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills nginx (SIGKILL: connections drop as in a crash) and waits for
// it to exit. Start brings it back.
func (n *Nginx) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
	if n.t.Failed() {
		n.t.Logf("nginx stderr:\n%s", n.stderr.String())
	}
	n.cmd = nil
}
