package testenv

import (
	"bufio"
	"strings"
	"testing"
)

func TestReadNetstring(t *testing.T) {
	r := bufio.NewReader(strings.NewReader(`5:hello,0:,11:{"event":1},`))
	for _, want := range []string{"hello", "", `{"event":1}`} {
		got, err := readNetstring(r)
		if err != nil || string(got) != want {
			t.Fatalf("got %q %v, want %q", got, err, want)
		}
	}
	for _, bad := range []string{"x:abc,", "-1:,", "3:abcd", "99999999999:", "3:ab", "5", "2000000:"} {
		if got, err := readNetstring(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q: got %q, want an error", bad, got)
		}
	}
}

func FuzzReadNetstring(f *testing.F) {
	f.Add(`5:hello,`)
	f.Add(`125:{"response":true,"ok":true,"data":"x","token":"t1"},`)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := readNetstring(bufio.NewReader(strings.NewReader(s)))
		if err == nil && !strings.Contains(s, string(got)+",") {
			t.Fatalf("%q read from %q", got, s)
		}
	})
}
