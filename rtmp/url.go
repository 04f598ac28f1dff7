package rtmp

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// URL is a parsed rtmp:// or rtmps:// publishing URL.
//
// The stream name (the publish or play name) is secret on most platforms:
// String never shows it, nor the password of URL credentials.
type URL struct {
	// Scheme is "rtmp" or "rtmps".
	Scheme string
	// Host is host:port, with the default port filled in (1935 for rtmp,
	// 443 for rtmps).
	Host string
	// Hostname is the host without the port, for TLS server name
	// indication.
	Hostname string
	// App is the application, with its instance and query when there are
	// any: "live", "live/_definst_", "live?token=x". It is sent as the
	// connect command's app.
	App string
	// Stream is the stream name (stream key) with its query string:
	// "key", "FB-123?s_bl=1&a=x". Empty when the URL names only the app.
	Stream string
	// Username and password come from user:pass@ in the URL.
	Username string
	password string
}

// ErrInvalidURL is wrapped by every URL parsing error. The messages never
// repeat the URL, which may hold a stream key or a password.
var ErrInvalidURL = errors.New("rtmp: invalid URL")

// ParseURL parses an RTMP URL. The path is split the way FFmpeg and OBS
// split it: with one segment after the app ("/live/key") the app is the
// first segment; with more ("/live/_definst_/key") the first two form the
// app (application and instance) and the rest is the stream name. The
// query string belongs to the stream name when there is one (Facebook's
// "?s_bl=…&a=…" keys) and to the app otherwise. See ParseAppURL for URLs
// that name only the app.
func ParseURL(raw string) (*URL, error) {
	u, path, query, err := parseCommon(raw)
	if err != nil {
		return nil, err
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(segs) == 1 && segs[0] == "":
		return nil, fmt.Errorf("%w: no application in the path", ErrInvalidURL)
	case len(segs) == 1:
		u.App = segs[0] + query
	case len(segs) == 2:
		u.App, u.Stream = segs[0], segs[1]+query
	default:
		u.App, u.Stream = segs[0]+"/"+segs[1], strings.Join(segs[2:], "/")+query
	}
	return u, nil
}

// ParseAppURL parses an RTMP URL whose whole path (with its query string)
// is the app, as "rtmp://host:1935/live/_definst_?a=b", and takes the
// stream name separately.
func ParseAppURL(raw, stream string) (*URL, error) {
	u, path, query, err := parseCommon(raw)
	if err != nil {
		return nil, err
	}
	u.App = strings.Trim(path, "/") + query
	if u.App == "" {
		return nil, fmt.Errorf("%w: no application in the path", ErrInvalidURL)
	}
	u.Stream = stream
	return u, nil
}

func parseCommon(raw string) (*URL, string, string, error) {
	pu, err := url.Parse(raw)
	if err != nil {
		return nil, "", "", fmt.Errorf("%w: does not parse", ErrInvalidURL)
	}
	u := &URL{Scheme: strings.ToLower(pu.Scheme)}
	var port string
	switch u.Scheme {
	case "rtmp":
		port = "1935"
	case "rtmps":
		port = "443"
	default:
		return nil, "", "", fmt.Errorf("%w: scheme %q is not rtmp or rtmps", ErrInvalidURL, pu.Scheme)
	}
	u.Hostname = pu.Hostname()
	if u.Hostname == "" {
		return nil, "", "", fmt.Errorf("%w: no host", ErrInvalidURL)
	}
	if p := pu.Port(); p != "" {
		port = p
	}
	u.Host = net.JoinHostPort(u.Hostname, port)
	if pu.User != nil {
		u.Username = pu.User.Username()
		u.password, _ = pu.User.Password()
	}
	path := pu.Path
	if pu.RawPath != "" {
		path = pu.RawPath // keep escapes of the stream key as the user wrote them
	}
	query := ""
	if pu.RawQuery != "" || pu.ForceQuery {
		query = "?" + pu.RawQuery
	}
	return u, path, query, nil
}

// Password returns the password given in the URL, if any.
func (u *URL) Password() string { return u.password }

// TcURL returns the tcUrl of the connect command: scheme, host, port and
// app, without credentials or stream name.
func (u *URL) TcURL() string { return u.Scheme + "://" + u.Host + "/" + u.App }

// String returns the URL with the stream name and the password replaced by
// "xxxxx", safe for logs.
func (u *URL) String() string {
	var b strings.Builder
	b.WriteString(u.Scheme + "://")
	if u.Username != "" {
		b.WriteString(url.PathEscape(u.Username))
		if u.password != "" {
			b.WriteString(":xxxxx")
		}
		b.WriteString("@")
	}
	b.WriteString(u.Host + "/" + u.App)
	if u.Stream != "" {
		b.WriteString("/xxxxx")
	}
	return b.String()
}
