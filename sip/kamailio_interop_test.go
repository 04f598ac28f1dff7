//go:build interop

package sip

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	sipgox "github.com/emiago/sipgo/sip"
	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startKamailio starts kamailio on UDP and TCP: a registrar + record-routing
// proxy with digest auth on REGISTER (401) and INVITE (407), no database
// (passwords in the config, usrloc in memory). It returns "127.0.0.1:port".
func startKamailio(t *testing.T) string {
	t.Helper()
	return testenv.StartKamailio(t, testenv.KamailioConfig{
		Users:             map[string]string{"auth1000": "pw1000", "bob": "pwbob"},
		ChallengeRequests: true,
		TCP:               true,
	}).Addr
}

// registerContact registers bob's binding pointing at contactPort with a
// plain sipgo client (digest on 401), as a SIP phone would.
func registerContact(t *testing.T, registrar string, contactPort int) {
	t.Helper()
	ua, err := sipgo.NewUA()
	require.NoError(t, err)
	defer ua.Close()
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	require.NoError(t, err)
	var ruri sipgox.Uri
	require.NoError(t, sipgox.ParseUri("sip:"+registrar, &ruri))
	req := sipgox.NewRequest(sipgox.REGISTER, ruri)
	aor := sipgox.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1"}
	fromParams := sipgox.NewParams()
	fromParams.Add("tag", "regbob")
	req.AppendHeader(&sipgox.FromHeader{Address: aor, Params: fromParams})
	req.AppendHeader(&sipgox.ToHeader{Address: aor})
	req.AppendHeader(&sipgox.ContactHeader{Address: sipgox.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: contactPort}})
	req.AppendHeader(sipgox.NewHeader("Expires", "300"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.Do(ctx, req)
	require.NoError(t, err)
	if res.StatusCode == 401 {
		res, err = cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "bob", Password: "pwbob"})
		require.NoError(t, err)
	}
	require.Equal(t, 200, res.StatusCode, res.String())
}

func TestInteropKamailio(t *testing.T) {
	kam := startKamailio(t)
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			ua := newTestUA(t)
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()

			// Our REGISTER: 401 answered with the auth name, distinct from the login.
			reg, err := ua.Register(ctx, RegisterRequest{User: "1000", AuthUser: "auth1000", Password: "pw1000",
				Domain: kam, Transport: tr, Expires: 120 * time.Second})
			require.NoError(t, err)
			assert.Equal(t, 120*time.Second, reg.Expires())
			_, err = ua.Register(ctx, RegisterRequest{User: "1000", AuthUser: "auth1000", Password: "wrong", Domain: kam, Transport: tr})
			assert.ErrorIs(t, err, ErrUnauthorized)

			// Callee: sipp, registered as bob.
			sp := startSipp(t, sippUASInfoBye, "udp")
			registerContact(t, kam, sp.Port)

			// INVITE through kamailio: 407 answered, routed to sipp; INFO and BYE
			// follow the Record-Route route set back through kamailio.
			d, err := ua.Invite(ctx, InviteRequest{Callee: "bob", Domain: kam, From: "1000", AuthUser: "auth1000",
				Password: "pw1000", DisplayName: "Stream", Transport: tr, Offer: []byte(ourSDP)})
			require.NoError(t, err, sp.Logs())
			assert.Contains(t, string(d.AnswerSDP()), "PCMA/8000")
			// kamailio relays in several worker processes: an INFO sent
			// right after the ACK can overtake it, and sipp aborts the call
			// on a message it does not expect yet (seen under load).
			require.Eventually(t, func() bool { return strings.Contains(sp.Messages(), "\nACK sip:") },
				10*time.Second, 10*time.Millisecond, "sipp got no ACK")
			require.NoError(t, d.SendDTMF(ctx, '5', true), sp.Logs())
			require.NoError(t, d.Bye(ctx), sp.Logs())
			assert.NoError(t, sp.Wait(40*time.Second))

			// Unknown callee: kamailio's 404 as a typed error.
			_, err = ua.Invite(ctx, InviteRequest{Callee: "nobody", Domain: kam, From: "1000", AuthUser: "auth1000",
				Password: "pw1000", Transport: tr, Offer: []byte(ourSDP)})
			assert.ErrorIs(t, err, ErrNotFound)
			// Wrong password: rechallenged, then a 407 error.
			_, err = ua.Invite(ctx, InviteRequest{Callee: "bob", Domain: kam, From: "1000", AuthUser: "auth1000",
				Password: "nope", Transport: tr, Offer: []byte(ourSDP)})
			assert.ErrorIs(t, err, ErrUnauthorized)

			require.NoError(t, reg.Close(ctx))
		})
	}
}
