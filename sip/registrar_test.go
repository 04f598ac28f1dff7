package sip

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	sipgox "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type changeLog struct {
	mu sync.Mutex
	ch chan struct{}
	ev []string
}

func newChangeLog() *changeLog { return &changeLog{ch: make(chan struct{}, 100)} }

func (c *changeLog) add(b Binding, removed bool) {
	c.mu.Lock()
	s := "+" + b.User
	if removed {
		s = "-" + b.User
	}
	c.ev = append(c.ev, s)
	c.mu.Unlock()
	c.ch <- struct{}{}
}

func (c *changeLog) waitFor(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		for _, e := range c.ev {
			if e == want {
				c.ev = nil
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("no %q change", want)
		}
	}
}

func TestRegistrarWithOurRegister(t *testing.T) {
	server := newTestUA(t)
	changes := newChangeLog()
	reg, err := server.ServeRegistrar(RegistrarConfig{Auth: testAuth(), MinExpires: time.Second, MaxExpires: 2 * time.Second, OnChange: changes.add})
	require.NoError(t, err)
	_, err = server.ServeRegistrar(RegistrarConfig{Auth: testAuth()})
	require.Error(t, err)

	client := newTestUA(t)
	refreshed := make(chan error, 10)
	r, err := client.Register(testCtx(t), RegisterRequest{
		User: "alice", Password: "s3cret", Domain: uaAddr(server, "udp"), Expires: 10 * time.Second,
		OnRefresh: func(err error) { refreshed <- err },
	})
	require.NoError(t, err)
	assert.Equal(t, 2*time.Second, r.Expires(), "MaxExpires caps the lifetime")
	changes.waitFor(t, "+alice")
	bs := reg.Lookup("alice")
	require.Len(t, bs, 1)
	assert.Equal(t, "sip:alice@127.0.0.1:"+strconv.Itoa(client.ListenPort("udp")), bs[0].Contact)
	assert.Equal(t, "udp", bs[0].Transport)
	assert.Equal(t, client.ListenPort("udp"), int(bs[0].Source.Port()))
	assert.Equal(t, "sipstream-test", bs[0].UserAgent)
	assert.Equal(t, bs, reg.Bindings())

	// The client refreshes at half the granted time; OnRefresh says so.
	select {
	case err := <-refreshed:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("no refresh")
	}
	changes.waitFor(t, "+alice")
	require.Len(t, reg.Lookup("alice"), 1)

	// unREGISTER removes the binding.
	require.NoError(t, r.Close(testCtx(t)))
	changes.waitFor(t, "-alice")
	assert.Empty(t, reg.Lookup("alice"))
	assert.Empty(t, reg.Bindings())

	// A registration nobody refreshes expires.
	client2 := newTestUA(t)
	_, err = client2.Register(testCtx(t), RegisterRequest{User: "alice", Password: "s3cret", Domain: uaAddr(server, "udp"), Expires: 2 * time.Second})
	require.NoError(t, err)
	changes.waitFor(t, "+alice")
	client2.Close() // stops refreshing without unREGISTER
	changes.waitFor(t, "-alice")
	assert.Empty(t, reg.Lookup("alice"))
}

func TestRegistrarRefusals(t *testing.T) {
	server := newTestUA(t)
	_, err := server.ServeRegistrar(RegistrarConfig{Auth: testAuth(), MinExpires: 30 * time.Second, MaxBindings: 1})
	require.NoError(t, err)
	client := newTestUA(t)
	dom := uaAddr(server, "udp")

	_, err = client.Register(testCtx(t), RegisterRequest{User: "alice", Password: "wrong", Domain: dom})
	assert.ErrorIs(t, err, ErrForbidden)
	_, err = client.Register(testCtx(t), RegisterRequest{User: "alice", Domain: dom})
	assert.ErrorIs(t, err, ErrUnauthorized)
	// Authenticated as alice but registering bob: 403.
	_, err = client.Register(testCtx(t), RegisterRequest{User: "bob", AuthUser: "alice", Password: "s3cret", Domain: dom})
	assert.ErrorIs(t, err, ErrForbidden)
	// 10 s asked, Min-Expires 30: our client retries with 30 s after the 423.
	r, err := client.Register(testCtx(t), RegisterRequest{User: "alice", Password: "s3cret", Domain: dom, Expires: 10 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, r.Expires())
	// MaxBindings 1: another contact of alice gets 503.
	client2 := newTestUA(t)
	_, err = client2.Register(testCtx(t), RegisterRequest{User: "alice", Password: "s3cret", Domain: dom, Expires: 60 * time.Second})
	assert.Equal(t, 503, StatusCode(err))
	require.NoError(t, r.Close(context.Background()))

	// Without ServeRegistrar, REGISTER gets 405.
	plain := newTestUA(t)
	_, err = client.Register(testCtx(t), RegisterRequest{User: "alice", Password: "s3cret", Domain: uaAddr(plain, "udp")})
	assert.Equal(t, 405, StatusCode(err))
}

func TestParseRegisterContacts(t *testing.T) {
	for _, tc := range []struct {
		values  []string
		expires string
		want    []regContact
		star    bool
		bad     bool
	}{
		{values: []string{"<sip:a@h:5060>"}, want: []regContact{{"sip:a@h:5060", 3600}}},
		{values: []string{"<sip:a@h>;expires=60, \"X, Y\" <sip:b@h;transport=tcp>"}, expires: "120",
			want: []regContact{{"sip:a@h", 60}, {"sip:b@h;transport=tcp", 120}}},
		{values: []string{"*"}, expires: "0", star: true},
		{values: []string{"*"}, bad: true},
		{values: []string{"*"}, expires: "60", bad: true},
		{values: []string{"*", "<sip:a@h>"}, expires: "0", bad: true},
		{values: []string{"<tel:+123>"}, bad: true},
		{values: []string{"<sip:a@h>;expires=x"}, bad: true},
		{values: []string{"<sip:a@h>"}, expires: "-1", bad: true},
		{values: []string{"<sip:a@h>"}, expires: "99999999999999", want: []regContact{{"sip:a@h", 1 << 31}}},
		{values: nil, expires: "60"},
	} {
		got, star, err := parseRegisterContacts(tc.values, tc.expires)
		if tc.bad {
			assert.Error(t, err, "%v %q", tc.values, tc.expires)
			continue
		}
		require.NoError(t, err, "%v %q", tc.values, tc.expires)
		assert.Equal(t, tc.want, got)
		assert.Equal(t, tc.star, star)
	}
}

// rawRegister sends a REGISTER from p with the given Contact and Expires
// header lines, answers the 401 with alice's credentials and returns the
// final response.
func rawRegister(t *testing.T, p *rawPeer, contact, expires string) *sipgox.Response {
	t.Helper()
	ruri := "sip:127.0.0.1:" + strconv.Itoa(p.to.Port)
	build := func(cseq int, authz string) string {
		var b strings.Builder
		b.WriteString("REGISTER " + ruri + " SIP/2.0\r\n")
		b.WriteString("Via: SIP/2.0/UDP 127.0.0.1:" + strconv.Itoa(p.port()) + ";branch=z9hG4bKreg" + strconv.FormatInt(time.Now().UnixNano(), 36) + "\r\n")
		b.WriteString("Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=r1\r\nTo: <sip:alice@127.0.0.1>\r\n")
		b.WriteString("Call-ID: raw-reg-" + contact[:1] + "\r\nCSeq: " + strconv.Itoa(cseq) + " REGISTER\r\n")
		b.WriteString("Contact: " + contact + "\r\nExpires: " + expires + "\r\n")
		if authz != "" {
			b.WriteString("Authorization: " + authz + "\r\n")
		}
		b.WriteString("Content-Length: 0\r\n\r\n")
		return b.String()
	}
	p.send(build(1, ""))
	res := p.response(401, 3*time.Second)
	require.NotNil(t, res, "no challenge")
	chal, err := digest.ParseChallenge(res.GetHeader("WWW-Authenticate").Value())
	require.NoError(t, err)
	cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: ruri, Username: "alice", Password: "s3cret"})
	require.NoError(t, err)
	p.send(build(2, cred.String()))
	for {
		m := p.read(3 * time.Second)
		require.NotNil(t, m, "no final answer")
		if r, ok := m.(*sipgox.Response); ok && r.StatusCode >= 200 {
			return r
		}
	}
}

func TestRegistrarStarRemovesAll(t *testing.T) {
	server := newTestUA(t)
	changes := newChangeLog()
	reg, err := server.ServeRegistrar(RegistrarConfig{Auth: testAuth(), OnChange: changes.add})
	require.NoError(t, err)
	p := newRawPeer(t, server)
	res := rawRegister(t, p, "<sip:alice@192.0.2.1:5060>, <sip:alice@192.0.2.2:5060>;expires=120", "600")
	require.Equal(t, 200, res.StatusCode)
	assert.Len(t, res.GetHeaders("Contact"), 2)
	bs := reg.Lookup("alice")
	require.Len(t, bs, 2)
	assert.WithinDuration(t, time.Now().Add(600*time.Second), bs[0].Expires, 5*time.Second)
	assert.WithinDuration(t, time.Now().Add(120*time.Second), bs[1].Expires, 5*time.Second)

	// The same Call-ID with a CSeq not above the last one: 500 (a replay).
	assert.Equal(t, 500, rawRegister(t, p, "<sip:alice@192.0.2.1:5060>", "600").StatusCode)
	assert.Equal(t, 400, rawRegister(t, p, "*", "60").StatusCode, "* needs Expires: 0")
	res = rawRegister(t, p, "*", "0")
	require.Equal(t, 200, res.StatusCode)
	assert.Empty(t, res.GetHeaders("Contact"))
	assert.Empty(t, reg.Lookup("alice"))
	changes.waitFor(t, "-alice")
}
