package rtmp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/rtmp/flv"
)

var errEOF = io.EOF

// publishClip sends metadata, the clip (25 fps) from dts0 on and, per
// video frame, two 20 ms G.711 A-law packets or one AAC frame.
func publishClip(t *testing.T, c *Client, dts0 time.Duration, audio string) {
	t.Helper()
	require.NoError(t, c.WriteMetadata(flv.Metadata{Width: 320, Height: 240, FrameRate: 25, VideoCodecID: flv.CodecAVC,
		AudioCodecID: flv.SoundG711ALaw, AudioSampleRate: 8000, AudioSampleSize: 16}))
	if audio == "aac" {
		require.NoError(t, c.WriteAACConfig([]byte{0x15, 0x88}))
	}
	for i, f := range clipFrames() {
		ts := dts0 + time.Duration(i)*40*time.Millisecond
		require.NoError(t, c.WriteH264(ts, ts, f.avcc, f.key))
		switch audio {
		case "g711":
			for k := 0; k < 2; k++ {
				require.NoError(t, c.WriteG711(ts+time.Duration(k)*20*time.Millisecond, true, bytes.Repeat([]byte{byte(i)}, 160)))
			}
		case "aac":
			require.NoError(t, c.WriteAAC(ts, []byte{0x21, byte(i)}))
		}
	}
}

// TestLoopbackPublish publishes the clip with G.711 to our Server and
// checks every tag that a subscriber receives: metadata, one AVC sequence
// header with the clip's SPS and PPS, all 100 pictures byte for byte with
// their timestamps, and all audio.
func TestLoopbackPublish(t *testing.T) {
	for _, dts0 := range []time.Duration{0, (0xffffff - 1500) * time.Millisecond} {
		t.Run(fmt.Sprintf("from %v", dts0), func(t *testing.T) {
			var published, unpublished []StreamInfo
			s, addr := startServer(t, ServerConfig{
				OnPublish:   func(i StreamInfo) error { published = append(published, i); return nil },
				OnUnpublish: func(i StreamInfo) { unpublished = append(unpublished, i) },
			})
			ctx := testCtx(t)
			sub := s.Subscribe("live", "key", 4096)
			defer sub.Close()

			c, err := Dial(ctx, "rtmp://"+addr+"/live/key?token=abc", ClientConfig{})
			require.NoError(t, err)
			require.Equal(t, "rtmp publisher rtmp://"+addr+"/live/xxxxx", c.String())
			publishClip(t, c, dts0, "g711")
			st := c.Stats()
			require.Equal(t, uint64(100), st.VideoFrames)
			require.Equal(t, uint64(200), st.AudioFrames)
			require.Len(t, s.Streams(), 1)
			require.NoError(t, c.Close())
			require.NoError(t, c.Close())
			<-c.Done()
			require.ErrorIs(t, c.Err(), ErrClosed)
			require.ErrorIs(t, c.WriteG711(0, true, []byte{1}), ErrClosed)

			tags := readTags(t, ctx, sub)
			require.Len(t, published, 1)
			require.Equal(t, StreamInfo{App: "live", Name: "key", Query: "token=abc", TcURL: "rtmp://" + addr + "/live",
				RemoteAddr: published[0].RemoteAddr}, published[0])
			require.Len(t, unpublished, 1)

			frames := clipFrames()
			sps, pps := clipParamSets(t)
			var video, audio []flv.Tag
			require.Equal(t, uint8(flv.TagScript), tags[0].Type)
			name, vals, err := flv.ParseScript(tags[0].Data)
			require.NoError(t, err)
			require.Equal(t, "onMetaData", name)
			require.Len(t, vals, 1)
			for _, tag := range tags[1:] {
				switch tag.Type {
				case flv.TagVideo:
					video = append(video, tag)
				case flv.TagAudio:
					audio = append(audio, tag)
				}
			}
			require.Len(t, video, 101)
			v, err := flv.ParseVideo(video[0].Data)
			require.NoError(t, err)
			require.True(t, v.SequenceHeader())
			cfg, err := flv.ParseAVCConfig(v.Payload)
			require.NoError(t, err)
			require.Equal(t, [][]byte{sps}, cfg.SPS)
			require.Equal(t, [][]byte{pps}, cfg.PPS)
			base := uint32(dts0 / time.Millisecond)
			for i, tag := range video[1:] {
				v, err := flv.ParseVideo(tag.Data)
				require.NoError(t, err)
				require.Equal(t, frames[i].key, v.Keyframe(), "frame %d", i)
				require.Equal(t, frames[i].avcc, v.Payload, "frame %d", i)
				require.Equal(t, base+uint32(i*40), tag.Timestamp, "frame %d", i)
			}
			require.Len(t, audio, 200)
			for i, tag := range audio {
				require.Equal(t, base+uint32(i*20), tag.Timestamp, "audio %d", i)
				a, err := flv.ParseAudio(tag.Data)
				require.NoError(t, err)
				require.Equal(t, uint8(flv.SoundG711ALaw), a.Format)
				require.Equal(t, bytes.Repeat([]byte{byte(i / 2)}, 160), a.Payload)
			}
			require.Zero(t, sub.Dropped())
		})
	}
}

// TestSequenceHeaderResent changes the SPS mid-stream: a new sequence
// header must precede the next keyframe, and only then.
func TestSequenceHeaderResent(t *testing.T) {
	s, addr := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	sub := s.Subscribe("app", "s", 0)
	defer sub.Close()
	c, err := Dial(ctx, "rtmp://"+addr+"/app/s", ClientConfig{})
	require.NoError(t, err)
	sps, pps := clipParamSets(t)
	sps2 := append(append([]byte(nil), sps...), 0x80)
	au := func(nalus ...[]byte) []byte {
		var b []byte
		for _, n := range nalus {
			b = append(b, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
			b = append(b, n...)
		}
		return b
	}
	idr, p := []byte{0x65, 0x88}, []byte{0x41, 0x9a}
	require.NoError(t, c.WriteH264(0, 0, au(p), false))                              // dropped: no config yet
	require.NoError(t, c.WriteH264(40*time.Millisecond, 0, au(sps, pps, idr), true)) // config + key, cts 40
	require.NoError(t, c.WriteH264(40*time.Millisecond, 40*time.Millisecond, au(p), false))
	require.NoError(t, c.WriteH264(80*time.Millisecond, 80*time.Millisecond, au(sps, pps, idr), true)) // same config: not resent
	require.NoError(t, c.WriteH264(120*time.Millisecond, 120*time.Millisecond, au(sps2, pps, idr), true))
	require.Equal(t, uint64(1), c.Stats().VideoDropped)
	require.NoError(t, c.Close())
	tags := readTags(t, ctx, sub)
	var kinds []string
	for _, tag := range tags {
		v, err := flv.ParseVideo(tag.Data)
		require.NoError(t, err)
		k := fmt.Sprintf("%d:", tag.Timestamp)
		switch {
		case v.SequenceHeader():
			cfg, err := flv.ParseAVCConfig(v.Payload)
			require.NoError(t, err)
			k += fmt.Sprintf("config(%d)", len(cfg.SPS[0]))
		case v.Keyframe():
			k += fmt.Sprintf("key(cts %d)", v.CompositionTime)
		default:
			k += "inter"
		}
		kinds = append(kinds, k)
	}
	n := len(sps)
	require.Equal(t, []string{
		fmt.Sprintf("0:config(%d)", n), "0:key(cts 40)", "40:inter", "80:key(cts 0)",
		fmt.Sprintf("120:config(%d)", n+1), "120:key(cts 0)",
	}, kinds)
}

func TestAACNeedsConfig(t *testing.T) {
	s, addr := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	sub := s.Subscribe("app", "s", 0)
	defer sub.Close()
	c, err := Dial(ctx, "rtmp://"+addr+"/app/s", ClientConfig{})
	require.NoError(t, err)
	defer c.Close()
	require.ErrorIs(t, c.WriteAAC(0, []byte{1}), ErrNoConfig)
	require.NoError(t, c.WriteAACConfig([]byte{0x11, 0x90}))
	require.NoError(t, c.WriteAACConfig([]byte{0x11, 0x90})) // unchanged: not resent
	require.NoError(t, c.WriteAAC(21*time.Millisecond, []byte{0x21, 0x00}))
	require.NoError(t, c.WriteSpeex(40*time.Millisecond, []byte{0x33}))
	require.NoError(t, c.WriteTag(flv.Tag{Type: flv.TagAudio, Timestamp: 60, Data: flv.AppendG711Frame(nil, false, []byte{0xff})}))
	require.Error(t, c.WriteTag(flv.Tag{Type: 3}))
	require.NoError(t, c.Close())
	tags := readTags(t, ctx, sub)
	require.Len(t, tags, 4)
	require.Equal(t, flv.AACSequenceHeader([]byte{0x11, 0x90}), tags[0].Data)
	require.Equal(t, flv.AppendAACFrame(nil, []byte{0x21, 0x00}), tags[1].Data)
	require.Equal(t, uint32(21), tags[1].Timestamp)
	require.Equal(t, flv.AppendSpeexFrame(nil, []byte{0x33}), tags[2].Data)
	require.Equal(t, flv.AppendG711Frame(nil, false, []byte{0xff}), tags[3].Data)
}

// TestLateSubscriber joins a live stream: it must get the metadata and
// sequence headers first, then video from a keyframe on.
func TestLateSubscriber(t *testing.T) {
	s, addr := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	early := s.Subscribe("live", "x", 4096)
	defer early.Close()
	c, err := Dial(ctx, "rtmp://"+addr+"/live/x", ClientConfig{})
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.WriteMetadata(flv.Metadata{Width: 320}))
	require.NoError(t, c.WriteAACConfig([]byte{0x11, 0x90}))
	frames := clipFrames()
	for i, f := range frames[:30] {
		ts := time.Duration(i) * 40 * time.Millisecond
		require.NoError(t, c.WriteH264(ts, ts, f.avcc, f.key))
	}
	// Wait until the server has relayed everything so far.
	for n := 0; n < 33; n++ {
		_, err := early.ReadTag(ctx)
		require.NoError(t, err)
	}
	late := s.Subscribe("live", "x", 4096)
	defer late.Close()
	for i, f := range frames[30:] {
		ts := time.Duration(30+i) * 40 * time.Millisecond
		require.NoError(t, c.WriteH264(ts, ts, f.avcc, f.key))
	}
	require.NoError(t, c.Close())
	tags := readTags(t, ctx, late)
	require.Equal(t, uint8(flv.TagScript), tags[0].Type)
	v, err := flv.ParseVideo(tags[1].Data)
	require.NoError(t, err)
	require.True(t, v.SequenceHeader())
	a, err := flv.ParseAudio(tags[2].Data)
	require.NoError(t, err)
	require.True(t, a.SequenceHeader())
	v, err = flv.ParseVideo(tags[3].Data)
	require.NoError(t, err)
	require.True(t, v.Keyframe())
	require.Equal(t, uint32(50*40), tags[3].Timestamp, "first picture is the IDR at frame 50")
	require.Len(t, tags, 3+50)
}

func TestPublishRefused(t *testing.T) {
	_, addr := startServer(t, ServerConfig{OnPublish: func(i StreamInfo) error {
		if i.Name != "good" {
			return fmt.Errorf("bad key")
		}
		return nil
	}})
	ctx := testCtx(t)
	_, err := Dial(ctx, "rtmp://"+addr+"/live/WRONGKEY", ClientConfig{})
	require.ErrorIs(t, err, ErrBadName)
	require.ErrorIs(t, err, ErrRejected)
	var pe *PublishError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "publish", pe.Stage)
	require.NotContains(t, err.Error(), "WRONGKEY")

	c, err := Dial(ctx, "rtmp://"+addr+"/live/good", ClientConfig{})
	require.NoError(t, err)
	defer c.Close()
	_, err = Dial(ctx, "rtmp://"+addr+"/live/good", ClientConfig{})
	require.ErrorIs(t, err, ErrBadName, "second publisher of a live stream")
}

func TestDialErrors(t *testing.T) {
	ctx := testCtx(t)
	_, err := Dial(ctx, "rtmp://127.0.0.1:1/live", ClientConfig{})
	require.ErrorIs(t, err, ErrInvalidURL)
	_, err = Dial(ctx, "rtmp://127.0.0.1:1/live/k", ClientConfig{WriteTimeout: -1})
	require.Error(t, err)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = Dial(cctx, "rtmp://127.0.0.1:1/live/k", ClientConfig{})
	require.Error(t, err)
}

// TestG711Encoders checks the test's own G.711 encoders on known values
// (ITU-T G.711: A-law 0 → 0xd5, µ-law 0 → 0xff, full scale → 0xaa/0x80).
func TestG711Encoders(t *testing.T) {
	require.Equal(t, byte(0xd5), alaw(0))
	require.Equal(t, byte(0xaa), alaw(32767))
	require.Equal(t, byte(0x2a), alaw(-32768))
	require.Equal(t, byte(0xff), ulaw(0))
	require.Equal(t, byte(0x80), ulaw(32767))
	require.Equal(t, byte(0x00), ulaw(-32768))
}

// TestSlowSubscriberDrops: a subscriber that does not read loses tags
// (counted) instead of slowing the publisher, and its video resumes at a
// keyframe, never in the middle of a GOP.
func TestSlowSubscriberDrops(t *testing.T) {
	s, addr := startServer(t, ServerConfig{})
	ctx := testCtx(t)
	slow := s.Subscribe("live", "d", 8)
	defer slow.Close()
	all := s.Subscribe("live", "d", 4096)
	defer all.Close()
	c, err := Dial(ctx, "rtmp://"+addr+"/live/d", ClientConfig{})
	require.NoError(t, err)
	publishClip(t, c, 0, "")
	require.NoError(t, c.Close())
	require.Len(t, readTags(t, ctx, all), 102) // the reference: nothing lost
	tags := readTags(t, ctx, slow)
	require.NotZero(t, slow.Dropped())
	require.Equal(t, 102, len(tags)+int(slow.Dropped()), "every tag is either delivered or counted")
	// Every run of pictures after a gap starts with a keyframe.
	prev := -1
	for _, tag := range tags {
		v, err := flv.ParseVideo(tag.Data)
		if err != nil || tag.Type != flv.TagVideo || v.SequenceHeader() {
			continue
		}
		i := int(tag.Timestamp / 40)
		if i != prev+1 {
			require.True(t, v.Keyframe(), "picture %d follows %d but is not a keyframe", i, prev)
		}
		prev = i
	}
}
