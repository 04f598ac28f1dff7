//go:build interop

package sip

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rtpSink counts the RTP packets arriving on a UDP socket and keeps their
// PCMA audio, decoded, with the arrival time.
type rtpSink struct {
	conn *net.UDPConn
	mu   sync.Mutex
	pkts []sinkPacket
	done chan struct{}
}

type sinkPacket struct {
	at  time.Time
	pcm []int16
}

func newRTPSink(t *testing.T) *rtpSink {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	s := &rtpSink{conn: conn, done: make(chan struct{})}
	go s.read()
	t.Cleanup(func() { conn.Close(); <-s.done })
	return s
}

func (s *rtpSink) port() int { return s.conn.LocalAddr().(*net.UDPAddr).Port }

func (s *rtpSink) read() {
	defer close(s.done)
	buf := make([]byte, 2048)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			return
		}
		var p rtp.Packet
		if p.Unmarshal(buf[:n]) != nil {
			continue
		}
		sp := sinkPacket{at: time.Now()}
		if p.PayloadType == 8 {
			sp.pcm = g711.DecodeALaw(nil, p.Payload)
		}
		s.mu.Lock()
		s.pkts = append(s.pkts, sp)
		s.mu.Unlock()
	}
}

// window returns the packets that arrived in [from, to) and their audio.
func (s *rtpSink) window(from, to time.Time) (n int, pcm []int16) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.pkts {
		if !p.at.Before(from) && p.at.Before(to) {
			n++
			pcm = append(pcm, p.pcm...)
		}
	}
	return n, pcm
}

func baresipOffer(port int, version int, dir string) []byte {
	return []byte(fmt.Sprintf("v=0\r\no=us 77 %d IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=rtcp:%d\r\na=%s\r\n", version, port, port+1, dir))
}

// callBob calls bob through the kamailio at registrar from a new UA, with
// an audio offer whose RTP goes to a new rtpSink. The context ends with
// the test (40 s).
func callBob(t *testing.T, registrar string) (*rtpSink, *Dialog, context.Context) {
	t.Helper()
	sink := newRTPSink(t)
	ua := newTestUA(t)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	t.Cleanup(cancel)
	d, err := ua.Invite(ctx, InviteRequest{Callee: "bob", Domain: registrar, From: "alice", Offer: baresipOffer(sink.port(), 1, "sendrecv")})
	require.NoError(t, err)
	return sink, d, ctx
}

// TestInteropBaresipHold: baresip 1.0, a real softphone behind kamailio,
// answers our hold re-INVITE (sendonly) with recvonly and stops sending
// its 440 Hz tone, then our unhold (sendrecv) with sendrecv, and the tone
// comes back: counted and detected on the RTP that reaches our socket.
func TestInteropBaresipHold(t *testing.T) {
	kam := testenv.StartKamailio(t, testenv.KamailioConfig{Users: map[string]string{"bob": "pwbob"}})
	testenv.StartBaresip(t, testenv.BaresipConfig{User: "bob", Password: "pwbob", Registrar: kam.Addr, ToneHz: 440})
	sink, d, ctx := callBob(t, kam.Addr)
	t.Logf("baresip answered; Allow REFER: %v, Supported replaces: %v", d.PeerAllows("REFER"), d.PeerSupports("replaces"))

	// toneIn checks the second that follows: packets and the 440 Hz tone.
	toneIn := func(what string) {
		t.Helper()
		from := time.Now().Add(500 * time.Millisecond)
		time.Sleep(1500 * time.Millisecond)
		n, pcm := sink.window(from, from.Add(time.Second))
		require.Greater(t, n, 30, "%s: RTP packets in a second", what)
		require.Greater(t, len(pcm), 4000, "%s: PCMA samples", what)
		g := testmedia.Goertzel(pcm[:4000], 8000, 440)
		t.Logf("%s: %d packets in 1 s, 440 Hz share %.2f", what, n, g)
		assert.Greater(t, g, 0.5, "%s: baresip's 440 Hz tone", what)
	}
	toneIn("before hold")

	answer, err := d.Reinvite(ctx, baresipOffer(sink.port(), 2, "sendonly"))
	require.NoError(t, err)
	assert.Equal(t, []string{"recvonly"}, sdpDirections(answer), string(answer))
	from := time.Now().Add(500 * time.Millisecond)
	time.Sleep(1500 * time.Millisecond)
	n, _ := sink.window(from, from.Add(time.Second))
	t.Logf("on hold: %d packets in 1 s", n)
	assert.LessOrEqual(t, n, 2, "baresip kept sending while held")

	answer, err = d.Reinvite(ctx, baresipOffer(sink.port(), 3, "sendrecv"))
	require.NoError(t, err)
	assert.Equal(t, []string{"sendrecv"}, sdpDirections(answer), string(answer))
	toneIn("after unhold")
	require.NoError(t, d.Bye(ctx))
	// The re-INVITEs followed the Record-Route set through kamailio.
	assert.Equal(t, 3, strings.Count(kam.Log(), "req INVITE "), kam.Log())
}

// TestInteropBaresipBlindTransfer: baresip (bob) takes our REFER to
// "carol" (a bare user, so sip:carol@ our dialog's domain, the kamailio),
// calls a second baresip registered as carol through kamailio and reports
// the call's progress in NOTIFYs; OnProgress sees a final 200.
func TestInteropBaresipBlindTransfer(t *testing.T) {
	kam := testenv.StartKamailio(t, testenv.KamailioConfig{Users: map[string]string{"bob": "pwbob", "carol": "pwcarol"}})
	testenv.StartBaresip(t, testenv.BaresipConfig{User: "bob", Password: "pwbob", Registrar: kam.Addr})
	testenv.StartBaresip(t, testenv.BaresipConfig{User: "carol", Password: "pwcarol", Registrar: kam.Addr, ToneHz: 880})
	_, d, ctx := callBob(t, kam.Addr)
	require.True(t, d.PeerAllows("REFER"))

	var mu sync.Mutex
	var got []ReferProgress
	fin := make(chan struct{})
	err := d.Refer(ctx, "carol", ReferOptions{OnProgress: func(p ReferProgress) {
		mu.Lock()
		got = append(got, p)
		mu.Unlock()
		if p.Final {
			close(fin)
		}
	}})
	require.NoError(t, err)
	select {
	case <-fin:
	case <-ctx.Done():
		t.Fatal("no final transfer report")
	}
	mu.Lock()
	t.Logf("transfer progress: %+v", got)
	last := got[len(got)-1]
	mu.Unlock()
	assert.Equal(t, 200, last.StatusCode)
	assert.True(t, last.Final)
	// bob really called carol, through kamailio.
	assert.Regexp(t, `req INVITE sip:carol@`, kam.Log())
	// The transferee hangs up on us once transferred, or we do.
	select {
	case <-d.Done():
		t.Logf("baresip ended our call: %v", d.Err())
	case <-time.After(3 * time.Second):
		require.NoError(t, d.Bye(ctx))
	}
}
