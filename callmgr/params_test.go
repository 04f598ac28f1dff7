package callmgr

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/grammarcases"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sip"
)

var paramCases = []struct {
	name  string
	p     CallParams
	field string // "" means valid
}{
	{"minimal", CallParams{Callee: "sip:bob@example.com"}, ""},
	{"bare user with domain", CallParams{Callee: "bob", SIPDomain: "pbx.example"}, ""},
	{"user@host", CallParams{Callee: "bob@10.0.0.1:5070"}, ""},
	{"sips uri with params", CallParams{Callee: "sips:bob@host;transport=tls"}, ""},
	{"ipv6 host", CallParams{Callee: "sip:bob@[::1]:5060"}, ""},
	{"host only", CallParams{Callee: "sip:pbx.example"}, ""},
	{"underscore host", CallParams{Callee: "bob@sip_pbx", SIPDomain: "sip_pbx:5060", SIPOutboundProxy: "sip_proxy"}, ""},
	{"proxy as a URI", CallParams{Callee: "b@h", SIPOutboundProxy: "sip:proxy.example;lr"}, ""},
	{"visible name with quotes", CallParams{Callee: "b@h", VisibleName: `Bob "The Builder" \o/`}, ""},
	{"header value with a tab", CallParams{Callee: "b@h", Headers: []sip.Header{{Name: "X-Y", Value: "a\tb"}}}, ""},
	{"full", CallParams{CallID: "abc-123@host", Callee: "1002", ToStream: "room", RTMPURL: "rtmps://live.example:443/app",
		RTMPStream: "k?s=1&a=2", HasAudio: true, HasVideo: true, SIPLogin: "1001", SIPAuthName: "a1001", SIPPassword: "p w<>",
		SIPDomain: "pbx.example:5060", SIPOutboundProxy: "10.0.0.1:5080", SIPPort: 5060, SIPTransport: "TLS",
		SIPRegisterRequired: true, VisibleName: "Front Desk", AppKey: "callApp", Headers: []sip.Header{{Name: "X-Token", Value: "abc"}}}, ""},
	{"no callee", CallParams{}, FieldCallee},
	{"callee spaces", CallParams{Callee: "bob smith@h"}, FieldCallee},
	{"callee angle", CallParams{Callee: "<sip:bob@h>"}, FieldCallee},
	{"callee no host", CallParams{Callee: "bob"}, FieldCallee},
	{"callee no host, proxy only", CallParams{Callee: "bob", SIPOutboundProxy: "proxy.example"}, FieldCallee},
	{"callee empty user", CallParams{Callee: "sip:@h"}, FieldCallee},
	{"callee bad host", CallParams{Callee: "bob@ho st"}, FieldCallee},
	{"callee bad port", CallParams{Callee: "bob@host:99999"}, FieldCallee},
	{"callee tel", CallParams{Callee: "tel:+15551234", SIPDomain: "pbx.example"}, FieldCallee},
	{"call id spaces", CallParams{CallID: "a b", Callee: "b@h"}, FieldCallID},
	{"call id too long", CallParams{CallID: strings.Repeat("a", 257), Callee: "b@h"}, FieldCallID},
	{"login spaces", CallParams{Callee: "b@h", SIPLogin: "bob smith"}, FieldSIPLogin},
	{"login angle", CallParams{Callee: "b@h", SIPLogin: "<bob>"}, FieldSIPLogin},
	{"login at", CallParams{Callee: "b@h", SIPLogin: "bob@x"}, FieldSIPLogin},
	{"auth name", CallParams{Callee: "b@h", SIPAuthName: "a:b"}, FieldSIPAuthName},
	{"domain", CallParams{Callee: "b@h", SIPDomain: "pbx example"}, FieldSIPDomain},
	{"proxy", CallParams{Callee: "b@h", SIPOutboundProxy: "host:0"}, FieldSIPOutboundProxy},
	{"port", CallParams{Callee: "b@h", SIPPort: 70000}, FieldSIPPort},
	{"negative port", CallParams{Callee: "b@h", SIPPort: -1}, FieldSIPPort},
	{"transport", CallParams{Callee: "b@h", SIPTransport: "sctp"}, FieldSIPTransport},
	{"register without login", CallParams{Callee: "b@h", SIPDomain: "d", SIPRegisterRequired: true}, FieldSIPLogin},
	{"register without domain", CallParams{Callee: "b@h", SIPLogin: "u", SIPRegisterRequired: true}, FieldSIPDomain},
	{"visible name newline", CallParams{Callee: "b@h", VisibleName: "a\r\nVia: x"}, FieldVisibleName},
	{"header reserved", CallParams{Callee: "b@h", Headers: []sip.Header{{Name: "Call-ID", Value: "x"}}}, FieldHeaders},
	{"header reserved compact", CallParams{Callee: "b@h", Headers: []sip.Header{{Name: "i", Value: "x"}}}, FieldHeaders},
	{"header name", CallParams{Callee: "b@h", Headers: []sip.Header{{Name: "X Y", Value: "x"}}}, FieldHeaders},
	{"header value crlf", CallParams{Callee: "b@h", Headers: []sip.Header{{Name: "X-Y", Value: "a\r\nB: c"}}}, FieldHeaders},
	{"too many headers", CallParams{Callee: "b@h", Headers: make([]sip.Header, 33)}, FieldHeaders},
	{"rtmp scheme", CallParams{Callee: "b@h", RTMPURL: "http://h/app"}, FieldRTMPURL},
	{"rtmp no host", CallParams{Callee: "b@h", RTMPURL: "rtmp:///app"}, FieldRTMPURL},
	{"rtmp stream spaces", CallParams{Callee: "b@h", RTMPURL: "rtmp://h/app", RTMPStream: "a b"}, FieldRTMPStream},
	{"record without dir", CallParams{Callee: "b@h", Record: true}, FieldRecord},
	{"too long", CallParams{Callee: "b@h", AppKey: strings.Repeat("k", 2000)}, FieldAppKey},
	{"negative ring timeout", CallParams{Callee: "b@h", RingTimeout: -time.Second}, FieldRingTimeout},
	{"srtp", CallParams{Callee: "b@h", SRTP: "maybe"}, FieldSRTP},
}

func TestValidateParams(t *testing.T) {
	cfg, err := Config{ListenAddr: "127.0.0.1:0"}.validate()
	require.NoError(t, err)
	for _, tc := range paramCases {
		t.Run(tc.name, func(t *testing.T) {
			q, err := tc.p.validate(&cfg)
			if tc.field == "" {
				require.NoError(t, err)
				assert.NotEmpty(t, q.CallID)
				assert.NotEmpty(t, q.ToStream)
				assert.Equal(t, cfg.RingTimeout, q.RingTimeout)
				if q.RTMPURL != "" {
					assert.NotEmpty(t, q.RTMPStream)
				}
				return
			}
			var pe *ParamError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.field, pe.Field)
			assert.True(t, errors.Is(err, ErrInvalidParams))
			assert.Equal(t, pe.Err != nil, errors.Is(err, sip.ErrInvalidParams), "a grammar error is a sip one too")
			if tc.p.SIPPassword != "" {
				assert.NotContains(t, err.Error(), tc.p.SIPPassword)
			}
		})
	}
}

func TestParamsRedaction(t *testing.T) {
	p := CallParams{Callee: "b@h", SIPPassword: "hunter2", RTMPURL: "rtmp://user:pw@live.example/app/key?s_sig=abc",
		RTMPStream: "streamkey-123"}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("x", "p", p)
	for _, s := range []string{p.String(), fmt.Sprintf("%v", p), fmt.Sprintf("%+v", p), fmt.Sprintf("%#v", p), buf.String()} {
		for _, secret := range []string{"hunter2", "streamkey-123", "s_sig", "user:pw", "/key"} {
			assert.NotContains(t, s, secret)
		}
		assert.Contains(t, s, "rtmp://live.example/app")
	}
	ci := CallInfo{CallID: "c", RTMPURL: p.RTMPURL, RTMPStream: p.RTMPStream}
	assert.NotContains(t, ci.String(), "streamkey")
	assert.NotContains(t, ci.String(), "s_sig")
	assert.Equal(t, "[redacted]", redactURL("::"))
}

func TestStreamKey(t *testing.T) {
	assert.Equal(t, streamKey("rtmp://H/app/", "s"), streamKey("RTMP://h/app", "s"))
	assert.NotEqual(t, streamKey("rtmp://h/app", "s"), streamKey("rtmp://h/app", "S"))
	assert.Empty(t, streamKey("", "s"))
}

func TestSplitFullURL(t *testing.T) {
	u, s, err := splitFullURL("rtmp://h:1935/live/stream1/")
	require.NoError(t, err)
	assert.Equal(t, "rtmp://h:1935/live", u)
	assert.Equal(t, "stream1", s)
	for _, bad := range []string{"rtmp://h", "rtmp://h/", "nothing"} {
		_, _, err := splitFullURL(bad)
		assert.ErrorIs(t, err, ErrInvalidParams, bad)
	}
}

func TestConfigValidate(t *testing.T) {
	c, err := Config{}.validate()
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0:5060", c.ListenAddr)
	assert.Equal(t, 30000, c.RTPPortMin)
	assert.Equal(t, 31999, c.RTPPortMax)
	assert.Equal(t, "mp4", c.RecordFormat)
	assert.Equal(t, 60*time.Second, c.RingTimeout)
	assert.Equal(t, 5*time.Second, c.TeardownTimeout)
	assert.True(t, c.PublicIP.IsValid() && !c.PublicIP.IsUnspecified())
	assert.True(t, c.MediaIP.IsUnspecified())
	assert.Equal(t, []media.Codec{media.CodecPCMA, media.CodecPCMU, media.CodecOpus}, c.AudioCodecs)
	assert.Equal(t, []media.Codec{media.CodecH264, media.CodecVP8}, c.VideoCodecs)

	c, err = Config{ListenAddr: ":5070"}.validate()
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0:5070", c.ListenAddr)

	c, err = Config{ListenAddr: "127.0.0.1:5062"}.validate()
	require.NoError(t, err)
	assert.Equal(t, netip.MustParseAddr("127.0.0.1"), c.PublicIP)
	assert.Equal(t, netip.MustParseAddr("127.0.0.1"), c.MediaIP)

	orig := Config{ListenAddr: "127.0.0.1:0"}
	_, err = orig.validate()
	require.NoError(t, err)
	assert.Zero(t, orig.RingTimeout, "the caller's struct is not written")

	for _, bad := range []Config{
		{ListenAddr: "nohostport"},
		{ListenAddr: "example.com:5060"},
		{RTPPortMin: 100, RTPPortMax: 200},
		{RTPPortMin: 30000, RTPPortMax: 30001},
		{RecordDir: "/definitely/not/here"},
		{RecordFormat: "avi"},
		{RingTimeout: -1},
		{DefaultUser: "a b"},
		{PublicIP: netip.IPv4Unspecified()},
		{AudioCodecs: []media.Codec{media.CodecH264}},
		{AudioCodecs: []media.Codec{media.CodecTelephoneEvent}},
		{VideoCodecs: []media.Codec{media.CodecPCMA}},
	} {
		_, err := New(bad)
		assert.Error(t, err, "%+v", bad)
	}
}

func TestRecordName(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	assert.Equal(t, "room_1-20260102T030405.006Z.mkv", recordName("room/1", ts, "mkv"))
	assert.Equal(t, "etc_passwd-20260102T030405.006Z.flv", recordName("../etc/passwd", ts, "flv")[1:])
	assert.Equal(t, "call-20260102T030405.006Z.flv", recordName("", ts, "flv"))
}

// FuzzValidateParams: any input gives a valid normalized call or a
// *ParamError, never a panic, and never echoes the password.
func FuzzValidateParams(f *testing.F) {
	for _, tc := range paramCases {
		h := ""
		if len(tc.p.Headers) > 0 {
			h = tc.p.Headers[0].Name + ":" + tc.p.Headers[0].Value
		}
		f.Add(tc.p.CallID, tc.p.Callee, tc.p.RTMPURL, tc.p.RTMPStream, tc.p.SIPLogin, tc.p.SIPDomain, tc.p.SIPOutboundProxy, h, tc.p.SIPPort)
	}
	cfg, err := Config{ListenAddr: "127.0.0.1:0"}.validate()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, id, callee, rtmpURL, stream, login, domain, proxy, header string, port int) {
		name, value, _ := strings.Cut(header, ":")
		p := CallParams{CallID: id, Callee: callee, RTMPURL: rtmpURL, RTMPStream: stream, SIPLogin: login,
			SIPDomain: domain, SIPOutboundProxy: proxy, SIPPort: port, SIPPassword: "PASSWORD-XYZ",
			Headers: []sip.Header{{Name: name, Value: value}}}
		q, err := p.validate(&cfg)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("not a ParamError: %v", err)
			}
			if strings.Contains(err.Error(), "PASSWORD-XYZ") && !strings.Contains(id+callee+rtmpURL+stream+login+domain+proxy+header, "PASSWORD-XYZ") {
				t.Fatal("password in error")
			}
			return
		}
		if q.CallID == "" || q.ToStream == "" || (q.RTMPURL != "" && q.RTMPStream == "") {
			t.Fatalf("not normalized: %v", q)
		}
		if hasControl(q.Callee) || strings.ContainsAny(q.Headers[0].Value, "\r\n\x00") {
			t.Fatal("control characters accepted")
		}
		if sip.ValidateCallee(q.Callee, q.SIPDomain) != nil || sip.ValidateHeader(q.Headers[0]) != nil {
			t.Fatal("accepted what sip refuses")
		}
		if strings.Contains(q.String(), "PASSWORD-XYZ") && !strings.Contains(id+callee+rtmpURL+stream+login+domain+proxy+header, "PASSWORD-XYZ") {
			t.Fatal("password in String")
		}
	})
}

func TestSIPAddressing(t *testing.T) {
	assert.Equal(t, "proxy.example:5070", proxyAddr(account{Proxy: "proxy.example", Port: 5070}))
	assert.Equal(t, "proxy.example:5080", proxyAddr(account{Proxy: "proxy.example:5080", Port: 5070}))
	assert.Equal(t, "proxy.example", proxyAddr(account{Proxy: "proxy.example"}))
	assert.Equal(t, "[::1]:5070", proxyAddr(account{Proxy: "[::1]", Port: 5070}))
	assert.Equal(t, "", proxyAddr(account{Port: 5070}))
	assert.Equal(t, "pbx.example:5070", registrarAddr(account{Domain: "pbx.example", Port: 5070}))
	assert.Equal(t, "", registrarAddr(account{Domain: "pbx.example:5070", Port: 5070}), "the domain's own port")
	assert.Equal(t, "", registrarAddr(account{Domain: "pbx.example", Port: 5070, Proxy: "p"}), "REGISTER goes to the proxy")
	assert.Equal(t, "", registrarAddr(account{Domain: "pbx.example"}))
}

// FuzzDTMF: digits are accepted exactly when every character is a DTMF
// symbol, upper-cased, and never more than 64; types parse or give a
// *ParamError.
func FuzzDTMF(f *testing.F) {
	for _, s := range []string{"123", "*#", "abcd", "ABCD", "", "12x", strings.Repeat("1", 65), "INFO_RELAY", "rfc2833"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := validDigits(s)
		if err == nil {
			if len(d) == 0 || len(d) > maxDigits || strings.Trim(d, "0123456789*#ABCD") != "" || !strings.EqualFold(d, s) {
				t.Fatalf("accepted %q as %q", s, d)
			}
		} else if !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("not a ParamError: %v", err)
		}
		if typ, err := ParseDTMFType(s); err == nil {
			if back, err := ParseDTMFType(typ.String()); err != nil || back != typ {
				t.Fatalf("%q: %v does not round-trip", s, typ)
			}
		} else if !errors.Is(err, ErrInvalidParams) {
			t.Fatalf("not a ParamError: %v", err)
		}
	})
}

// TestGrammarMatchesSIP feeds sip's golden grammar table through StartCall's
// validation: each input, put in the CallParams field it belongs to, gets
// the answer sip's validator gives it, and a refusal names that field.
// Empty inputs are skipped where an empty field means a default.
func TestGrammarMatchesSIP(t *testing.T) {
	cfg, err := Config{ListenAddr: "127.0.0.1:0"}.validate()
	require.NoError(t, err)
	for _, c := range grammarcases.Cases {
		p := CallParams{Callee: "bob@pbx.example"}
		var field string
		switch c.Kind {
		case grammarcases.User:
			p.SIPLogin, p.SIPAuthName, field = c.In, "a1001", FieldSIPLogin
		case grammarcases.HostPort:
			p.SIPDomain, field = c.In, FieldSIPDomain
		case grammarcases.CallID:
			p.CallID, field = c.In, FieldCallID
		case grammarcases.HeaderName:
			p.Headers, field = []sip.Header{{Name: c.In, Value: "v"}}, FieldHeaders
		case grammarcases.HeaderValue:
			p.Headers, field = []sip.Header{{Name: "X-Y", Value: c.In}}, FieldHeaders
		case grammarcases.Callee:
			p.Callee, p.SIPDomain, field = c.In, c.Domain, FieldCallee
		case grammarcases.Proxy:
			p.SIPOutboundProxy, field = c.In, FieldSIPOutboundProxy
		default:
			t.Fatalf("unknown kind %q", c.Kind)
		}
		if c.In == "" && c.Kind != grammarcases.Callee && c.Kind != grammarcases.HeaderName && c.Kind != grammarcases.HeaderValue {
			continue // empty means a default
		}
		name := fmt.Sprintf("%s %.40q", c.Kind, c.In)
		_, err := p.validate(&cfg)
		if c.Valid {
			assert.NoError(t, err, name)
			continue
		}
		var pe *ParamError
		if assert.ErrorAs(t, err, &pe, name) {
			assert.Equal(t, field, pe.Field, name)
			assert.ErrorIs(t, err, ErrInvalidParams, name)
		}
	}
}

// TestStartCallGrammar: the same answers through Manager.StartCall, for a
// sample of the table (one valid and one invalid case of each kind).
func TestStartCallGrammar(t *testing.T) {
	e := newTestEnv(t, nil)
	ctx := ctxT(t)
	seen := map[string]bool{}
	for i, c := range grammarcases.Cases {
		key := fmt.Sprint(c.Kind, c.Valid)
		if seen[key] || c.In == "" {
			continue
		}
		seen[key] = true
		p := CallParams{CallID: fmt.Sprintf("g%d", i), Callee: "bob@pbx.example"}
		switch c.Kind {
		case grammarcases.User:
			p.SIPLogin = c.In
		case grammarcases.HostPort:
			p.SIPDomain = c.In
		case grammarcases.CallID:
			p.CallID = c.In
		case grammarcases.HeaderName:
			p.Headers = []sip.Header{{Name: c.In, Value: "v"}}
		case grammarcases.HeaderValue:
			p.Headers = []sip.Header{{Name: "X-Y", Value: c.In}}
		case grammarcases.Callee:
			p.Callee, p.SIPDomain = c.In, c.Domain
		case grammarcases.Proxy:
			p.SIPOutboundProxy = c.In
		}
		call, err := e.m.StartCall(ctx, p)
		if c.Valid {
			if assert.NoError(t, err, "%s %q", c.Kind, c.In) {
				require.NoError(t, call.Terminate(ctx))
				waitDone(t, call)
			}
			continue
		}
		assert.ErrorIs(t, err, ErrInvalidParams, "%s %q", c.Kind, c.In)
	}
}
