package rtmpsink

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// FuzzConfigRedaction checks that whatever URL and stream name a user gives,
// validation never panics and the stream name never shows up in an error,
// in String, or in a lower-layer message passed through the redactor.
func FuzzConfigRedaction(f *testing.F) {
	f.Add("rtmp://a.rtmp.youtube.com/live2", "abcd-efgh-ijkl-mnop")
	f.Add("rtmps://live-api-s.facebook.com:443/rtmp/", "FB-123-0-AbCdEf?s_bl=1&s_sc=2&a=ZyXw")
	f.Add("rtmp://user:secretpw@host:1935/app/inline-key-123", "")
	f.Add("rtmp://[::1]:1935/app", "k3y-value-long")
	f.Add("rtmp://h/app?x=%zz", "streamkey0001")
	f.Fuzz(func(t *testing.T, rawURL, stream string) {
		cfg := Config{URL: rawURL, StreamName: stream, Audio: true}
		c, err := cfg.validate()
		_ = cfg.String()
		secret := stream
		if len(secret) < 8 || strings.Contains(rawURL, secret) || strings.ContainsAny(secret, "%/ \t\n") {
			return // only names that cannot be confused with the rest of the URL
		}
		if err != nil {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks the key: %v", err)
			}
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		if strings.Contains(cfg.String(), secret) {
			t.Fatalf("String leaks the key: %s", cfg.String())
		}
		if s := fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg); strings.Contains(s, secret) {
			t.Fatalf("printing the Config leaks the key: %s", s)
		}
		msg := c.redactor.Replace("dial " + c.publishURL + ": refused; name=" + stream)
		if strings.Contains(msg, secret) {
			t.Fatalf("redactor leaves the key in %q", msg)
		}
	})
}
