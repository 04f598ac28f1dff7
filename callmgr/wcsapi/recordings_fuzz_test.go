package wcsapi

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// recordingNameCases are names GET /recordings/ and /recording/delete get,
// and the format accepted ("" refused).
var recordingNameCases = []struct{ name, format string }{
	{"c1-20261208T010203.000Z.mp4", "mp4"},
	{"show.mkv", "mkv"},
	{"a.flv", "flv"},
	{"a.MP4", ""},
	{"a.mp4.json", ""},
	{"../a.mp4", ""},
	{"..%2fa.mp4", ""},
	{"a%2fb.mp4", "mp4"}, // a '%' is a character like another: served only if such a file exists
	{"sub/a.mp4", ""},
	{`sub\a.mp4`, ""},
	{"/etc/a.mp4", ""},
	{".hidden.mp4", ""},
	{"..", ""},
	{"", ""},
	{"a\x00.mp4", ""},
	{strings.Repeat("a", 252) + ".mp4", ""},
	{strings.Repeat("a", 251) + ".mp4", "mp4"},
}

func TestRecordingName(t *testing.T) {
	for _, tc := range recordingNameCases {
		format, ok := recordingName(tc.name)
		require.Equal(t, tc.format != "", ok, "%q", tc.name)
		require.Equal(t, tc.format, format, "%q", tc.name)
	}
}

// FuzzRecordingName: never a panic; an accepted name is one plain,
// non-hidden file name inside the folder with a recording's extension.
func FuzzRecordingName(f *testing.F) {
	for _, tc := range recordingNameCases {
		f.Add(tc.name)
	}
	f.Fuzz(func(t *testing.T, name string) {
		format, ok := recordingName(name)
		if !ok {
			return
		}
		if !filepath.IsLocal(name) || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") ||
			filepath.Base(name) != name || len(name) > 255 || !recordingFormats[format] || !strings.HasSuffix(name, "."+format) {
			t.Fatalf("accepted %q (%q)", name, format)
		}
	})
}

// Log texts: connection errors generic from where they start, secrets
// scrubbed, the rest kept.
func TestLogText(t *testing.T) {
	s := newServer(nil, serverOptions{})
	s.secrets.Add("STREAMKEY", "sippass")
	for in, want := range map[string]string{
		"← 200 OK (INVITE)": "← 200 OK (INVITE)",
		"rtmp output c1/rtmp connection lost, reconnecting: dial tcp 10.0.0.1:1935: connect: connection refused": "rtmp output c1/rtmp connection lost, reconnecting: connection failed",
		"rtmp output p1 failed: publish STREAMKEY refused":                                                       "rtmp output p1 failed: publish *** refused",
		"call ended: FAILED: i/o timeout":                                                                        "call ended: FAILED: connection failed",
		"a: b: c":                                                                                                "a: b: c",
		"trailing: ":                                                                                             "trailing: ",
		"dial tcp 1.2.3.4:5":                                                                                     "connection failed",
	} {
		require.Equal(t, want, s.logText(in), in)
	}
}

// FuzzLogText: never a panic; no secret and no connection error word
// comes out.
func FuzzLogText(f *testing.F) {
	for _, s := range []string{"← 200 OK (INVITE)", "a: dial tcp 1.2.3.4:5: connect: connection refused", "x STREAMKEY y",
		"call ended: FAILED: i/o timeout", ": : :", "connect:", "tls: bad certificate"} {
		f.Add(s)
	}
	s := newServer(nil, serverOptions{})
	s.secrets.Add("STREAMKEY")
	f.Fuzz(func(t *testing.T, in string) {
		out := s.logText(in)
		if strings.Contains(out, "STREAMKEY") {
			t.Fatalf("%q gave %q", in, out)
		}
		lo := strings.ToLower(out)
		for _, w := range networkWords {
			if strings.Contains(lo, w) && !strings.Contains(strings.ToLower(in), "connection failed") {
				t.Fatalf("%q gave %q (%q)", in, out, w)
			}
		}
	})
}
