package session

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

// TestLoadCPU is a measurement, not a check, run only with SESSION_LOAD=n:
// n A/V sessions on loopback, sendrecv audio (silence goes back), each fed
// 25 fps H.264 (the test clip, the packets of a frame back to back, as
// phones send them) and 50 PCMA packets a second for 10 s by one sender
// goroutine on a thread of its own, whose CPU time is left out. It logs
// the process's remaining CPU time per call (share of one core) and per
// packet received, and the heap per call. Run it alone: CPU figures are shared with everything
// else on the machine.
func TestLoadCPU(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("SESSION_LOAD"))
	if n <= 0 {
		t.Skip("SESSION_LOAD=<sessions> not set")
	}
	const warm, run = 2 * time.Second, 10 * time.Second
	ac, aAddr := listenUDP4(t)
	vc, vAddr := listenUDP4(t)
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	var sessions []*Session
	defer func() {
		for _, s := range sessions {
			s.Close()
		}
	}()
	for i := 0; i < n; i++ {
		s, err := New(Config{IP: loopback, Audio: true, Video: true, OnFrame: func(*media.Frame) {}})
		require.NoError(t, err)
		sessions = append(sessions, s)
		require.NoError(t, s.Start([]media.StreamSpec{audioSpec(aAddr), videoSpec(vAddr, media.Feedback{PLI: true, NACK: true})}))
	}
	_, vp := clipPackets(t, 1, 0x5678, 0)
	var frames [][][]byte // the clip's frames, packets of each
	for i, p := range vp {
		if i == 0 || p.At-vp[i-1].At > time.Millisecond {
			frames = append(frames, nil)
		}
		frames[len(frames)-1] = append(frames[len(frames)-1], p.Data)
	}
	apkt := tonePackets(t, 1, 0x1234, 0, 0)[0].Data
	type dst struct{ a, v netip.AddrPort }
	dsts := make([]dst, n)
	for i, s := range sessions {
		dsts[i] = dst{s.LocalAddr(media.KindAudio), s.LocalAddr(media.KindVideo)}
	}

	type result struct {
		sent   int
		thread time.Duration
	}
	start := make(chan struct{})
	stop := make(chan struct{})
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		buf := make([]byte, 2048)
		var aseq, vseq uint16
		var ats, vts uint32
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		sent, k := 0, 0
		var t0 time.Duration
		for {
			select {
			case <-stop:
				res <- result{sent, threadCPU() - t0}
				return
			case <-start:
				start = nil
				t0, sent = threadCPU(), 0
			case <-tick.C:
			}
			aseq++
			ats += 160
			for _, d := range dsts {
				b := append(buf[:0], apkt...)
				binary.BigEndian.PutUint16(b[2:], aseq)
				binary.BigEndian.PutUint32(b[4:], ats)
				if _, err := ac.WriteToUDPAddrPort(b, d.a); err == nil {
					sent++
				}
			}
			if k++; k%2 == 0 {
				fr := frames[(k/2)%len(frames)]
				vts += 3600
				for _, p := range fr {
					vseq++
					for _, d := range dsts {
						b := append(buf[:0], p...)
						binary.BigEndian.PutUint16(b[2:], vseq)
						binary.BigEndian.PutUint32(b[4:], vts)
						if _, err := vc.WriteToUDPAddrPort(b, d.v); err == nil {
							sent++
						}
					}
				}
			}
		}
	}()
	time.Sleep(warm)
	var received0 uint64
	for _, s := range sessions {
		st := s.Stats()
		received0 += st.Audio.PacketsReceived + st.Video.PacketsReceived
	}
	cpu0 := processCPU()
	start <- struct{}{}
	time.Sleep(run)
	cpu1 := processCPU()
	close(stop)
	r := <-res
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	t.Logf("heap %d B and goroutine stacks %d B per active call", (int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc))/int64(n), (int64(ms1.StackInuse)-int64(ms0.StackInuse))/int64(n))
	var received, lost uint64
	for _, s := range sessions {
		st := s.Stats()
		received += st.Audio.PacketsReceived + st.Video.PacketsReceived
		lost += st.Audio.PacketsLost + st.Video.PacketsLost
	}
	received -= received0
	cpu := cpu1 - cpu0 - r.thread
	t.Logf("%d calls, %v: sent %d, received %d (lost %d); CPU without the sender %v (sender %v): %.2f %% of a core per call, %.2f µs per packet",
		n, run, r.sent, received, lost, cpu.Round(time.Millisecond), r.thread.Round(time.Millisecond),
		100*cpu.Seconds()/run.Seconds()/float64(n), float64(cpu.Microseconds())/float64(received))
}

func listenUDP4(t *testing.T) (*net.UDPConn, netip.AddrPort) {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func processCPU() time.Duration { return rusage(syscall.RUSAGE_SELF) }
func threadCPU() time.Duration  { return rusage(1) } // RUSAGE_THREAD

func rusage(who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
