package whip

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParsePath: whatever the path, parsePath returns an error or a name
// that is 1..MaxNameLen bytes of UTF-8 without control characters, and an
// ID without '/'; escaping that name again and parsing gives it back.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/whip/op1", "/whip/op1/abc", "/whip/", "/whip/a%2Fb/x", "/whip/a%zz", "/whip/%00", "/other/x", "/whip/a/b/c", "/whip/%C3%A9t%C3%A9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, id, err := parsePath(p, "/whip/")
		if err != nil {
			return
		}
		if name == "" || len(name) > MaxNameLen || !utf8.ValidString(name) || strings.Contains(id, "/") ||
			strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("parsePath(%q) = %q, %q", p, name, id)
		}
		again, id2, err := parsePath("/whip/"+url.PathEscape(name)+"/x", "/whip/")
		if err != nil || again != name || id2 != "x" {
			t.Fatalf("round trip of %q: %q, %q, %v", name, again, id2, err)
		}
	})
}
