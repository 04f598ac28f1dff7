package sip_test

import (
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/sip"
	"github.com/sipstream/sipstream/sip/siptest"
)

// authorized reports whether any request the peer received carried
// credentials.
func authorized(p *siptest.Peer) bool {
	for _, r := range p.Requests("") {
		if r.Header("Authorization") != "" || r.Header("Proxy-Authorization") != "" {
			return true
		}
	}
	return false
}

// otherHost is a UDP address on loopback that is not the peer: "our PBX".
func otherHost(t *testing.T) string {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().String()
}

// TestChallengeFromForeignCalleeNotAnswered: digest was answered for any
// challenger. A callee the API caller picks (sip:x@evil) challenging
// under our domain's realm got a digest of our PBX password to crack
// offline. Now the call fails with a *ChallengeError and nothing is sent.
func TestChallengeFromForeignCalleeNotAnswered(t *testing.T) {
	for _, code := range []int{401, 407} {
		p := newPeer(t, siptest.Config{Users: map[string]string{"alice": "pbx-secret"}, Realm: "pbx.example", ChallengeInvite: code})
		ua := newUA(t)
		_, err := ua.Invite(ctx(t), sip.InviteRequest{
			Callee: p.URI(), Domain: otherHost(t), From: "alice", Password: "pbx-secret", Offer: offer(t).Marshal(),
		})
		require.ErrorIs(t, err, sip.ErrUntrustedChallenge)
		assert.ErrorIs(t, err, sip.ErrUnauthorized)
		var ce *sip.ChallengeError
		require.True(t, errors.As(err, &ce))
		assert.Equal(t, code, ce.Code)
		assert.Equal(t, "pbx.example", ce.Realm)
		assert.Equal(t, p.Addr(), ce.Challenger)
		assert.NotContains(t, err.Error(), "pbx-secret")
		assert.False(t, authorized(p), "credentials sent to a foreign host")
		assert.Len(t, p.Requests("INVITE"), 1)
	}
}

// TestChallengeFromDomainAnswered: the same peer as the configured domain
// gets its answer (any realm, unless AuthRealm pins one).
func TestChallengeFromDomainAnswered(t *testing.T) {
	p := newPeer(t, siptest.Config{Users: map[string]string{"alice": "pw"}, Realm: "asterisk", ChallengeInvite: 401})
	ua := newUA(t)
	d, err := ua.Invite(ctx(t), sip.InviteRequest{Callee: "peer", Domain: p.Addr(), From: "alice", Password: "pw", Offer: offer(t).Marshal()})
	require.NoError(t, err)
	require.NoError(t, d.Bye(ctx(t)))

	// The outbound proxy is trusted too, whatever the Callee's host.
	d, err = ua.Invite(ctx(t), sip.InviteRequest{Callee: "sip:peer@elsewhere.invalid", OutboundProxy: p.Addr(), From: "alice", Password: "pw", Offer: offer(t).Marshal()})
	require.NoError(t, err)
	require.NoError(t, d.Bye(ctx(t)))

	_, err = ua.Invite(ctx(t), sip.InviteRequest{Callee: "peer", Domain: p.Addr(), From: "alice", Password: "pw", AuthRealm: "pbx.example", Offer: offer(t).Marshal()})
	require.ErrorIs(t, err, sip.ErrUntrustedChallenge)
}

// TestRegistrarOtherRealm: a registrar challenging under another realm than
// AuthRealm gets no digest.
func TestRegistrarOtherRealm(t *testing.T) {
	p := newPeer(t, siptest.Config{Users: map[string]string{"alice": "pw"}, Realm: "evil.example"})
	ua := newUA(t)
	_, err := ua.Register(ctx(t), sip.RegisterRequest{User: "alice", Password: "pw", Domain: p.Addr(), AuthRealm: "pbx.example"})
	require.ErrorIs(t, err, sip.ErrUntrustedChallenge)
	assert.NotContains(t, err.Error(), "pw\"")
	assert.False(t, authorized(p))

	reg, err := ua.Register(ctx(t), sip.RegisterRequest{User: "alice", Password: "pw", Domain: p.Addr(), AuthRealm: "evil.example"})
	require.NoError(t, err)
	require.NoError(t, reg.Close(ctx(t)))
}
