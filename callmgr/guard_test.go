package callmgr

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/sink"
)

// batchSink records the batches and frames it gets; inline says what its
// Inline reports.
type batchSink struct {
	inline  bool
	batches [][]media.Frame
	single  []media.Frame
}

func (b *batchSink) Inline() bool { return b.inline }
func (b *batchSink) WriteFrame(f *media.Frame) error {
	b.single = append(b.single, *f)
	return nil
}
func (b *batchSink) WriteFrames(fs []*media.Frame) (int, error) {
	var got []media.Frame
	for _, f := range fs {
		got = append(got, *f)
	}
	b.batches = append(b.batches, got)
	return len(fs), nil
}
func (b *batchSink) Close(context.Context) error { return nil }

// TestGuardSinkPassesOnInlineAndBatches: the wrapper every sink of a call
// sits behind passes on what the fan-out looks for, so an idle WebRTC sink
// is called inline (no goroutine wake-up per frame) and the RTMP sink gets
// its queue in one batch (one network write); muted, frames still go one
// by one with the audio silenced.
func TestGuardSinkPassesOnInlineAndBatches(t *testing.T) {
	assert.False(t, (&guardSink{inner: nopSink{}}).Inline())
	assert.False(t, (&guardSink{inner: &batchSink{}}).Inline())
	assert.True(t, (&guardSink{inner: &batchSink{inline: true}}).Inline())
	var _ sink.Inline = (*guardSink)(nil)
	var _ sink.BatchWriter = (*guardSink)(nil)

	frames := []*media.Frame{
		{Codec: media.CodecPCMA, PTS: 0, ClockRate: 8000, Payload: []byte{1, 2}},
		{Codec: media.CodecH264, PTS: 20 * time.Millisecond, ClockRate: 90000, Keyframe: true, Payload: []byte{3}},
	}
	inner := &batchSink{}
	g := &guardSink{inner: inner}
	n, err := g.WriteFrames(frames)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	require.Len(t, inner.batches, 1, "one batch")
	assert.Len(t, inner.batches[0], 2)
	assert.Empty(t, inner.single)

	g.muted.Store(true)
	n, err = g.WriteFrames(frames)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	require.Len(t, inner.single, 2, "muted: frame by frame")
	assert.Equal(t, []byte{0xD5, 0xD5}, inner.single[0].Payload, "A-law silence")
	assert.Equal(t, []byte{3}, inner.single[1].Payload, "video as it is")

	// A sink that writes no batches gets them frame by frame.
	plain := &guardSink{inner: nopSink{}}
	n, err = plain.WriteFrames(frames)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
}
