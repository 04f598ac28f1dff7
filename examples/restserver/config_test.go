package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/require"
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
