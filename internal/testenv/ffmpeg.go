package testenv

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ffmpegVersions caches `ffmpeg -version` by the binary's path.
var ffmpegVersions sync.Map // path -> string (first line)

var ffmpegVersionRE = regexp.MustCompile(`ffmpeg version n?(\d+)\.(\d+)(\S*)`)

// FFmpegVersion returns the major and minor version of the ffmpeg in PATH
// and its version text. A build without a release number (a git
// snapshot, "N-...") is taken as new (major 99).
func FFmpegVersion(t testing.TB) (major, minor int, text string) {
	t.Helper()
	path := LookPath(t, "ffmpeg")
	v, ok := ffmpegVersions.Load(path)
	if !ok {
		out, err := exec.Command(path, "-version").Output()
		if err != nil {
			t.Fatalf("ffmpeg -version: %v", err)
		}
		v, _ = ffmpegVersions.LoadOrStore(path, strings.SplitN(string(out), "\n", 2)[0])
	}
	first := v.(string)
	sm := ffmpegVersionRE.FindStringSubmatch(first)
	if sm == nil {
		return 99, 0, strings.TrimPrefix(first, "ffmpeg version ")
	}
	major, _ = strconv.Atoi(sm[1])
	minor, _ = strconv.Atoi(sm[2])
	return major, minor, sm[1] + "." + sm[2] + sm[3]
}

// encTimeBase is the -enc_time_base value that keeps the input's time
// base: "-1" up to ffmpeg 6, "demux" from 7 on (8 refuses "-1").
func encTimeBase(t testing.TB) string {
	if major, _, _ := FFmpegVersion(t); major >= 7 {
		return "demux"
	}
	return "-1"
}
