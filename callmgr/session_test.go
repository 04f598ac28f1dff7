package callmgr

import (
	"net"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/media/session"
)

// TestRealSession runs RTP through the real media session: the fake peer
// answers with real SDP, the test sends a 1 kHz A-law tone to the call's
// audio port, and the tone must come out at the RTMP sink.
func TestRealSession(t *testing.T) {
	w := newFakeWorld()
	pool, err := session.NewPortPool(42000, 42099)
	require.NoError(t, err)
	be := w.realBackend()
	be.media = sessionFactory{pool: pool, mediaTimeout: -1, idleTimeout: -1}
	e := newTestEnv(t, func(c *Config) {
		c.backend = be
		c.ListenAddr = "127.0.0.1:0"
	})
	e.w = w
	peerConn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer peerConn.Close()
	w.peerAudioPort = peerConn.LocalAddr().(*net.UDPAddr).Port

	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "rs1", Callee: "answer@h", HasAudio: true, RTMPURL: "rtmp://127.0.0.1/live", RTMPStream: "rs"})
	require.NoError(t, err)
	require.NoError(t, c.WaitEstablished(ctx))
	assert.Equal(t, 2, pool.InUse(), "one port pair per stream")
	rt := w.rtmpSink("rs")
	require.NotNil(t, rt)

	// 1 s of a 1 kHz tone, 20 ms packets.
	w.mu.Lock()
	offer := string(w.invites[0].Offer)
	w.mu.Unlock()
	// the pool hands out a random pair of its range
	m := regexp.MustCompile(`m=audio (\d+) `).FindStringSubmatch(offer)
	require.NotNil(t, m, offer)
	port, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	require.True(t, port >= 42000 && port <= 42098 && port%2 == 0, "port %d", port)
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	for i := 0; i < 50; i++ {
		pcm := testmedia.Tone(1000, 8000, i*160, 160, 0.5)
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(100 + i), Timestamp: uint32(1000 + i*160), SSRC: 0x1234},
			Payload: g711.EncodeALaw(nil, pcm)}
		b, err := pkt.Marshal()
		require.NoError(t, err)
		_, err = peerConn.WriteToUDP(b, dst)
		require.NoError(t, err)
		time.Sleep(5 * time.Millisecond)
	}
	require.True(t, waitFor(func() bool { f, _ := rt.snapshot(); return len(f) >= 40 }), "frames through the session")
	frames, _ := rt.snapshot()
	var pcm []int16
	for i, f := range frames {
		assert.Equal(t, media.CodecPCMA, f.Codec)
		if i > 0 {
			assert.Greater(t, f.PTS, frames[i-1].PTS)
		}
		pcm = g711.DecodeALaw(pcm, f.Payload)
	}
	tone := testmedia.Goertzel(pcm, 8000, 1000)
	off := testmedia.Goertzel(pcm, 8000, 1500)
	assert.Greater(t, tone, 100*off, "1 kHz tone survives the path (%.1f vs %.1f)", tone, off)

	require.NoError(t, c.Terminate(ctx))
	waitDone(t, c)
	assert.Zero(t, pool.InUse(), "ports returned")
}

// TestPortsExhausted: a pool with room for one call refuses the second with
// ErrTooManyCalls, and takes calls again once the first has ended.
func TestPortsExhausted(t *testing.T) {
	w := newFakeWorld()
	pool, err := session.NewPortPool(42100, 42103) // two pairs: one call (audio + video)
	require.NoError(t, err)
	be := w.realBackend()
	be.media = sessionFactory{pool: pool, mediaTimeout: -1, idleTimeout: -1}
	e := newTestEnv(t, func(c *Config) { c.backend = be })
	e.w = w
	ctx := ctxT(t)
	c, err := e.m.StartCall(ctx, CallParams{CallID: "p1", Callee: "ring@h"})
	require.NoError(t, err)
	_, err = e.m.StartCall(ctx, CallParams{CallID: "p2", Callee: "ring@h"})
	require.ErrorIs(t, err, ErrTooManyCalls)
	assert.ErrorIs(t, err, session.ErrPortsExhausted)
	require.NoError(t, c.Terminate(ctx))
	c, err = e.m.StartCall(ctx, CallParams{CallID: "p3", Callee: "ring@h"})
	require.NoError(t, err)
	require.NoError(t, c.Terminate(ctx))
}
