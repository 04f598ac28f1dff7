package record_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media"
	"github.com/sipstream/sipstream/media/g711"
	"github.com/sipstream/sipstream/rtmp/flv"
	"github.com/sipstream/sipstream/sink/record"
)

func readFLV(t *testing.T, path string) (hasAudio, hasVideo bool, tags []flv.Tag) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	r, err := flv.NewReader(f)
	require.NoError(t, err)
	for {
		tag, err := r.ReadTag()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		require.NoError(t, err)
		tags = append(tags, tag)
	}
	return r.HasAudio(), r.HasVideo(), tags
}

func TestFLVH264AndPCMA(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.flv")
	r, err := record.NewFLV(path, record.Config{Audio: true, Video: true})
	require.NoError(t, err)
	start := 3 * time.Second
	for _, f := range interleave(clipFrames(start+200*time.Millisecond), toneFrames(media.CodecPCMA, start, 4*time.Second)) {
		require.NoError(t, r.WriteFrame(f))
	}
	assert.Equal(t, uint64(300), r.Stats().FramesWritten)
	require.NoError(t, r.Close(context.Background()))
	require.NoError(t, r.Close(context.Background()))

	ha, hv, tags := readFLV(t, path)
	assert.True(t, ha)
	assert.True(t, hv)
	require.Equal(t, uint8(flv.TagScript), tags[0].Type)
	name, _, err := flv.ParseScript(tags[0].Data)
	require.NoError(t, err)
	assert.Equal(t, "onMetaData", name)

	vf := clipFrames(0)
	var vi, seqHeaders int
	var pcm []int16
	var audioTS []uint32
	for _, tag := range tags[1:] {
		switch tag.Type {
		case flv.TagVideo:
			v, err := flv.ParseVideo(tag.Data)
			require.NoError(t, err)
			if v.SequenceHeader() {
				seqHeaders++
				cfg, err := flv.ParseAVCConfig(v.Payload)
				require.NoError(t, err)
				assert.Len(t, cfg.SPS, 1)
				continue
			}
			require.Less(t, vi, len(vf))
			assert.Equal(t, uint32(200+vi*40), tag.Timestamp)
			assert.Equal(t, vf[vi].Keyframe, v.Keyframe())
			assert.Equal(t, vf[vi].Payload, v.Payload)
			vi++
		case flv.TagAudio:
			a, err := flv.ParseAudio(tag.Data)
			require.NoError(t, err)
			assert.Equal(t, uint8(flv.SoundG711ALaw), a.Format)
			pcm = g711.DecodeALaw(pcm, a.Payload)
			audioTS = append(audioTS, tag.Timestamp)
		}
	}
	assert.Equal(t, 100, vi)
	assert.Equal(t, 1, seqHeaders, "the clip's SPS/PPS never change")
	require.Len(t, audioTS, 200)
	for i, ts := range audioTS {
		assert.Equal(t, uint32(i*20), ts)
	}
	assert.Greater(t, testmedia.Goertzel(pcm[:4000], 8000, 1000), 0.9)
}

func TestFLVOmitsTracksItCannotHold(t *testing.T) {
	path := filepath.Join(t.TempDir(), "opus.flv")
	r, err := record.NewFLV(path, record.Config{Audio: true, Video: true, StartWait: time.Second})
	require.NoError(t, err)
	for i, f := range clipFrames(0) {
		require.NoError(t, r.WriteFrame(f))
		ts := time.Duration(i) * 40 * time.Millisecond
		require.NoError(t, r.WriteFrame(&media.Frame{Codec: media.CodecOpus, PTS: ts, DTS: ts, Keyframe: true,
			ClockRate: 48000, Channels: 2, Payload: []byte{0xfc, 0xff, 0xfe}}))
	}
	require.NoError(t, r.Close(context.Background()))
	st := r.Stats()
	assert.Equal(t, uint64(100), st.FramesWritten)
	assert.Equal(t, uint64(100), st.FramesIgnored)
	ha, hv, _ := readFLV(t, path)
	assert.False(t, ha)
	assert.True(t, hv)
}

func TestFLVAACSequenceHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aac.flv")
	asc := []byte{0x11, 0x88} // AAC-LC 48 kHz mono
	r, err := record.NewFLV(path, record.Config{Audio: true, AudioSpecificConfig: asc})
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		ts := time.Duration(i) * 1024 * time.Second / 48000
		require.NoError(t, r.WriteFrame(&media.Frame{Codec: media.CodecAAC, PTS: ts, DTS: ts, Keyframe: true,
			ClockRate: 48000, Channels: 1, Payload: []byte{0x21, 0x10, byte(i)}}))
	}
	require.NoError(t, r.Close(context.Background()))
	_, _, tags := readFLV(t, path)
	require.Len(t, tags, 12)
	a, err := flv.ParseAudio(tags[1].Data)
	require.NoError(t, err)
	assert.True(t, a.SequenceHeader())
	assert.Equal(t, asc, a.Payload)
	a, err = flv.ParseAudio(tags[11].Data)
	require.NoError(t, err)
	assert.Equal(t, []byte{0x21, 0x10, 9}, a.Payload)
	assert.Equal(t, uint32(9*1024*1000/48000), tags[11].Timestamp)
}

func TestFLVSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	path, lastMs := killedRecording(t, "flv", 3500)
	_, _, tags := readFLV(t, path)
	var end uint32
	for _, tag := range tags {
		end = max(end, tag.Timestamp)
	}
	require.GreaterOrEqual(t, int64(end), lastMs-1100, "more than ~1 s lost (last written %d ms)", lastMs)
	t.Logf("killed after %d ms written; file plays to %d ms", lastMs, end)
}

// FLV counterpart of TestMKVShortCallWithoutVideoKeepsAudio.
func TestFLVShortCallWithoutVideoKeepsAudio(t *testing.T) {
	path := filepath.Join(t.TempDir(), "short.flv")
	r, err := record.NewFLV(path, record.Config{Audio: true, Video: true})
	require.NoError(t, err)
	for _, f := range toneFrames(media.CodecPCMA, 0, 3*time.Second) {
		require.NoError(t, r.WriteFrame(f))
	}
	require.NoError(t, r.Close(context.Background()))
	hasAudio, hasVideo, tags := readFLV(t, path)
	assert.True(t, hasAudio)
	assert.False(t, hasVideo)
	audio := 0
	for _, tag := range tags {
		if tag.Type == flv.TagAudio {
			audio++
		}
	}
	assert.Equal(t, 150, audio)
}
