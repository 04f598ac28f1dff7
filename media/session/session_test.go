package session

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/rtpdtmf"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// peer is a test RTP endpoint on a real loopback socket.
type peer struct {
	conn *net.UDPConn
	addr netip.AddrPort
}

func newPeer(t *testing.T) *peer {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return &peer{conn: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
}

// recv reads packets until fn returns true or the deadline passes.
func (p *peer) recv(t *testing.T, fn func(b []byte) bool) {
	t.Helper()
	buf := make([]byte, 2048)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		require.NoError(t, p.conn.SetReadDeadline(deadline))
		n, err := p.conn.Read(buf)
		require.NoError(t, err)
		if fn(buf[:n]) {
			return
		}
	}
	t.Fatal("timeout waiting for packets")
}

type frameCopy struct {
	codec media.Codec
	pts   time.Duration
	key   bool
	data  []byte
}

func frameChan(n int) (chan frameCopy, func(*media.Frame)) {
	ch := make(chan frameCopy, n)
	return ch, func(f *media.Frame) {
		select {
		case ch <- frameCopy{f.Codec, f.PTS, f.Keyframe, append([]byte(nil), f.Payload...)}:
		default:
		}
	}
}

func waitFrames(t *testing.T, ch chan frameCopy, n int) []frameCopy {
	t.Helper()
	var out []frameCopy
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case f := <-ch:
			out = append(out, f)
		case <-timeout:
			t.Fatalf("got %d of %d frames", len(out), n)
		}
	}
	return out
}

// TestUDPAudioVideo runs a session on real loopback sockets: PCMA and
// H.264 in, frames out, silence back to the latched source, and a Close
// that returns the ports.
func TestUDPAudioVideo(t *testing.T) {
	pool, err := NewPortPool(41000, 41099)
	require.NoError(t, err)
	frames, onFrame := frameChan(1000)
	s, err := New(Config{IP: loopback, Ports: pool, Audio: true, Video: true, OnFrame: onFrame})
	require.NoError(t, err)
	require.Equal(t, 2, pool.InUse())
	ap, vp := s.LocalPort(media.KindAudio), s.LocalPort(media.KindVideo)
	require.Zero(t, ap%2)
	require.Zero(t, vp%2)
	require.NotEqual(t, ap, vp)

	pa, pv := newPeer(t), newPeer(t)
	require.NoError(t, s.Start([]media.StreamSpec{audioSpec(pa.addr), videoSpec(pv.addr, media.Feedback{PLI: true})}))
	require.Error(t, s.Start(nil), "Start twice")

	for _, p := range tonePackets(t, 10, 5, 1, 0) {
		_, err := pa.conn.WriteToUDPAddrPort(p.Data, s.LocalAddr(media.KindAudio))
		require.NoError(t, err)
	}
	_, vpkts := clipPackets(t, 1, 6, 0)
	for _, p := range vpkts[:40] {
		_, err := pv.conn.WriteToUDPAddrPort(p.Data, s.LocalAddr(media.KindVideo))
		require.NoError(t, err)
		time.Sleep(100 * time.Microsecond) // loopback buffers are small
	}
	// The two streams are read by different goroutines: under load either
	// may come first, so wait for both counts rather than for the first 15
	// frames.
	var audio, video int
	timeout := time.After(30 * time.Second)
	for audio < 10 || video < 5 {
		select {
		case f := <-frames:
			switch f.codec {
			case media.CodecPCMA:
				audio++
			case media.CodecH264:
				video++
			}
		case <-timeout:
			t.Fatalf("got %d audio (want 10) and %d video frames (want >= 5)", audio, video)
		}
	}
	require.Equal(t, 10, audio)

	// silence comes back to the peer's socket
	pa.recv(t, func(b []byte) bool {
		var p rtp.Packet
		return p.Unmarshal(b) == nil && p.PayloadType == 8 && len(p.Payload) == 160
	})
	st := s.Stats()
	require.Equal(t, uint64(10), st.Audio.PacketsReceived)
	require.Equal(t, pa.addr, st.Audio.Source)

	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "idempotent")
	require.Zero(t, pool.InUse())
	require.ErrorIs(t, s.Update(nil), ErrClosed)
	require.ErrorIs(t, s.SendDTMF(context.Background(), "1"), ErrClosed)
}

func TestSendDTMFUDP(t *testing.T) {
	s, err := New(Config{IP: loopback, Audio: true, DTMFDuration: 60 * time.Millisecond, DTMFGap: 40 * time.Millisecond})
	require.NoError(t, err)
	defer s.Close()
	require.ErrorIs(t, s.SendDTMF(context.Background(), "1"), ErrNotStarted)
	pa := newPeer(t)
	require.NoError(t, s.Start([]media.StreamSpec{audioSpec(pa.addr)}))
	require.Error(t, s.SendDTMF(context.Background(), "1x"))
	require.NoError(t, s.SendDTMF(context.Background(), "*9"))
	var digits []rune
	dec, _ := rtpdtmf.NewDecoder(rtpdtmf.DecoderConfig{})
	pa.recv(t, func(b []byte) bool {
		var p rtp.Packet
		if p.Unmarshal(b) != nil || p.PayloadType != 101 {
			return false
		}
		if ev, err := dec.Decode(&p); err == nil {
			digits = append(digits, ev.Digit())
		}
		return len(digits) == 2
	})
	require.Equal(t, []rune{'*', '9'}, digits)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, s.SendDTMF(ctx, "123"), context.Canceled)
}

// TestSRTPRoundTrip: the peer encrypts with its key (pion/srtp), the
// session decrypts; the session's silence decrypts with the session's key.
func TestSRTPRoundTrip(t *testing.T) {
	local, remote := make([]byte, 30), make([]byte, 30)
	_, _ = rand.Read(local)
	_, _ = rand.Read(remote)
	frames, onFrame := frameChan(100)
	s, err := New(Config{IP: loopback, Audio: true, OnFrame: onFrame})
	require.NoError(t, err)
	defer s.Close()
	pa := newPeer(t)
	sp := audioSpec(pa.addr)
	sp.Crypto = &media.Crypto{Suite: "AES_CM_128_HMAC_SHA1_80", LocalKey: local, RemoteKey: remote}
	require.NoError(t, s.Start([]media.StreamSpec{sp}))

	enc, err := srtp.CreateContext(remote[:16], remote[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	require.NoError(t, err)
	for _, p := range tonePackets(t, 20, 77, 1, 0) {
		b, err := enc.EncryptRTP(nil, p.Data, nil)
		require.NoError(t, err)
		_, err = pa.conn.WriteToUDPAddrPort(b, s.LocalAddr(media.KindAudio))
		require.NoError(t, err)
	}
	// a forged packet is rejected
	forged := tonePackets(t, 1, 77, 50, 8000)[0].Data
	_, err = pa.conn.WriteToUDPAddrPort(append(forged, make([]byte, 10)...), s.LocalAddr(media.KindAudio))
	require.NoError(t, err)

	got := waitFrames(t, frames, 20)
	var pcm []int16
	for _, f := range got {
		pcm = g711.DecodeALaw(pcm, f.data)
	}
	require.Greater(t, testmedia.Goertzel(pcm, 8000, 1000), 0.9)

	dec, err := srtp.CreateContext(local[:16], local[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
	require.NoError(t, err)
	pa.recv(t, func(b []byte) bool {
		out, err := dec.DecryptRTP(nil, b, nil)
		if err != nil {
			return false
		}
		var p rtp.Packet
		require.NoError(t, p.Unmarshal(out))
		return p.PayloadType == 8 && len(p.Payload) == 160 && p.Payload[0] == 0xd5
	})
	require.Eventually(t, func() bool { return s.Stats().Audio.SRTPErrors == 1 }, 10*time.Second, 10*time.Millisecond)
}

// TestTimeoutEventsFakeClock drives the running session's timers with a
// fake clock: the events reach OnEvent without any sleeping.
func TestTimeoutEventsFakeClock(t *testing.T) {
	clk := newFakeClock()
	n := newMemNet()
	events := make(chan Event, 10)
	s, err := New(Config{IP: loopback, Audio: true, Clock: clk, Listen: n.listen, MediaTimeout: 5 * time.Second,
		OnEvent: func(ev Event) { events <- ev }})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Start([]media.StreamSpec{audioSpec(peerAudio)}))
	clk.Advance(4 * time.Second)
	clk.Advance(time.Second)
	// The owner loop re-arms its timer relative to the clock it reads after
	// polling: if the second Advance lands in between (a preempted loop),
	// the timer is armed past the clock's last move and only a further
	// Advance fires it. Nudge the clock until the event comes, as time would.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			require.Equal(t, EventMediaTimeout, ev.Type)
			// Not at 4 s; at 5 s, or as soon after as the loop saw the clock.
			require.False(t, ev.Time.Before(t0.Add(5*time.Second)), "fired at %v", ev.Time.Sub(t0))
			require.True(t, ev.Time.Before(t0.Add(5*time.Second+500*time.Millisecond)), "fired at %v", ev.Time.Sub(t0))
			return
		case <-time.After(50 * time.Millisecond):
			clk.Advance(time.Millisecond)
		case <-deadline:
			t.Fatal("no timeout event")
		}
	}
}

// TestPortPool runs on the in-memory network: fixed real ports (41202...)
// are in Linux's ephemeral range, so any concurrently running test could
// hold one and make the test fail. The pool's use of real sockets is covered
// by TestUDPAudioVideo.
func TestPortPool(t *testing.T) {
	n := newMemNet()
	pool, err := NewPortPool(41201, 41206) // pairs 41202/3, 41204/5
	require.NoError(t, err)
	require.Equal(t, 2, pool.Size())
	s1, err := New(Config{IP: loopback, Ports: pool, Audio: true, Video: true, Listen: n.listen})
	require.NoError(t, err)
	require.ElementsMatch(t, []int{41202, 41204}, []int{s1.LocalPort(media.KindAudio), s1.LocalPort(media.KindVideo)})
	_, err = New(Config{IP: loopback, Ports: pool, Audio: true, Listen: n.listen})
	require.ErrorIs(t, err, ErrPortsExhausted)
	require.NoError(t, s1.Close())
	require.Zero(t, pool.InUse())
	// a port held by another program is skipped
	c, err := n.listen(netip.AddrPortFrom(loopback, 41203))
	require.NoError(t, err)
	defer c.Close()
	s2, err := New(Config{IP: loopback, Ports: pool, Audio: true, Listen: n.listen})
	require.NoError(t, err)
	require.Equal(t, 41204, s2.LocalPort(media.KindAudio))
	// the video pair cannot be had: the audio pair is returned
	_, err = New(Config{IP: loopback, Ports: pool, Audio: true, Video: true, Listen: n.listen})
	require.ErrorIs(t, err, ErrPortsExhausted)
	require.Equal(t, 1, pool.InUse())
	require.NoError(t, s2.Close())
	require.Zero(t, pool.InUse())
	n.mu.Lock()
	open := len(n.conns)
	n.mu.Unlock()
	require.Equal(t, 1, open, "only the other program's socket is still bound")

	_, err = NewPortPool(5000, 5000)
	require.Error(t, err)
	_, err = New(Config{IP: loopback})
	require.Error(t, err)
}

func TestStartErrors(t *testing.T) {
	n := newMemNet()
	s, err := New(Config{IP: loopback, Audio: true, Listen: n.listen})
	require.NoError(t, err)
	defer s.Close()
	require.ErrorIs(t, s.Update(nil), ErrNotStarted)
	require.Error(t, s.Start([]media.StreamSpec{videoSpec(peerVideo, media.Feedback{})}), "no video socket")
	sp := audioSpec(peerAudio)
	sp.Crypto = &media.Crypto{Suite: "NOPE"}
	require.Error(t, s.Start([]media.StreamSpec{sp}))
	sp.Crypto = &media.Crypto{Suite: "AES_CM_128_HMAC_SHA1_80", LocalKey: []byte("secret"), RemoteKey: []byte("secret")}
	err = s.Start([]media.StreamSpec{sp})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "secret")
	require.NoError(t, s.Start([]media.StreamSpec{audioSpec(peerAudio)}))
}

// TestRequestKeyframeFallbackHook: a sink's RequestKeyframe on a peer that
// accepts neither PLI nor FIR runs the fallback hook on its own goroutine.
func TestRequestKeyframeFallbackHook(t *testing.T) {
	called := make(chan struct{}, 10)
	s, err := New(Config{IP: loopback, Video: true, Listen: newMemNet().listen,
		RequestKeyframeFallback: func() { called <- struct{}{} }})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.Start([]media.StreamSpec{videoSpec(peerVideo, media.Feedback{})}))
	s.RequestKeyframe()
	select {
	case <-called:
	case <-time.After(10 * time.Second):
		t.Fatal("fallback not called")
	}
	require.Eventually(t, func() bool { return s.Stats().Video.KeyframeFallbacks == 1 }, 10*time.Second, 5*time.Millisecond)
}

// Close racing with every other method: each returns (nil or ErrClosed or
// the context's error), nothing blocks, nothing leaks (goleak in TestMain)
// and the race detector sees no unsynchronised access.
func TestCloseRacesCalls(t *testing.T) {
	for i := 0; i < 20; i++ {
		n := newMemNet()
		s, err := New(Config{IP: loopback, Audio: true, Video: true, Listen: n.listen,
			DTMFDuration: time.Millisecond, DTMFGap: time.Millisecond,
			RequestKeyframeFallback: func() {}})
		require.NoError(t, err)
		require.NoError(t, s.Start([]media.StreamSpec{audioSpec(peerAudio), videoSpec(peerVideo, media.Feedback{})}))
		done := make(chan error, 16)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		calls := []func() error{
			func() error { return s.Update([]media.StreamSpec{audioSpec(peerAudio)}) },
			func() error { return s.SendDTMF(ctx, "123") },
			func() error { s.RequestKeyframe(); return nil },
			func() error { _ = s.Stats(); return nil },
			func() error { _ = s.LocalPort(media.KindAudio); return nil },
			func() error { return s.Close() },
			func() error { return s.Close() },
		}
		for _, c := range calls {
			go func() { done <- c() }()
		}
		for range calls {
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("iteration %d: %v", i, err)
				}
			case <-ctx.Done():
				t.Fatalf("iteration %d: a call blocked", i)
			}
		}
		cancel()
		require.NoError(t, s.Close())
		n.mu.Lock()
		open := len(n.conns)
		n.mu.Unlock()
		require.Zero(t, open, "sockets left open")
	}
}
