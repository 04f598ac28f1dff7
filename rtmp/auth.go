package rtmp

import (
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
)

// ErrAuth matches a PublishError for failed authentication with the URL's
// credentials (wrong user or password).
var ErrAuth = errors.New("rtmp: authentication failed")

// adobeAuth runs the client side of Adobe's RTMP authentication
// ("authmod=adobe", used by Wowza and Adobe Media Server), which the
// credentials of an rtmp://user:pass@host/app URL are for. Each step is a
// new connection whose connect command carries parameters appended to app
// and tcUrl:
//
//  1. connect as usual; the server refuses with a description holding
//     "authmod=adobe" (or "code=403 need auth");
//  2. connect with "?authmod=adobe&user=U"; the server refuses with
//     "?reason=needauth&user=U&salt=S&challenge=C&opaque=O";
//  3. connect with "?authmod=adobe&user=U&challenge=C2&response=R&opaque=O"
//     where R = base64(md5(base64(md5(U+S+password)) + O (or C) + C2))
//     and C2 is the client's own random challenge.
//
// The password never leaves the process in clear and never appears in an
// error.
type adobeAuth struct {
	params string
	step   int
}

// next decides from a failed attempt's error whether to try again, and
// with which parameters.
func (a *adobeAuth) next(err error, u *URL) bool {
	var pe *PublishError
	if u.Username == "" || !errors.As(err, &pe) || pe.Stage != "connect" || pe.Code == "" {
		return false
	}
	desc := pe.Description
	sep := "?"
	if strings.Contains(u.App, "?") {
		sep = "&"
	}
	switch {
	case strings.Contains(desc, "reason=authfailed"), strings.Contains(desc, "reason=nosuchuser"):
		pe.Err = ErrAuth
		return false
	case a.step == 0 && (strings.Contains(desc, "authmod=adobe") || strings.Contains(desc, "code=403 need auth")):
		a.step = 1
		a.params = sep + "authmod=adobe&user=" + url.QueryEscape(u.Username)
		return true
	case a.step == 1 && strings.Contains(desc, "reason=needauth"):
		q, perr := url.ParseQuery(desc[strings.Index(desc, "reason=needauth"):])
		if perr != nil || q.Get("salt") == "" {
			return false
		}
		a.step = 2
		challenge2 := fmt.Sprintf("%08x", rand.Uint32())
		resp := adobeResponse(u.Username, u.password, q.Get("salt"), q.Get("opaque"), q.Get("challenge"), challenge2)
		a.params = sep + "authmod=adobe&user=" + url.QueryEscape(u.Username) + "&challenge=" + challenge2 + "&response=" + resp
		if o := q.Get("opaque"); o != "" {
			a.params += "&opaque=" + o
		}
		return true
	case a.step > 0:
		pe.Err = ErrAuth
	}
	return false
}

// adobeResponse computes the answer to an Adobe authentication challenge.
func adobeResponse(user, password, salt, opaque, challenge, challenge2 string) string {
	h := md5.Sum([]byte(user + salt + password))
	key := base64.StdEncoding.EncodeToString(h[:])
	if opaque != "" {
		key += opaque
	} else {
		key += challenge
	}
	h = md5.Sum([]byte(key + challenge2))
	return base64.StdEncoding.EncodeToString(h[:])
}
