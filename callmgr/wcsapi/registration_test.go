package wcsapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
)

// fakeRegs is an in-memory registrationService with callmgr's rules for
// names and duplicates.
type fakeRegs struct {
	mu       sync.Mutex
	accounts []callmgr.Account
	infos    map[string]callmgr.RegistrationInfo
	inbound  []callmgr.RegistrationInfo
	removed  []string
}

func (f *fakeRegs) Registrations() []callmgr.RegistrationInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []callmgr.RegistrationInfo
	for _, a := range f.accounts {
		out = append(out, f.infos[a.Name])
	}
	return append(out, f.inbound...)
}

func (f *fakeRegs) AddAccount(ctx context.Context, a callmgr.Account) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a.Name == "" {
		a.Name = a.User + "@" + a.Domain
	}
	if strings.Contains(a.Name, " ") {
		return &callmgr.ParamError{Field: "Name", Reason: "must not contain blanks"}
	}
	for _, o := range f.accounts {
		if o.Name == a.Name {
			return callmgr.ErrDuplicateAccount
		}
	}
	f.accounts = append(f.accounts, a)
	if f.infos == nil {
		f.infos = map[string]callmgr.RegistrationInfo{}
	}
	f.infos[a.Name] = callmgr.RegistrationInfo{Account: a.Name, User: a.User, Domain: a.Domain, State: callmgr.RegRegistering,
		Since: time.UnixMilli(1_700_000_000_000)}
	return nil
}

func (f *fakeRegs) RemoveAccount(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, a := range f.accounts {
		if a.Name == name {
			f.accounts = append(f.accounts[:i], f.accounts[i+1:]...)
			f.removed = append(f.removed, name)
			return nil
		}
	}
	return callmgr.ErrAccountNotFound
}

// The /registration endpoints: find_all and find (404 when nothing
// matches), startup checked as /call/startup's SIP fields are (and
// -allow-callees), 409 for a second account of the same name, terminate;
// a password is never in an answer, and a registrar's error quoting it is
// scrubbed.
func TestRegistrationEndpoints(t *testing.T) {
	regs := &fakeRegs{inbound: []callmgr.RegistrationInfo{{Account: "trunk7", User: "trunk7", Domain: "gw", State: callmgr.RegRegistered,
		Inbound: true, Contact: "sip:trunk7@198.51.100.7:5060", Expires: time.UnixMilli(1_700_000_360_000), Since: time.UnixMilli(1_700_000_000_000)}}}
	callees, err := newAllowList([]string{"*.allowed.example"})
	require.NoError(t, err)
	s := newServer(&fakeCalls{}, serverOptions{NoAuth: true, AllowCallees: callees})
	defer s.close()
	ts := httptest.NewServer(testHandler(s, nil))
	defer ts.Close()
	post := func(path, body string) (int, string) {
		code, b, _ := do(t, "POST", ts.URL+"/rest-api"+path, "application/json", body, nil)
		return code, b
	}

	code, _ := post("/registration/find_all", `{}`)
	require.Equal(t, http.StatusNotFound, code, "no registrations served")

	s.regs = regs
	code, body := post("/registration/find_all", `{}`)
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `[{"account":"trunk7","user":"trunk7","domain":"gw","state":"REGISTERED","expires":1700000360000,
		"since":1700000000000,"lastError":"","inbound":true,"contact":"sip:trunk7@198.51.100.7:5060"}]`, body)

	for _, tc := range []struct{ body, want string }{
		{`{"sipDomain":"pbx.allowed.example"}`, "sipLogin: is required"},
		{`{"sipLogin":"bob"}`, "sipDomain: is required"},
		{`{"sipLogin":"bo b","sipDomain":"pbx.allowed.example"}`, "sipLogin:"},
		{`{"sipLogin":"bob","sipDomain":"pbx.allowed.example","sipPort":70000}`, "sipPort: must be between 1 and 65535"},
		{`{"sipLogin":"bob","sipDomain":"pbx.allowed.example","sipTransport":"sctp"}`, "sipTransport: must be UDP, TCP or TLS"},
		{`{"sipLogin":"bob","sipDomain":"pbx.allowed.example","expires":5}`, "expires: must be 60 to 86400 seconds"},
		{`{"sipLogin":"bob","sipDomain":"pbx.allowed.example","account":"a b"}`, "account: must not contain blanks"},
		{`{"sipLogin":"bob","sipDomain":"pbx.allowed.example","sipPort":"x"}`, "is not an integer"},
	} {
		code, body := post("/registration/startup", tc.body)
		require.Equal(t, http.StatusBadRequest, code, tc.body)
		require.Contains(t, body, tc.want, tc.body)
	}
	code, body = post("/registration/startup", `{"sipLogin":"bob","sipDomain":"evil.example"}`)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Contains(t, body, "sipDomain: not allowed on this server")
	code, body = post("/registration/startup", `{"sipLogin":"bob","sipDomain":"pbx.allowed.example","sipOutboundProxy":"10.0.0.1"}`)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Empty(t, regs.accounts, "refused before the Manager")

	code, body = post("/registration/startup", `{"sipLogin":"bob","sipAuthenticationName":"bob-auth","sipPassword":"Reg-Secret-1",
		"sipDomain":"pbx.allowed.example","sipOutboundProxy":"edge.allowed.example","sipPort":"5080","sipTransport":"TCP","expires":"600"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, "Reg-Secret-1")
	var r Registration
	require.NoError(t, json.Unmarshal([]byte(body), &r))
	require.Equal(t, Registration{Account: "bob@pbx.allowed.example", User: "bob", Domain: "pbx.allowed.example", State: "REGISTERING", Since: 1_700_000_000_000}, r)
	require.Equal(t, callmgr.Account{Name: "", User: "bob", AuthUser: "bob-auth", Password: "Reg-Secret-1", Domain: "pbx.allowed.example",
		Proxy: "edge.allowed.example", Port: 5080, Transport: "tcp", Expires: 10 * time.Minute}, withName(regs.accounts[0], ""))

	code, body = post("/registration/startup", `{"sipLogin":"bob","sipDomain":"pbx.allowed.example"}`)
	require.Equal(t, http.StatusConflict, code, body)

	// A registrar's error that quotes the password is scrubbed.
	regs.mu.Lock()
	info := regs.infos["bob@pbx.allowed.example"]
	info.State, info.LastError = callmgr.RegFailed, "403 Forbidden (password Reg-Secret-1 refused)"
	regs.infos["bob@pbx.allowed.example"] = info
	regs.mu.Unlock()
	code, body = post("/registration/find", `{"account":"bob@pbx.allowed.example"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.NotContains(t, body, "Reg-Secret-1")
	require.Contains(t, body, `"state":"FAILED"`)
	code, body = post("/registration/find", `{"inbound":"true"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Contains(t, body, `"account":"trunk7"`)
	require.NotContains(t, body, "bob")
	code, _ = post("/registration/find", `{"state":"registered","inbound":false}`)
	require.Equal(t, http.StatusNotFound, code)
	code, _ = post("/registration/find", `{"account":"nobody"}`)
	require.Equal(t, http.StatusNotFound, code)

	code, body = post("/registration/terminate", `{}`)
	require.Equal(t, http.StatusBadRequest, code, body)
	code, _ = post("/registration/terminate", `{"account":"nobody"}`)
	require.Equal(t, http.StatusNotFound, code)
	code, body = post("/registration/terminate", `{"account":"bob@pbx.allowed.example"}`)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, []string{"bob@pbx.allowed.example"}, regs.removed)
	code, _ = post("/registration/find", `{"account":"bob@pbx.allowed.example"}`)
	require.Equal(t, http.StatusNotFound, code)

	code, _, _ = do(t, "GET", ts.URL+"/rest-api/registration/find_all", "", "", nil)
	require.Equal(t, http.StatusMethodNotAllowed, code)
	require.Contains(t, scrape(t, s), `sipstream_rest_requests_total{code="409",endpoint="/registration/startup"} 1`)
}

func withName(a callmgr.Account, name string) callmgr.Account {
	a.Name = name
	return a
}

// A registration's change reaches the default application's hook as
// RegistrationStatusEvent and the page as a "registration" event, through
// the Manager's events (the Relay), without secrets.
func TestRegistrationEvents(t *testing.T) {
	hook := newDialinHook(t, 204, "")
	relay := new(callmgr.Relay)
	m, err := callmgr.New(callmgr.Config{ListenAddr: "127.0.0.1:0", RTPPortMin: 27200, RTPPortMax: 27299, OnEvent: relay.OnEvent})
	require.NoError(t, err)
	defer m.Close(context.Background())
	secrets := NewSecrets()
	secrets.Add("Reg-Secret-2")
	api, err := New(m, Config{Events: relay, NoAuth: true, Webhook: hook.URL + "/app", NodeID: "n1", Secrets: secrets})
	require.NoError(t, err)
	defer api.Close()
	ts := httptest.NewServer(api)
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", ts.URL+"/events", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	line, err := rd.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "event: snapshot\n", line)

	relay.OnEvent(callmgr.Event{Type: callmgr.EventRegistration, Time: time.Now(), Registration: callmgr.RegistrationInfo{
		Account: "pbx", User: "100", Domain: "pbx.example", State: callmgr.RegFailed, LastError: "401 with Reg-Secret-2",
		Since: time.UnixMilli(1_700_000_000_000),
	}})
	var data string
	for !strings.HasPrefix(data, "data: {\"type\":\"RegistrationStatusEvent\"") {
		line, err := rd.ReadString('\n')
		require.NoError(t, err)
		if line == "event: registration\n" {
			data, err = rd.ReadString('\n')
			require.NoError(t, err)
		}
	}
	var ev RegistrationEvent
	require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(data, "data: ")), &ev))
	require.Equal(t, "FAILED", ev.Status)
	require.Equal(t, "pbx", ev.Account)
	require.Equal(t, "n1", ev.NodeID)
	require.NotContains(t, data, "Reg-Secret-2")

	deadline := time.Now().Add(10 * time.Second)
	for len(hook.requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	require.Equal(t, []string{"POST /app/RegistrationStatusEvent"}, hook.requests())
	hook.mu.Lock()
	raw := hook.raw[0]
	hook.mu.Unlock()
	require.JSONEq(t, `{"type":"RegistrationStatusEvent","nodeId":"n1","status":"FAILED","account":"pbx","user":"100","domain":"pbx.example",
		"state":"FAILED","expires":0,"since":1700000000000,"lastError":"`+publicReason("401 with Reg-Secret-2", secrets)+`","inbound":false,"contact":"","timestamp":`+
		jsonNumber(t, raw, "timestamp")+`}`, raw)
	require.NotContains(t, raw, "Reg-Secret-2")
}

// jsonNumber is the number member name of the JSON object raw, as text.
func jsonNumber(t *testing.T, raw, name string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(raw), &m))
	return string(m[name])
}
