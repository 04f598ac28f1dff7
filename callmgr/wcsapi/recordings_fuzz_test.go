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
