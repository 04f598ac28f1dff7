package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Process is a program started by StartProcess: in its own process group
// (programs that fork, kamailio or Chromium, are killed whole), waited for
// by one goroutine, killed when the test ends.
type Process struct {
	// Name is the program's name in messages (the command's base name).
	Name   string
	cmd    *exec.Cmd
	out    *SyncBuffer
	done   chan struct{}
	err    error // the exit status, once done is closed
	killed atomic.Bool
}

// StartProcess starts cmd in a process group of its own and registers a
// cleanup that kills the group and waits (at most 10 s) for the process.
// When cmd has neither Stdout nor Stderr set, both are captured (Output)
// and shown in the test log if the test failed. It fails the test if cmd
// cannot start.
func StartProcess(t testing.TB, cmd *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Name: filepath.Base(cmd.Path), cmd: cmd, done: make(chan struct{})}
	if cmd.Stdout == nil && cmd.Stderr == nil {
		p.out = &SyncBuffer{}
		cmd.Stdout, cmd.Stderr = p.out, p.out
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", p.Name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() && p.out != nil {
			t.Logf("%s output:\n%s", p.Name, tail(p.out.String(), 32<<10))
		}
	})
	return p
}

// tail returns the last n bytes of s, marked as cut when it is longer.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// Pid returns the process's id (also its process group's).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Output returns what the process printed so far, when StartProcess
// captured it ("" otherwise).
func (p *Process) Output() string {
	if p.out == nil {
		return ""
	}
	return p.out.String()
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Crashed reports whether the process exited without being killed by
// Kill (or the test's cleanup).
func (p *Process) Crashed() bool { return p.Exited() && !p.killed.Load() }

// Wait waits up to d for the process to exit by itself and returns its
// exit status (nil: exit code 0), or an error saying it is still running.
func (p *Process) Wait(d time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		return fmt.Errorf("%s did not exit within %v", p.Name, d)
	}
}

// ExitCode returns the exit code, -1 while running or when killed by a
// signal.
func (p *Process) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Signal sends sig to the process alone (not its group), e.g.
// syscall.SIGINT or SIGTERM to ask a server for the clean shutdown the test
// then checks with Wait. An exit it causes counts as a crash for Crashed.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill sends SIGKILL to the process group (a crash, not a shutdown: helper
// processes left behind go too) and waits at most 10 s for the process to
// exit. It may be called again.
func (p *Process) Kill() {
	p.killed.Store(true)
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}
