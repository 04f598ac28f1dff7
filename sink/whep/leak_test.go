package whep_test

import (
	"bufio"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/whep"
)

// udpSockets counts this process's open UDP sockets (IPv4 and IPv6).
func udpSockets(t *testing.T) int {
	t.Helper()
	inodes := make(map[string]bool)
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) > 9 && fields[0] != "sl" {
				inodes[fields[9]] = true
			}
		}
		fh.Close()
	}
	fds, err := filepath.Glob("/proc/self/fd/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		l, err := os.Readlink(fd)
		if err != nil || !strings.HasPrefix(l, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] {
			n++
		}
	}
	return n
}

// 50 viewers join and leave, a few at a time, while media flows: no
// goroutine and no UDP socket is left behind.
func TestViewersJoinAndLeaveWithoutLeaks(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc")
	}
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	socketsBefore := udpSockets(t)

	s, err := whep.New(whep.Config{Video: media.CodecH264, Audio: media.CodecPCMA, ICEIPs: loopback})
	if err != nil {
		t.Fatal(err)
	}
	ts := serve(t, s)

	// Media flows all along, as in a call.
	stop := make(chan struct{})
	var feeder sync.WaitGroup
	feeder.Add(1)
	frames := clipFrames(t)
	go func() {
		defer feeder.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			a := toneFrame(i)
			_ = s.WriteFrame(&a)
			if i%2 == 0 {
				f := frames[(i/2)%len(frames)]
				_ = s.WriteFrame(&f)
			}
		}
	}()

	const viewers, parallel = 50, 3
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	errs := make(chan string, viewers)
	for i := 0; i < viewers; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			v, err := dial(ts.URL+"/whep", viewerOpts{})
			if err != nil {
				errs <- err.Error()
				return
			}
			defer v.close()
			// Wait until media reaches the viewer, then leave.
			select {
			case <-v.audio:
			case <-time.After(20 * time.Second):
				errs <- "no audio reached a viewer"
				return
			}
			req, _ := http.NewRequest(http.MethodDelete, ts.URL+v.location, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs <- err.Error()
				return
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- "DELETE: " + resp.Status
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	st := s.Stats()
	if st.Viewers != 0 || st.ViewersTotal != viewers {
		t.Errorf("after all left: %+v", st)
	}
	close(stop)
	feeder.Wait()

	// No UDP socket left once every viewer is gone, sink still open.
	waitFor(t, "UDP sockets to close", func() bool { return udpSockets(t) == socketsBefore })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts.Close()
	http.DefaultClient.CloseIdleConnections()
	if n := udpSockets(t); n != socketsBefore {
		t.Errorf("%d UDP sockets open, %d before", n, socketsBefore)
	}
}
