package testenv

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NATSConfig says how StartNATS runs nats-server. The zero value is a
// JetStream server storing in a temporary folder of the test's.
type NATSConfig struct {
	// StoreDir is JetStream's store folder (-sd). "" means a new
	// t.TempDir().
	StoreDir string
	// Args are more command-line arguments, e.g. "-DV" for a trace.
	// Empty means none.
	Args []string
}

// NATS is a real nats-server with JetStream on loopback, started for one
// test; it can be stopped and restarted on the same port and store.
type NATS struct {
	bin   string
	args  []string
	port  int
	store string

	mu   sync.Mutex
	p    *Process
	logs strings.Builder // the output of the previous lives
}

// StartNATS starts nats-server (-js -sd DIR -a 127.0.0.1 -p PORT, a free
// port) and waits until it is ready; the test's cleanup stops it. It
// fails under CI (and skips elsewhere) when nats-server is missing, and
// fails the test when the server does not come up within 10 s.
func StartNATS(t testing.TB, cfg NATSConfig) *NATS {
	t.Helper()
	n := &NATS{bin: LookPath(t, "nats-server"), store: cfg.StoreDir, port: FreePort(t, "tcp")}
	if n.store == "" {
		n.store = t.TempDir()
	}
	n.args = append([]string{"-js", "-sd", n.store, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port)}, cfg.Args...)
	n.start(t)
	t.Cleanup(n.Stop)
	return n
}

// URL returns the server's client URL: nats://127.0.0.1:PORT.
func (n *NATS) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// Port returns the server's client port on 127.0.0.1.
func (n *NATS) Port() int { return n.port }

// StoreDir returns JetStream's store folder.
func (n *NATS) StoreDir() string { return n.store }

// start runs the server and waits until its log says it is ready.
func (n *NATS) start(t testing.TB) {
	t.Helper()
	p := StartProcess(t, exec.Command(n.bin, n.args...))
	n.mu.Lock()
	n.p = p
	n.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Output(), "Server is ready") {
		if p.Exited() || time.Now().After(deadline) {
			p.Kill()
			t.Fatalf("nats-server did not start on port %d:\n%s", n.port, tail(p.Output(), 8<<10))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the server (SIGTERM: a clean shutdown, SIGKILL after 10 s)
// and waits for it to exit; Restart brings it back. It may be called
// again.
func (n *NATS) Stop() {
	n.mu.Lock()
	p := n.p
	n.p = nil
	n.mu.Unlock()
	if p == nil {
		return
	}
	if !p.Exited() {
		_ = p.Signal(syscall.SIGTERM)
		if p.Wait(10*time.Second) != nil && !p.Exited() {
			p.Kill()
		}
	}
	n.mu.Lock()
	n.logs.WriteString(p.Output())
	n.mu.Unlock()
}

// Restart stops the server (as Stop) and starts it again on the same
// port and store, waiting until it is ready.
func (n *NATS) Restart(t testing.TB) {
	t.Helper()
	n.Stop()
	n.start(t)
}

// Log returns what the server printed in all its lives so far.
func (n *NATS) Log() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	s := n.logs.String()
	if n.p != nil {
		s += n.p.Output()
	}
	return s
}
