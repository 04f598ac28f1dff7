//go:build interop

package record_test

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testenv"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink/record"
)

func TestInteropMP4H264PCMA(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.mp4")
	r, err := record.NewMP4(path, record.Config{Audio: true, Video: true})
	require.NoError(t, err)
	for _, f := range interleave(clipFrames(time.Second), toneFrames(media.CodecPCMA, time.Second, 4*time.Second)) {
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.Close(context.Background()))
	decodeClean(t, path)
	assert.Empty(t, testenv.DecodeErrors(t, path))
	p := probe(t, path)
	require.Len(t, p.Streams, 2)
	assert.Equal(t, "h264", p.Streams[0].CodecName)
	assert.Equal(t, 320, p.Streams[0].Width)
	assert.Equal(t, 240, p.Streams[0].Height)
	assert.Equal(t, "100", p.Streams[0].ReadFrames)
	assert.Equal(t, "aac", p.Streams[1].CodecName)
	assert.Equal(t, "48000", p.Streams[1].SampleRate)
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	require.NoError(t, err)
	t.Logf("duration %s, format %s", p.Format.Duration, p.Format.FormatName)
	assert.InDelta(t, 4.0, d, 0.05)
}

func TestInteropMP4SIGKILLPlays(t *testing.T) {
	path, lastMs := killedRecording(t, "mp4", 3500)
	decodeClean(t, path)
	end := lastPacketMs(t, path)
	t.Logf("killed after %d ms written; file plays to %d ms (%d ms lost)", lastMs, end, lastMs-end)
	require.GreaterOrEqual(t, end, lastMs-1100, "killed after %d ms written, file plays to %d ms", lastMs, end)
	p := probe(t, path)
	require.Len(t, p.Streams, 2)
	assert.Equal(t, "h264", p.Streams[0].CodecName)
	assert.Equal(t, "aac", p.Streams[1].CodecName)
}
