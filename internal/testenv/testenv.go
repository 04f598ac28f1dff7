// Package testenv is what sipstream's tests share for talking to real
// third-party programs (nginx-rtmp, ffmpeg, sipp, kamailio, baresip,
// chromium): finding them, picking loopback ports, failing instead of
// skipping in CI, one process helper (StartProcess: own process group,
// killed whole at cleanup, output in the log on failure) under one
// launcher per program (StartSipp and RunSipp, StartKamailio, StartNginx,
// StartBaresip, StartChromium, RecordStream), self-signed certificates
// (SelfSigned), and reading back what was published: ffprobe and ffmpeg
// checks (ProbeStreams, PacketTimes, KeyframeTimes, VideoFrames,
// CountVideoFrames, DecodeErrors, DecodePCM, FrameMD5s, Duration,
// RunClean), the analyser (AnalyseRecording) and marker media for A/V
// offsets (MakeMarkerMedia, MarkerOffsets).
package testenv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI (the CI environment variable is
// set to a non-empty value other than "false"). In CI a missing program is a
// failure, never a skip.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// LookPath returns the absolute path of program. When it is missing the test
// fails under CI and is skipped elsewhere.
func LookPath(t testing.TB, program string) string {
	t.Helper()
	p, err := exec.LookPath(program)
	if err != nil {
		if InCI() {
			t.Fatalf("%s is required in CI but not installed: %v (.ci/run installs it)", program, err)
		}
		t.Skipf("%s not installed: %v", program, err)
	}
	return p
}

// FreePort returns a loopback port that was free a moment ago, for programs
// that must be told a port instead of reporting the one they bound. network is
// "tcp" or "udp".
func FreePort(t testing.TB, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free udp port: %v", err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free tcp port: %v", err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// FreeUDPRange returns the first of n consecutive loopback UDP ports that
// were all free a moment ago, the first one even, for programs that bind a
// block from a port they are given (sipp's -mp: audio on the port, video two
// above, each with its RTCP neighbour).
func FreeUDPRange(t testing.TB, n int) int {
	t.Helper()
	for try := 0; try < 100; try++ {
		base := FreePort(t, "udp") &^ 1
		conns := make([]net.PacketConn, 0, n)
		ok := true
		for i := 0; i < n; i++ {
			c, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(base+i))
			if err != nil {
				ok = false
				break
			}
			conns = append(conns, c)
		}
		for _, c := range conns {
			c.Close()
		}
		if ok && base > 0 && base+n <= 65536 {
			return base
		}
	}
	t.Fatalf("no %d consecutive free udp ports", n)
	return 0
}

// SyncBuffer collects a process's output (or a log): safe to read while it
// is written to. The zero value is ready.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
