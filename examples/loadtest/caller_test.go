package main

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip/siptest"
)

// newTestSender starts a sender of the clip on loopback.
func newTestSender(t *testing.T) *sender {
	t.Helper()
	cl, err := loadClip(clipH264, defaultMTU)
	require.NoError(t, err)
	snd, err := newSender(cl, calleeIP)
	require.NoError(t, err)
	t.Cleanup(snd.close)
	return snd
}

// newTestUA starts a sender and a load user agent on loopback.
func newTestUA(t *testing.T) *loadUA {
	t.Helper()
	u, err := newLoadUA(newTestSender(t))
	require.NoError(t, err)
	t.Cleanup(u.close)
	return u
}

// TestCallerToSiptestPeer: the caller role places a call to a real SIP
// peer (sip/siptest), which hears the 1 kHz tone and gets the H.264
// video; the caller's BYE ends it, and a BYE from the peer stops the
// caller's media.
func TestCallerToSiptestPeer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peer, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", User: "gw",
		Script: siptest.Script{AudioCodecs: []media.Codec{media.CodecPCMA}}})
	require.NoError(t, err)
	defer peer.Close()
	u := newTestUA(t)

	idx, err := u.call(ctx, peer.URI(), "caller-test-1")
	require.NoError(t, err)
	pc, err := peer.WaitCall(ctx)
	require.NoError(t, err)
	assert.Equal(t, "caller-test-1", pc.CallID(), "the Call-ID the parent chose")
	require.NoError(t, pc.WaitEstablished(ctx))
	require.NoError(t, pc.WaitRTP(ctx, media.KindVideo, 100))
	require.NoError(t, pc.WaitRTP(ctx, media.KindAudio, 50))
	pcm := pc.ReceivedAudio()
	require.Greater(t, len(pcm), 4000, "half a second of audio")
	tail := pcm[len(pcm)-4000:]
	assert.Greater(t, testmedia.Goertzel(tail, 8000, 1000), 0.5, "the peer hears the 1 kHz tone")
	assert.Less(t, testmedia.Goertzel(tail, 8000, 1500), 0.1)
	c := u.snd.lookup(idx)
	require.NotNil(t, c)
	assert.False(t, c.stopped.Load())

	_, err = u.call(ctx, peer.URI(), "caller-test-1")
	assert.ErrorContains(t, err, "in use", "one call per Call-ID")

	require.NoError(t, u.hangup(ctx, "caller-test-1"))
	require.NoError(t, pc.WaitBye(ctx))
	assert.True(t, c.stopped.Load(), "media stops at the hang-up")
	require.NoError(t, u.hangup(ctx, "caller-test-1"), "hanging up twice is harmless")

	// The peer hangs up: our media stops, hangup has nothing left to do.
	peer2, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", User: "gw",
		Script: siptest.Script{AudioCodecs: []media.Codec{media.CodecPCMA}, HangupAfter: 300 * time.Millisecond}})
	require.NoError(t, err)
	defer peer2.Close()
	idx, err = u.call(ctx, peer2.URI(), "caller-test-2")
	require.NoError(t, err)
	c = u.snd.lookup(idx)
	require.Eventually(t, c.stopped.Load, 10*time.Second, 20*time.Millisecond, "the peer's BYE stops the media")
	require.NoError(t, u.hangup(ctx, "caller-test-2"))
}

// TestCallerRefused: a refused call is an error naming the status, and
// leaves nothing behind.
func TestCallerRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peer, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", User: "gw", Script: siptest.Script{Reject: 486}})
	require.NoError(t, err)
	defer peer.Close()
	u := newTestUA(t)
	_, err = u.call(ctx, peer.URI(), "refused-1")
	require.ErrorContains(t, err, "486")
	u.mu.Lock()
	assert.Empty(t, u.calls)
	u.mu.Unlock()
	assert.Zero(t, u.snd.active.Load())

	_, err = u.call(ctx, "not a uri", "x")
	assert.Error(t, err)
	_, err = u.call(ctx, peer.URI(), "")
	assert.Error(t, err)
}

// TestCallerToCallee: the caller role calls the callee role (two load
// user agents): the callee answers the caller's offer, the ACK starts its
// media, and the caller's BYE ends the call on both sides.
func TestCallerToCallee(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caller, callee := newTestUA(t), newTestUA(t)
	_, err := caller.call(ctx, "sip:load@"+callee.addr(), "c2c-1")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		callee.mu.Lock()
		defer callee.mu.Unlock()
		uc := callee.calls["c2c-1"]
		return uc != nil && uc.acked
	}, 10*time.Second, 10*time.Millisecond, "the callee got the ACK")
	require.Eventually(t, func() bool { return callee.snd.active.Load() == 1 && caller.snd.active.Load() == 1 },
		10*time.Second, 10*time.Millisecond, "both send media")
	require.NoError(t, caller.hangup(ctx, "c2c-1"))
	callee.mu.Lock()
	assert.Empty(t, callee.calls, "the BYE ended the callee's call")
	callee.mu.Unlock()
	require.Eventually(t, func() bool { return callee.snd.active.Load() == 0 && caller.snd.active.Load() == 0 },
		10*time.Second, 10*time.Millisecond, "media stopped on both sides")
}

// TestFloodSources: distinct loopback addresses, never 127.0.0.1, none a
// network or broadcast-looking address; each can be bound.
func TestFloodSources(t *testing.T) {
	srcs := floodSources(3000)
	seen := map[string]bool{}
	for _, a := range srcs {
		require.True(t, a.Is4())
		b := a.As4()
		assert.Equal(t, byte(127), b[0])
		assert.NotEqual(t, "127.0.0.1", a.String())
		assert.NotContains(t, []byte{0, 255}, b[3])
		assert.False(t, seen[a.String()], "duplicate %s", a)
		seen[a.String()] = true
	}
	c, err := net.ListenPacket("udp4", net.JoinHostPort(srcs[0].String(), "0"))
	require.NoError(t, err, "all of 127.0.0.0/8 is local")
	c.Close()
}

func TestParseOptionsIncoming(t *testing.T) {
	opt, err := parseOptions([]string{"-incoming"}, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, []string{dirIn}, opt.directions)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, opt.inboundAllow)
	opt, err = parseOptions([]string{"-direction", "both", "-flood", "100"}, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, []string{dirOut, dirIn}, opt.directions)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, opt.inboundAllow, "a flood's strangers must authenticate")
	opt, err = parseOptions([]string{"-inbound-allow", "10.1.2.3, 192.168.0.0/16"}, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.1.2.3/32"), netip.MustParsePrefix("192.168.0.0/16")}, opt.inboundAllow)
	opt, err = parseOptions(nil, &strings.Builder{})
	require.NoError(t, err)
	assert.Equal(t, []string{dirOut}, opt.directions)
	for _, bad := range [][]string{{"-direction", "sideways"}, {"-inbound-allow", "10.1/8x"}, {"-flood", "-1"}, {"-flood-sources", "0"},
		{"-rest", "http://x", "-gateway-pid", "1", "-incoming"}, {"-rest", "http://x", "-flood", "10"}, {"-gateway-sip", "host"}} {
		_, err := parseOptions(bad, &strings.Builder{})
		assert.Error(t, err, "%v", bad)
	}
}
