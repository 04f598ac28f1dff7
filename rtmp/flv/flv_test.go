package flv

import (
	"bytes"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bluenviron/gortmplib/pkg/amf0"
)

var (
	testSPS = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x01, 0x40, 0x7b, 0x20}
	testPPS = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
)

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// tagCases is the golden table of tags and their file encoding (tag header,
// body, PreviousTagSize). It drives the writer and reader tests and the
// fuzz seeds.
var tagCases = []struct {
	name string
	tag  Tag
	wire []byte
}{
	{"audio", Tag{Type: TagAudio, Timestamp: 0x123456, Data: []byte{0x72, 1, 2}},
		[]byte{8, 0, 0, 3, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0x72, 1, 2, 0, 0, 0, 14}},
	{"extended timestamp", Tag{Type: TagVideo, Timestamp: 0x01000005, Data: []byte{0x27, 1, 0, 0, 0}},
		[]byte{9, 0, 0, 5, 0, 0, 5, 1, 0, 0, 0, 0x27, 1, 0, 0, 0, 0, 0, 0, 16}},
	{"empty script", Tag{Type: TagScript, Timestamp: 0xffffffff, Data: []byte{}},
		[]byte{18, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 11}},
}

var fileHeader = []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}

func TestWriter(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, true, true)
	require.NoError(t, err)
	want := append([]byte(nil), fileHeader...)
	for _, c := range tagCases {
		require.NoError(t, w.WriteTag(c.tag))
		want = append(want, c.wire...)
		b, err := AppendTag(nil, c.tag)
		require.NoError(t, err)
		require.Equal(t, c.wire, b, c.name)
	}
	require.Equal(t, want, buf.Bytes())
	require.ErrorIs(t, w.WriteTag(Tag{Type: TagVideo, Data: make([]byte, MaxDataSize+1)}), ErrTooLarge)
}

func TestReader(t *testing.T) {
	in := append([]byte(nil), fileHeader...)
	for _, c := range tagCases {
		in = append(in, c.wire...)
	}
	r, err := NewReader(bytes.NewReader(in))
	require.NoError(t, err)
	require.True(t, r.HasAudio())
	require.True(t, r.HasVideo())
	for _, c := range tagCases {
		tag, err := r.ReadTag()
		require.NoError(t, err)
		require.Equal(t, c.tag, tag, c.name)
	}
	_, err = r.ReadTag()
	require.Equal(t, io.EOF, err)
}

func TestReaderErrors(t *testing.T) {
	_, err := NewReader(bytes.NewReader([]byte("GIF89a....")))
	require.ErrorIs(t, err, ErrNotFLV)
	_, err = NewReader(bytes.NewReader([]byte("FLV")))
	require.ErrorIs(t, err, ErrNotFLV)

	truncated := cat(fileHeader, tagCases[0].wire[:13])
	r, err := NewReader(bytes.NewReader(truncated))
	require.NoError(t, err)
	_, err = r.ReadTag()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)

	r, err = NewReader(bytes.NewReader(cat(fileHeader, []byte{9, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0})))
	require.NoError(t, err)
	r.MaxDataSize = 100
	_, err = r.ReadTag()
	require.ErrorIs(t, err, ErrTooLarge)
}

// TestReaderHostileSize checks that a 16 MiB DataSize on a short input
// fails without allocating 16 MiB.
func TestReaderHostileSize(t *testing.T) {
	in := cat(fileHeader, []byte{9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 100))
	before := memTotal()
	r, err := NewReader(bytes.NewReader(in))
	require.NoError(t, err)
	_, err = r.ReadTag()
	require.ErrorIs(t, err, io.ErrUnexpectedEOF)
	used := memTotal() - before
	require.Less(t, used, uint64(1<<20), "allocated %d bytes for a 100-byte body", used)
}

func TestAVCSequenceHeader(t *testing.T) {
	b, err := AVCSequenceHeader(testSPS, testPPS)
	require.NoError(t, err)
	want := cat([]byte{0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 9}, testSPS, []byte{1, 0, 5}, testPPS)
	require.Equal(t, want, b)

	v, err := ParseVideo(b)
	require.NoError(t, err)
	require.True(t, v.SequenceHeader())
	require.True(t, v.Keyframe())
	cfg, err := ParseAVCConfig(v.Payload)
	require.NoError(t, err)
	require.Equal(t, 4, cfg.LengthSize)
	require.Equal(t, [][]byte{testSPS}, cfg.SPS)
	require.Equal(t, [][]byte{testPPS}, cfg.PPS)
	require.Equal(t, uint8(0x1e), cfg.Level)

	_, err = AVCSequenceHeader(testPPS, testPPS)
	require.ErrorIs(t, err, ErrInvalid)
	_, err = AVCSequenceHeader(testSPS, testSPS)
	require.ErrorIs(t, err, ErrInvalid)

	high := append([]byte{0x67, 100, 0, 0x28}, 0xaa)
	b, err = AVCSequenceHeader(high, testPPS)
	require.NoError(t, err)
	require.Equal(t, []byte{0xfd, 0xf8, 0xf8, 0}, b[len(b)-4:])
}

func TestBodies(t *testing.T) {
	avcc := []byte{0, 0, 0, 2, 0x41, 0x9a}
	for _, c := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"AVC key", AppendAVCFrame(nil, true, 40, avcc), cat([]byte{0x17, 1, 0, 0, 40}, avcc)},
		{"AVC inter negative cts", AppendAVCFrame(nil, false, -2, avcc), cat([]byte{0x27, 1, 0xff, 0xff, 0xfe}, avcc)},
		{"AVC end", AVCEndOfSequence(), []byte{0x17, 2, 0, 0, 0}},
		{"AAC config", AACSequenceHeader([]byte{0x11, 0x90}), []byte{0xaf, 0, 0x11, 0x90}},
		{"AAC raw", AppendAACFrame(nil, []byte{0x21, 0x10}), []byte{0xaf, 1, 0x21, 0x10}},
		{"A-law", AppendG711Frame(nil, true, []byte{0xd5, 0xd5}), []byte{0x72, 0xd5, 0xd5}},
		{"µ-law", AppendG711Frame(nil, false, []byte{0xff}), []byte{0x82, 0xff}},
		{"Speex", AppendSpeexFrame(nil, []byte{1, 2}), []byte{0xb2, 1, 2}},
		{"HEVC config", HEVCSequenceHeader([]byte{1}), []byte{0x90, 'h', 'v', 'c', '1', 1}},
		{"HEVC frame", AppendHEVCFrame(nil, false, 0, []byte{9}), []byte{0xa3, 'h', 'v', 'c', '1', 9}},
		{"HEVC frame cts", AppendHEVCFrame(nil, true, 1, []byte{9}), []byte{0x91, 'h', 'v', 'c', '1', 0, 0, 1, 9}},
		{"Opus head", OpusSequenceHeader([]byte("OpusHead")), cat([]byte{0x90, 'O', 'p', 'u', 's'}, []byte("OpusHead"))},
		{"Opus frame", AppendOpusFrame(nil, []byte{0xfc}), []byte{0x91, 'O', 'p', 'u', 's', 0xfc}},
	} {
		require.Equal(t, c.want, c.got, c.name)
	}
}

func TestParseVideo(t *testing.T) {
	v, err := ParseVideo(AppendAVCFrame(nil, false, -2, []byte{0, 0, 0, 1, 0x41}))
	require.NoError(t, err)
	require.Equal(t, Video{FrameType: FrameInter, Codec: CodecAVC, PacketType: AVCNALUPacket,
		CompositionTime: -2, Payload: []byte{0, 0, 0, 1, 0x41}}, v)
	v, err = ParseVideo(AppendHEVCFrame(nil, true, 33, []byte{7}))
	require.NoError(t, err)
	require.True(t, v.Enhanced)
	require.Equal(t, uint32(FourCCHEVC), v.FourCC)
	require.Equal(t, int32(33), v.CompositionTime)
	require.Equal(t, []byte{7}, v.Payload)
	require.True(t, v.Keyframe())
	for _, bad := range [][]byte{nil, {0x17, 1}, {0x91, 'h', 'v'}, {0x91, 'h', 'v', 'c', '1', 0}} {
		_, err := ParseVideo(bad)
		require.ErrorIs(t, err, ErrInvalid, "%x", bad)
	}
}

func TestParseAudio(t *testing.T) {
	a, err := ParseAudio(AACSequenceHeader([]byte{0x11, 0x90}))
	require.NoError(t, err)
	require.True(t, a.SequenceHeader())
	require.Equal(t, Audio{Format: SoundAAC, Rate: 3, Bits16: true, Stereo: true, Payload: []byte{0x11, 0x90}}, a)
	a, err = ParseAudio(AppendG711Frame(nil, false, []byte{1}))
	require.NoError(t, err)
	require.Equal(t, Audio{Format: SoundG711MuLaw, Bits16: true, Payload: []byte{1}}, a)
	a, err = ParseAudio(AppendOpusFrame(nil, []byte{2}))
	require.NoError(t, err)
	require.Equal(t, uint32(FourCCOpus), a.FourCC)
	require.Equal(t, uint8(PacketTypeCodedFrames), a.PacketType)
	for _, bad := range [][]byte{nil, {0xaf}, {0x91, 'O'}} {
		_, err := ParseAudio(bad)
		require.ErrorIs(t, err, ErrInvalid, "%x", bad)
	}
}

func TestMetadata(t *testing.T) {
	md := Metadata{Width: 320, Height: 240, FrameRate: 25, VideoCodecID: CodecAVC,
		AudioCodecID: SoundAAC, AudioSampleRate: 48000, AudioSampleSize: 16, Encoder: "sipstream",
		Extra: []amf0.ObjectEntry{{Key: "x", Value: "y"}}}
	body := OnMetaData(md)
	name, vals, err := ParseScript(body)
	require.NoError(t, err)
	require.Equal(t, "onMetaData", name)
	require.Len(t, vals, 1)
	require.Equal(t, amf0.ECMAArray{
		{Key: "width", Value: 320.0}, {Key: "height", Value: 240.0}, {Key: "framerate", Value: 25.0},
		{Key: "videocodecid", Value: 7.0}, {Key: "audiocodecid", Value: 10.0},
		{Key: "audiosamplerate", Value: 48000.0}, {Key: "audiosamplesize", Value: 16.0},
		{Key: "stereo", Value: false}, {Key: "encoder", Value: "sipstream"}, {Key: "x", Value: "y"},
	}, vals[0])

	sdf := SetDataFrame(md)
	require.Equal(t, body, StripSetDataFrame(sdf))
	name, _, err = ParseScript(sdf)
	require.NoError(t, err)
	require.Equal(t, "onMetaData", name)
	require.Equal(t, body, StripSetDataFrame(body))

	_, _, err = ParseScript([]byte{0x05})
	require.ErrorIs(t, err, ErrInvalid)
	_, _, err = ParseScript([]byte{0x02, 0, 9})
	require.Error(t, err)
}

func TestWriterAllocs(t *testing.T) {
	w, err := NewWriter(io.Discard, true, true)
	require.NoError(t, err)
	tag := Tag{Type: TagVideo, Timestamp: 40, Data: make([]byte, 1000)}
	require.Zero(t, testing.AllocsPerRun(100, func() { _ = w.WriteTag(tag) }))
	buf := make([]byte, 0, 2000)
	au := make([]byte, 1000)
	require.Zero(t, testing.AllocsPerRun(100, func() { buf = AppendAVCFrame(buf[:0], true, 0, au) }))
}
