package rtmpsink

import (
	"testing"

	"github.com/sipstream/sipstream/rtmp"
	"github.com/stretchr/testify/require"
)

// An application URL with a query and a separate stream name (the product's
// "rtmp://host/live?param1=value1" with rtmpStream) is accepted: the query
// stays with the app and tcUrl, the name is published as given, and
// neither the name nor the query shows in messages.
func TestAppURLWithQuery(t *testing.T) {
	c := Config{URL: "rtmp://rtmp.example.com/live?token=sekrit", StreamName: "key123", Audio: true}
	ok, err := c.validate()
	require.NoError(t, err)
	u, err := rtmp.ParseAppURL(ok.URL, ok.StreamName)
	require.NoError(t, err)
	require.Equal(t, "live?token=sekrit", u.App)
	require.Equal(t, "rtmp://rtmp.example.com:1935/live?token=sekrit", u.TcURL())
	require.Equal(t, "key123", u.Stream)
	msg := ok.redactor.Replace("dial " + ok.publishURL + ": refused; app live?token=sekrit name key123")
	require.NotContains(t, msg, "sekrit")
	require.NotContains(t, msg, "key123")

	_, err = Config{URL: "rtmp://rtmp.example.com/?token=x", StreamName: "k", Audio: true}.validate()
	require.ErrorIs(t, err, ErrConfig, "no application")
	_, err = Config{URL: "rtmp://rtmp.example.com/live?token=x", Audio: true}.validate()
	require.ErrorIs(t, err, ErrConfig, "no stream name")
}
