package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/callmgr/wcsapi"
	"github.com/sipstream/sipstream/internal/testenv"
)

func TestConfigDefaultsEnvAndFlags(t *testing.T) {
	env := map[string]string{
		"SIPSTREAM_HTTP":          "127.0.0.1:9000",
		"SIPSTREAM_RTP_PORTS":     "40000-40100",
		"SIPSTREAM_AUTH":          "u:p",
		"SIPSTREAM_DEMO":          "true",
		"SIPSTREAM_RECORD_FORMAT": "flv",
		"SIPSTREAM_HLS":           "false",
	}
	c, err := parseConfig([]string{"-http", "127.0.0.1:9001", "-public-ip", "192.0.2.7"}, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:9001", c.HTTP, "a flag wins over the environment")
	require.Equal(t, "127.0.0.1:8444", c.HTTPS, "the demo serves loopback unless told otherwise")
	require.Equal(t, "127.0.0.1:5060", c.SIP, "the demo binds SIP to loopback unless -sip is given")
	require.Equal(t, 40000, c.rtpLo)
	require.Equal(t, 40100, c.rtpHi)
	require.Equal(t, "u", c.authUser)
	require.Equal(t, "p", c.authPass)
	require.True(t, c.Demo)
	require.Equal(t, "192.0.2.7", c.publicIP.String())
	require.Equal(t, "flv", c.RecordFormat)
	require.False(t, c.HLS, "SIPSTREAM_HLS=false")

	c, err = parseConfig(nil, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "mp4", c.RecordFormat, "MP4 recordings by default")
	require.True(t, c.HLS, "HLS on by default")
	require.Equal(t, 0.8, c.MaxCPU, "admission control on by default")
	require.Equal(t, "aac", c.RTMPAudio)

	c, err = parseConfig([]string{"-app-webhook", "sales=http://h/s", "-app-webhook", "support=https://u:p@h/t"}, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	require.Equal(t, appWebhooks{"sales": "http://h/s", "support": "https://u:p@h/t"}, c.AppWebhooks)
	require.Equal(t, "sales,support", c.AppWebhooks.String(), "no URL (credentials) in the flag's text")

	c, err = parseConfig([]string{"-max-cpu", "0", "-rtmp-audio", "passthrough"}, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	require.Zero(t, c.MaxCPU)
	require.Equal(t, "passthrough", c.RTMPAudio)
}

func TestConfigErrors(t *testing.T) {
	none := func(string) string { return "" }
	for _, args := range [][]string{
		{"-rtp-ports", "5-4"},
		{"-rtp-ports", "abc"},
		{"-auth", "nocolon"},
		{"-public-ip", "not-an-ip"},
		{"-webhook", "ftp://x"},
		{"-app-webhook", "sales"},
		{"-app-webhook", "=http://x"},
		{"-app-webhook", "sales=ftp://x"},
		{"-tls-cert", "c.pem"},
		{"-http", "", "-https", ""},
		{"-sip", "nohostport"},
		{"-record-dir", "/definitely/not/here"},
		{"-log-level", "loud"},
		{"-record-format", "avi"},
		{"-max-cpu", "1.5"},
		{"-max-cpu", "-0.1"},
		{"-rtmp-audio", "mp3"},
		{"-allow-callees", "pbx.example.com,[a-"},
		{"-allow-rtmp-hosts", "["},
		{"extra"},
	} {
		_, err := parseConfig(args, none, io.Discard)
		require.Error(t, err, "%q", args)
	}
	_, err := parseConfig(nil, func(k string) string {
		if k == "SIPSTREAM_DEMO" {
			return "notabool"
		}
		return ""
	}, io.Discard)
	require.ErrorContains(t, err, "SIPSTREAM_DEMO")
}

// writeFile writes content to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// expiredCert writes a certificate that expired a month ago (the -https
// self-signed one, made 400 days back) and its key.
func expiredCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	cert, err := selfSigned(time.Now().Add(-400 * 24 * time.Hour))
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	require.NoError(t, err)
	return writeFile(t, dir, "expired.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}))),
		writeFile(t, dir, "expired.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
}

// The -sip-tls flags: outgoing TLS verified against the system's roots by
// default; a listener with -sip-tls; the certificate as client certificate;
// -sip-tls-ca as the roots; -sip-tls-insecure.
func TestConfigSIPTLS(t *testing.T) {
	none := func(string) string { return "" }
	a, b := testenv.SelfSigned(t, "a.test"), testenv.SelfSigned(t, "b.test")

	c, err := parseConfig(nil, none, io.Discard)
	require.NoError(t, err)
	require.NotNil(t, c.sipTLS, "outgoing TLS works without flags")
	require.Empty(t, c.sipTLS.Certificates, "no listener")
	require.Nil(t, c.sipTLS.RootCAs, "the system's roots")
	require.Nil(t, c.sipTLS.GetClientCertificate)
	require.False(t, c.sipTLS.InsecureSkipVerify)
	require.GreaterOrEqual(t, c.sipTLS.MinVersion, uint16(tls.VersionTLS12))

	c, err = parseConfig([]string{"-sip-tls", ":5061", "-sip-tls-cert", a.CertFile, "-sip-tls-key", a.KeyFile, "-sip-tls-ca", b.CertFile}, none, io.Discard)
	require.NoError(t, err)
	require.Len(t, c.sipTLS.Certificates, 1, "the listener's certificate")
	require.Equal(t, a.Certificate.Certificate, c.sipTLS.Certificates[0].Certificate)
	cc, err := c.sipTLS.GetClientCertificate(&tls.CertificateRequestInfo{})
	require.NoError(t, err)
	require.Equal(t, a.Certificate.Certificate, cc.Certificate, "the client certificate for mutual TLS")
	_, err = b.Certificate.Leaf.Verify(x509.VerifyOptions{Roots: c.sipTLS.RootCAs})
	require.NoError(t, err, "-sip-tls-ca's certificate is trusted")
	_, err = a.Certificate.Leaf.Verify(x509.VerifyOptions{Roots: c.sipTLS.RootCAs})
	require.Error(t, err, "only -sip-tls-ca's certificates are trusted")

	c, err = parseConfig([]string{"-sip-tls-cert", a.CertFile, "-sip-tls-key", a.KeyFile}, none, io.Discard)
	require.NoError(t, err)
	require.Empty(t, c.sipTLS.Certificates, "a client certificate without -sip-tls opens no listener")
	require.NotNil(t, c.sipTLS.GetClientCertificate)

	c, err = parseConfig([]string{"-sip-tls-insecure"}, none, io.Discard)
	require.NoError(t, err)
	require.True(t, c.sipTLS.InsecureSkipVerify)

	c, err = parseConfig(nil, func(k string) string {
		return map[string]string{"SIPSTREAM_SIP_TLS": "127.0.0.1:5061", "SIPSTREAM_SIP_TLS_CERT": a.CertFile, "SIPSTREAM_SIP_TLS_KEY": a.KeyFile}[k]
	}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:5061", c.SIPTLS)
	require.Len(t, c.sipTLS.Certificates, 1)
}

// Bad -sip-tls flags fail at startup with an error naming the flag and the
// fault, and never the private key.
func TestConfigSIPTLSErrors(t *testing.T) {
	none := func(string) string { return "" }
	a, b := testenv.SelfSigned(t), testenv.SelfSigned(t)
	dir := t.TempDir()
	garbage := writeFile(t, dir, "garbage.pem", "not a certificate\n")
	expCert, expKey := expiredCert(t, dir)
	keyPEM, err := os.ReadFile(a.KeyFile)
	require.NoError(t, err)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-sip-tls", "nohostport"}, "-sip-tls \"nohostport\""},
		{[]string{"-sip-tls", ":5061"}, "-sip-tls needs -sip-tls-cert and -sip-tls-key"},
		{[]string{"-sip-tls-cert", a.CertFile}, "-sip-tls-cert and -sip-tls-key go together"},
		{[]string{"-sip-tls-key", a.KeyFile}, "-sip-tls-cert and -sip-tls-key go together"},
		{[]string{"-sip-tls-cert", filepath.Join(dir, "missing.pem"), "-sip-tls-key", a.KeyFile}, "missing.pem: no such file"},
		{[]string{"-sip-tls-cert", a.CertFile, "-sip-tls-key", filepath.Join(dir, "missing.key")}, "missing.key: no such file"},
		{[]string{"-sip-tls-cert", a.CertFile, "-sip-tls-key", b.KeyFile}, "private key does not match public key"},
		{[]string{"-sip-tls-cert", garbage, "-sip-tls-key", a.KeyFile}, "failed to find any PEM data in certificate input"},
		{[]string{"-sip-tls-cert", a.CertFile, "-sip-tls-key", garbage}, "failed to find any PEM data in key input"},
		{[]string{"-sip-tls-cert", a.KeyFile, "-sip-tls-key", a.CertFile}, "-sip-tls-cert, -sip-tls-key:"},
		{[]string{"-sip-tls-cert", expCert, "-sip-tls-key", expKey}, "expired on"},
		{[]string{"-sip-tls-ca", filepath.Join(dir, "missing-ca.pem")}, "-sip-tls-ca: open"},
		{[]string{"-sip-tls-ca", garbage}, "no PEM certificate in it"},
		{[]string{"-sip-tls-ca", a.CertFile, "-sip-tls-insecure"}, "-sip-tls-ca and -sip-tls-insecure: give one"},
	} {
		_, err := parseConfig(tc.args, none, io.Discard)
		require.ErrorContains(t, err, tc.want, "%q", tc.args)
		require.NotContains(t, err.Error(), strings.TrimSpace(string(keyPEM)), "%q", tc.args)
		require.NotContains(t, err.Error(), "PRIVATE KEY-----", "%q", tc.args)
	}
}

// The dial-in flags: off by default; each turned into the Manager's and the
// Handler's configuration; passwords from files or repeated flags, never in
// the flags' text.
func TestConfigInbound(t *testing.T) {
	none := func(string) string { return "" }
	c, err := parseConfig(nil, none, io.Discard)
	require.NoError(t, err)
	require.False(t, c.inboundOn(), "incoming calls off by default")
	require.False(t, c.hookOn())

	c, err = parseConfig([]string{"-webhook", "http://app/hook"}, none, io.Discard)
	require.NoError(t, err)
	require.True(t, c.hookOn(), "-inbound-hook defaults to true with -webhook")
	require.True(t, c.inboundOn())
	c, err = parseConfig([]string{"-webhook", "http://app/hook", "-inbound-hook=false"}, none, io.Discard)
	require.NoError(t, err)
	require.False(t, c.inboundOn())

	dir := t.TempDir()
	sounds := t.TempDir()
	writeFile(t, sounds, "wait.wav", "RIFF")
	users := writeFile(t, dir, "users", "# callers\nalice:Pw-Alice-1\n\n  bob:Pw:with:colons  \n")
	accounts := writeFile(t, dir, "accounts", "# trunks\nsip:gw:Acc-Pw-2@127.0.0.1:5070;transport=tcp\nsips:desk@pbx.example;authuser=desk-auth;proxy=edge.example:5061\n")
	c, err = parseConfig([]string{"-inbound-rtmp-url", "rtmp://live.example/in", "-inbound-allow", "10.1.2.3/8, 192.0.2.7,2001:db8::/32",
		"-inbound-users", users, "-inbound-user", "carol:Pw-Carol-3", "-inbound-realm", "gw.example", "-inbound-ring", "3s",
		"-inbound-early-media", "-inbound-prompt", "wait.wav", "-sound-dir", sounds, "-inbound-record", "-record-dir", dir, "-registrar",
		"-account", "sip:solo:Acc-Pw-4@sip.example", "-accounts", accounts}, none, io.Discard)
	require.NoError(t, err)
	require.True(t, c.inboundOn())
	in := c.Inbound
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}, in.allow)
	require.Equal(t, map[string]string{"alice": "Pw-Alice-1", "bob": "Pw:with:colons", "carol": "Pw-Carol-3"}, in.users)
	require.Equal(t, []callmgr.Account{
		{User: "solo", Password: "Acc-Pw-4", Domain: "sip.example"},
		{User: "gw", Password: "Acc-Pw-2", Domain: "127.0.0.1", Port: 5070, Transport: "tcp"},
		{User: "desk", AuthUser: "desk-auth", Domain: "pbx.example", Proxy: "edge.example:5061", Transport: "tls"},
	}, in.accounts)
	require.True(t, in.usersOnArgv)
	require.True(t, in.accountsArgv)
	require.Equal(t, "(1 given)", in.Users.String(), "no password in the flag's text")
	require.Equal(t, "(1 given)", in.Accounts.String())
	require.ElementsMatch(t, []string{"Pw-Alice-1", "Pw:with:colons", "Pw-Carol-3", "Acc-Pw-4", "Acc-Pw-2", ""}, in.secrets())

	var mcfg callmgr.Config
	var acfg wcsapi.Config
	inbound := new(wcsapi.Inbound)
	c.managerConfig(&mcfg, inbound)
	c.dialinConfig(&acfg, inbound)
	require.NotNil(t, mcfg.OnIncoming)
	require.Equal(t, callmgr.InboundConfig{AllowFrom: in.allow, Users: in.users, Realm: "gw.example", Registrar: true}, mcfg.Inbound)
	require.Equal(t, in.accounts, mcfg.Accounts)
	require.Same(t, inbound, acfg.Inbound)
	require.Equal(t, wcsapi.DialinConfig{RTMPURL: "rtmp://live.example/in", Record: true, Ring: 3 * time.Second, EarlyMedia: true, Prompt: "wait.wav"}, acfg.Dialin)

	// Accounts alone: registered, calls for them let in, and decided by
	// nothing else (480) unless a default or hook is set.
	c, err = parseConfig(nil, func(k string) string {
		return map[string]string{"SIPSTREAM_ACCOUNT": "sip:env:Env-Pw-5@pbx.example"}[k]
	}, io.Discard)
	require.NoError(t, err)
	require.True(t, c.inboundOn())
	require.False(t, c.Inbound.accountsArgv, "the environment is not ps")
	mcfg = callmgr.Config{}
	c.managerConfig(&mcfg, inbound)
	require.Len(t, mcfg.Accounts, 1)
}

// Bad dial-in flags fail at startup with an error naming the flag, and
// never a password.
func TestConfigInboundErrors(t *testing.T) {
	none := func(string) string { return "" }
	dir := t.TempDir()
	badUsers := writeFile(t, dir, "users", "alice:Pw-Alice-1\nnocolon-Secret-9\nbad user:x\nalice:again\n")
	badAccounts := writeFile(t, dir, "accounts", "sip:gw:Acc-Pw-2@\n")
	on := []string{"-inbound-rtmp-url", "rtmp://h/app"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-inbound-rtmp-url", "http://h/app"}, "-inbound-rtmp-url must be an rtmp:// or rtmps:// URL"},
		{append(on, "-inbound-allow", "10.0.0.0/8,not-a-net"), `-inbound-allow "not-a-net"`},
		{append(on, "-inbound-users", filepath.Join(dir, "missing")), "-inbound-users: open"},
		{append(on, "-inbound-users", badUsers), "-inbound-users line 2: want USER:PASSWORD"},
		{append(on, "-inbound-users", badUsers), `-inbound-users line 3: user "bad user" is not a SIP user name`},
		{append(on, "-inbound-users", badUsers), `-inbound-users line 4: user "alice" given twice`},
		{append(on, "-inbound-user", "nopass-Secret-8"), "-inbound-user #1: want USER:PASSWORD"},
		{append(on, "-inbound-realm", `a"b`), "-inbound-realm"},
		{append(on, "-inbound-ring", "-1s"), "-inbound-ring -1s: want 0 to 2m"},
		{append(on, "-inbound-ring", "5m"), "-inbound-ring 5m0s: want 0 to 2m"},
		{append(on, "-inbound-early-media"), "need -inbound-ring"},
		{append(on, "-inbound-prompt", "x.wav", "-inbound-ring", "1s"), "-inbound-prompt needs -sound-dir"},
		{append(on, "-inbound-prompt", "../x.wav", "-inbound-ring", "1s", "-sound-dir", dir), `-inbound-prompt "../x.wav": not a file in -sound-dir`},
		{append(on, "-inbound-record"), "-inbound-record needs -record-dir"},
		{append(on, "-registrar"), "-registrar needs -inbound-users or -inbound-user"},
		{[]string{"-inbound-hook"}, "-inbound-hook needs -webhook"},
		{[]string{"-inbound-allow", "10.0.0.0/8"}, "-inbound-allow needs incoming calls on"},
		{[]string{"-registrar", "-inbound-user", "a:Pw-A-7"}, "-registrar needs incoming calls on"},
		{[]string{"-account", "bob:Acc-Pw-3@pbx.example"}, "-account #1: not a sip: URI: want sip:USER[:PASSWORD]@HOST[:PORT]"},
		{[]string{"-account", "sip:bob:Acc-Pw-3@pbx.example;transport=sctp"}, `-account #1: sip:bob@pbx.example;transport=sctp: transport "sctp"`},
		{[]string{"-account", "sip:bob:Acc-Pw-3@pbx.example;color=red"}, `unknown parameter "color"`},
		{[]string{"-account", "sip:bob:@pbx.example"}, "empty password"},
		{[]string{"-account", "sip:b b:Acc-Pw-3@pbx.example"}, "-account #1: sip:b b@pbx.example: user:"},
		{[]string{"-account", "sip:bob:Acc-Pw-3@pbx.example", "-account", "sip:bob:Acc-Pw-3@pbx.example:5080"}, "-account #2: account bob@pbx.example given twice"},
		{[]string{"-accounts", badAccounts}, "-accounts line 1: sip:gw@: host:"},
	} {
		_, err := parseConfig(tc.args, none, io.Discard)
		require.ErrorContains(t, err, tc.want, "%q", tc.args)
		for _, secret := range []string{"Pw-Alice-1", "Secret-9", "Secret-8", "Acc-Pw-2", "Acc-Pw-3", "Pw-A-7", "again"} {
			require.NotContains(t, err.Error(), secret, "%q", tc.args)
		}
	}
}
