package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
