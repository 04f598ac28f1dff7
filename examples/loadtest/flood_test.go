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

	"github.com/sipstream/sipstream/sip/siptest"
)

// TestFloodChallenged floods a SIP peer that challenges every INVITE
// (sip/siptest with digest users): every INVITE gets its 401, from as many
// sources as asked, and the peer saw no call.
func TestFloodChallenged(t *testing.T) {
	peer, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", Users: map[string]string{"u": "p"}, ChallengeInvite: 401})
	require.NoError(t, err)
	defer peer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := runFlood(ctx, floodSpec{Target: peer.Addr(), Count: 300, Sources: 50, Wait: 5 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 300, res.Sent)
	assert.Equal(t, 50, res.Sources)
	assert.Equal(t, map[string]int{"401": 300}, res.ByStatus)
	assert.Zero(t, res.Unanswered)
	assert.Zero(t, res.SendErrors)
	assert.Zero(t, res.Malformed)
	assert.Positive(t, res.DurationS)
	assert.GreaterOrEqual(t, res.DurationS, res.SendS)
	assert.Positive(t, res.RateSent)
	assert.Empty(t, peer.Calls(), "a challenged INVITE is no call")
	assert.GreaterOrEqual(t, peer.Challenges(), 300)
}

// TestFloodAnswered: INVITEs a peer answers 200 are counted as such, and
// the flood acknowledges and ends each call (ACK then BYE); rejected ones
// are counted by status. The rate is kept to.
func TestFloodAnswered(t *testing.T) {
	peer, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	defer peer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := runFlood(ctx, floodSpec{Target: peer.Addr(), Count: 5, Rate: 20, Wait: 5 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"200": 5}, res.ByStatus)
	assert.GreaterOrEqual(t, res.SendS, 0.19, "5 INVITEs at 20/s take 200 ms")
	calls := peer.Calls()
	require.Len(t, calls, 5)
	for _, c := range calls {
		assert.True(t, strings.HasPrefix(c.CallID(), "flood-"))
	}
	// Each answered INVITE is acknowledged and hung up at once.
	_, err = peer.WaitRequests(ctx, "ACK", 5)
	require.NoError(t, err)
	byes, err := peer.WaitRequests(ctx, "BYE", 5)
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, b := range byes {
		ids[b.Header("Call-ID")] = true
	}
	assert.Len(t, ids, 5, "a BYE for every call")

	rej, err := siptest.NewPeer(siptest.Config{Addr: "127.0.0.1:0", Script: siptest.Script{Reject: 403}})
	require.NoError(t, err)
	defer rej.Close()
	res, err = runFlood(ctx, floodSpec{Target: rej.Addr(), Count: 20, Wait: 5 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"403": 20}, res.ByStatus)
	assert.Equal(t, 20, res.Sources, "fewer INVITEs than -flood-sources: one source each")
}

// TestFloodUnanswered: a gateway that never answers gets each INVITE again
// (500 ms, then 1 s...) and the flood gives up after Wait, counting them
// unanswered.
func TestFloodUnanswered(t *testing.T) {
	sink, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer sink.Close()
	got := make(chan int, 1)
	go func() {
		buf := make([]byte, 65535)
		n := 0
		for {
			if _, _, err := sink.ReadFrom(buf); err != nil {
				got <- n
				return
			}
			n++
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t0 := time.Now()
	res, err := runFlood(ctx, floodSpec{Target: sink.LocalAddr().String(), Count: 10, Wait: 1800 * time.Millisecond})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(t0), 1800*time.Millisecond)
	assert.Equal(t, 10, res.Unanswered)
	assert.Empty(t, res.ByStatus)
	assert.Equal(t, 20, res.Retransmits, "again at 500 ms and 1.5 s")
	sink.Close()
	assert.Equal(t, 30, <-got, "the sink got every INVITE three times")

	_, err = runFlood(ctx, floodSpec{Target: "nowhere", Count: 1})
	assert.Error(t, err)
	_, err = runFlood(ctx, floodSpec{Target: "127.0.0.1:5060", Count: 0})
	assert.Error(t, err)
	_, err = runFlood(ctx, floodSpec{Target: "127.0.0.1:5060", Count: 1, Rate: -1})
	assert.Error(t, err)
}

func TestFloodRequestParses(t *testing.T) {
	src := netip.MustParseAddrPort("127.9.8.7:4321")
	msg := floodRequest("run1", 42, src, "127.0.0.1:5060", "z9hG4bKx")
	s := string(msg)
	assert.True(t, strings.HasPrefix(s, "INVITE sip:flood42@127.0.0.1:5060 SIP/2.0\r\n"))
	assert.Contains(t, s, "Via: SIP/2.0/UDP 127.9.8.7:4321;branch=z9hG4bKx;rport\r\n")
	assert.Contains(t, s, "Call-ID: flood-run1-42\r\n")
	assert.NotContains(t, strings.ToLower(s), "authorization")
	_, body, ok := strings.Cut(s, "\r\n\r\n")
	require.True(t, ok)
	o, err := parseOffer([]byte(body))
	require.NoError(t, err, "the flood offers A/V like the caller")
	assert.Equal(t, uint8(callerPT), o.VideoPT)
}

func TestParseFloodAnswer(t *testing.T) {
	res := "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.1.2.3:5000;branch=z9hG4bKa;rport=5000\r\n" +
		"From: <sip:stranger7@127.1.2.3>;tag=f7\r\nTo: <sip:flood7@127.0.0.1:5060>;tag=gw1\r\nCall-ID: flood-abc-7\r\n" +
		"CSeq: 1 INVITE\r\nWWW-Authenticate: Digest realm=\"x\", nonce=\"n\"\r\nContent-Length: 0\r\n\r\n"
	a, err := parseFloodAnswer("abc", []byte(res))
	require.NoError(t, err)
	assert.Equal(t, 7, a.index)
	assert.Equal(t, 401, a.code)
	assert.Equal(t, "INVITE", a.method)
	assert.Contains(t, a.to, "tag=gw1")
	ack := string(ackFor(a, "sip:flood7@127.0.0.1:5060"))
	assert.True(t, strings.HasPrefix(ack, "ACK sip:flood7@127.0.0.1:5060 SIP/2.0\r\n"))
	assert.Contains(t, ack, "branch=z9hG4bKa", "the INVITE's branch (RFC 3261 §17.1.1.3)")
	assert.Contains(t, ack, "CSeq: 1 ACK\r\n")

	for name, bad := range map[string]string{
		"other run":   strings.Replace(res, "flood-abc-7", "flood-xyz-7", 1),
		"not a count": strings.Replace(res, "flood-abc-7", "flood-abc-07", 1),
		"negative":    strings.Replace(res, "flood-abc-7", "flood-abc--7", 1),
		"no CSeq":     strings.Replace(res, "CSeq: 1 INVITE\r\n", "", 1),
		"request":     "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nCall-ID: flood-abc-1\r\nContent-Length: 0\r\n\r\n",
		"garbage":     "\x00\x01",
	} {
		_, err := parseFloodAnswer("abc", []byte(bad))
		assert.Error(t, err, name)
	}
}

// FuzzParseFloodAnswer: whatever the gateway sends, the flood's parser
// returns an error or a usable answer, never panics.
func FuzzParseFloodAnswer(f *testing.F) {
	f.Add([]byte("SIP/2.0 403 Forbidden\r\nVia: SIP/2.0/UDP 127.1.2.3:5000;branch=z9hG4bKa\r\nFrom: <sip:s@127.1.2.3>;tag=f\r\n" +
		"To: <sip:flood1@127.0.0.1>;tag=t\r\nCall-ID: flood-abc-1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=b\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\n" +
		"Call-ID: flood-abc-99\r\nCSeq: 2 BYE\r\nContact: <sip:gw@127.0.0.1:5060>\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("SIP/2.0 100 Trying\r\nCall-ID: flood-abc-3\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := parseFloodAnswer("abc", b)
		if err != nil {
			return
		}
		if a.index < 0 || a.code < 100 || a.code > 699 || a.callID == "" {
			t.Fatalf("accepted a bad answer: %+v", a)
		}
		_ = ackFor(a, "sip:x@127.0.0.1")
		_ = ackByeFor(a, netip.MustParseAddrPort("127.1.1.1:1"), "sip:x@127.0.0.1")
	})
}

func TestParseUDPStat(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\n" +
		"Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 100 2 3 90 7 0\n" +
		"UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdpLite: 0 0 0 0 9 0\n"
	v, err := parseUDPStat([]byte(snmp), "RcvbufErrors")
	require.NoError(t, err)
	assert.Equal(t, uint64(7), v, "Udp's, not UdpLite's")
	_, err = parseUDPStat([]byte(snmp), "Nope")
	assert.Error(t, err)
	_, err = parseUDPStat([]byte("Udp: A B\nUdp: 1\n"), "B")
	assert.Error(t, err, "a short line")
	_, err = parseUDPStat([]byte("Udp: A\nUdp: x\n"), "A")
	assert.Error(t, err)
	_, err = udpRcvbufErrors()
	assert.NoError(t, err, "Linux has /proc/net/snmp")
}

func FuzzParseUDPStat(f *testing.F) {
	f.Add([]byte("Udp: InDatagrams RcvbufErrors\nUdp: 1 2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseUDPStat(b, "RcvbufErrors")
	})
}
