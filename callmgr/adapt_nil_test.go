package callmgr

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The adapters must return a nil sink.Sink (not a nil pointer inside one)
// when the constructor fails.
func TestAdaptersReturnNilOnError(t *testing.T) {
	// a folder that cannot be made: its parent is a file
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for _, format := range []string{"mp4", "mkv", "flv"} {
		s, err := sinkAdapter{}.NewRecorder(filepath.Join(file, "dir", "x."+format), format, true, true, 0)
		require.Error(t, err, format)
		assert.True(t, s == nil, "%s: typed nil", format)
	}
	s, err := newRTMPSink(rtmpConfig{URL: "", OnStatus: func(SinkStatus, string) {}}, 0)
	require.Error(t, err)
	assert.True(t, s == nil, "rtmp: typed nil")
	s, err = sinkAdapter{}.NewRTMP(rtmpConfig{})
	require.Error(t, err)
	assert.True(t, s == nil)
	o, err := sdpAdapter{}.NewOffer(offerConfig{})
	require.Error(t, err)
	assert.True(t, o == nil)
}
