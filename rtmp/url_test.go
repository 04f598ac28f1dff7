package rtmp

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		raw                         string
		host, hostname, app, stream string
		user, pass, tcURL, redacted string
	}{
		{raw: "rtmp://a.rtmp.youtube.com/live2/abcd-efgh", host: "a.rtmp.youtube.com:1935", hostname: "a.rtmp.youtube.com",
			app: "live2", stream: "abcd-efgh", tcURL: "rtmp://a.rtmp.youtube.com:1935/live2",
			redacted: "rtmp://a.rtmp.youtube.com:1935/live2/xxxxx"},
		{raw: "rtmps://live-api-s.facebook.com/rtmp/FB-1234?s_bl=1&s_sc=5&a=AbC", host: "live-api-s.facebook.com:443",
			hostname: "live-api-s.facebook.com", app: "rtmp", stream: "FB-1234?s_bl=1&s_sc=5&a=AbC",
			tcURL: "rtmps://live-api-s.facebook.com:443/rtmp", redacted: "rtmps://live-api-s.facebook.com:443/rtmp/xxxxx"},
		{raw: "rtmp://host:1936/live/_definst_/key", host: "host:1936", hostname: "host", app: "live/_definst_", stream: "key",
			tcURL: "rtmp://host:1936/live/_definst_", redacted: "rtmp://host:1936/live/_definst_/xxxxx"},
		{raw: "rtmp://bob:s3cret@127.0.0.1/app/name", host: "127.0.0.1:1935", hostname: "127.0.0.1", app: "app", stream: "name",
			user: "bob", pass: "s3cret", tcURL: "rtmp://127.0.0.1:1935/app", redacted: "rtmp://bob:xxxxx@127.0.0.1:1935/app/xxxxx"},
		{raw: "rtmp://[::1]:1935/live?token=1", host: "[::1]:1935", hostname: "::1", app: "live?token=1",
			tcURL: "rtmp://[::1]:1935/live?token=1", redacted: "rtmp://[::1]:1935/live?token=1"},
		{raw: "RTMP://Host/live/a/b/c", host: "Host:1935", hostname: "Host", app: "live/a", stream: "b/c",
			tcURL: "rtmp://Host:1935/live/a", redacted: "rtmp://Host:1935/live/a/xxxxx"},
	} {
		u, err := ParseURL(c.raw)
		require.NoError(t, err, c.raw)
		require.Equal(t, c.host, u.Host, c.raw)
		require.Equal(t, c.hostname, u.Hostname, c.raw)
		require.Equal(t, c.app, u.App, c.raw)
		require.Equal(t, c.stream, u.Stream, c.raw)
		require.Equal(t, c.user, u.Username, c.raw)
		require.Equal(t, c.pass, u.Password(), c.raw)
		require.Equal(t, c.tcURL, u.TcURL(), c.raw)
		require.Equal(t, c.redacted, u.String(), c.raw)
	}
}

func TestParseAppURL(t *testing.T) {
	u, err := ParseAppURL("rtmp://host:1935/live/_definst_?a=b", "key?x=1")
	require.NoError(t, err)
	require.Equal(t, "live/_definst_?a=b", u.App)
	require.Equal(t, "key?x=1", u.Stream)
	require.Equal(t, "rtmp://host:1935/live/_definst_?a=b", u.TcURL())
	require.Equal(t, "rtmp://host:1935/live/_definst_?a=b/xxxxx", u.String())
	_, err = ParseAppURL("rtmp://host/", "k")
	require.ErrorIs(t, err, ErrInvalidURL)
}

func TestParseURLErrorsHideSecrets(t *testing.T) {
	for _, raw := range []string{
		"http://user:pw@host/live/SECRETKEY",
		"rtmp://user:pw@/live/SECRETKEY",
		"rtmp://host",
		"rtmp://us er:pw@host:99999999/live/SECRETKEY%zz",
		"::not a url SECRETKEY",
	} {
		_, err := ParseURL(raw)
		require.True(t, errors.Is(err, ErrInvalidURL), "%s: %v", raw, err)
		require.NotContains(t, err.Error(), "SECRETKEY")
		require.NotContains(t, err.Error(), "pw")
	}
}
