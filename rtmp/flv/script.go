package flv

import (
	"fmt"

	"github.com/bluenviron/gortmplib/pkg/amf0"
)

// Metadata is what an onMetaData script tag says about a stream. Zero
// fields are left out of the encoding.
type Metadata struct {
	// Duration is the length in seconds; zero (live) is omitted.
	Duration float64
	// Width and Height are the picture size in pixels; zero omitted.
	Width, Height int
	// FrameRate is frames per second; zero omitted.
	FrameRate float64
	// VideoCodecID is the FLV video CodecID (CodecAVC); zero means no
	// video fields are written.
	VideoCodecID int
	// VideoDataRate is the video bitrate in kbit/s; zero omitted.
	VideoDataRate float64
	// AudioCodecID is the FLV SoundFormat (SoundAAC, SoundG711ALaw, ...);
	// zero means no audio fields are written.
	AudioCodecID int
	// AudioSampleRate is in Hz, AudioSampleSize in bits; zero omitted.
	AudioSampleRate, AudioSampleSize int
	// Stereo is written whenever audio fields are.
	Stereo bool
	// AudioDataRate is the audio bitrate in kbit/s; zero omitted.
	AudioDataRate float64
	// Encoder names the software; empty omitted.
	Encoder string
	// Extra properties are appended as they are.
	Extra []amf0.ObjectEntry
}

// Array returns the metadata as the AMF0 ECMA array onMetaData carries.
func (md *Metadata) Array() amf0.ECMAArray {
	a := amf0.ECMAArray{}
	num := func(k string, v float64) {
		if v != 0 {
			a = append(a, amf0.ObjectEntry{Key: k, Value: v})
		}
	}
	num("duration", md.Duration)
	if md.VideoCodecID != 0 {
		num("width", float64(md.Width))
		num("height", float64(md.Height))
		num("framerate", md.FrameRate)
		num("videocodecid", float64(md.VideoCodecID))
		num("videodatarate", md.VideoDataRate)
	}
	if md.AudioCodecID != 0 {
		num("audiocodecid", float64(md.AudioCodecID))
		num("audiosamplerate", float64(md.AudioSampleRate))
		num("audiosamplesize", float64(md.AudioSampleSize))
		a = append(a, amf0.ObjectEntry{Key: "stereo", Value: md.Stereo})
		num("audiodatarate", md.AudioDataRate)
	}
	if md.Encoder != "" {
		a = append(a, amf0.ObjectEntry{Key: "encoder", Value: md.Encoder})
	}
	return append(a, md.Extra...)
}

// OnMetaData returns the script tag body "onMetaData" + ECMA array, as an
// FLV file stores it.
func OnMetaData(md Metadata) []byte {
	b, err := amf0.Data{"onMetaData", md.Array()}.Marshal()
	if err != nil { // only Extra can hold an unencodable value
		b, _ = amf0.Data{"onMetaData", amf0.ECMAArray{}}.Marshal()
	}
	return b
}

// SetDataFrame returns the data message body "@setDataFrame" +
// "onMetaData" + ECMA array that an RTMP publisher sends; servers store it
// as onMetaData (see StripSetDataFrame).
func SetDataFrame(md Metadata) []byte {
	return append([]byte("\x02\x00\x0d@setDataFrame"), OnMetaData(md)...)
}

// StripSetDataFrame returns body without a leading "@setDataFrame" string,
// turning what a publisher sends into what an FLV file or a player gets. A
// body without it is returned as is.
func StripSetDataFrame(body []byte) []byte {
	const prefix = "\x02\x00\x0d@setDataFrame"
	if len(body) >= len(prefix) && string(body[:len(prefix)]) == prefix {
		return body[len(prefix):]
	}
	return body
}

// maxScript bounds a script body ParseScript decodes: gortmplib's AMF0
// decoder has no nesting limit, and metadata is a few hundred bytes.
const maxScript = 64 << 10

// ParseScript decodes a script tag body into its name (the first value,
// "onMetaData" for metadata) and the values that follow (AMF0 values as
// gortmplib's amf0 package gives them).
func ParseScript(data []byte) (name string, values []any, err error) {
	data = StripSetDataFrame(data)
	if len(data) > maxScript {
		return "", nil, fmt.Errorf("%w: script tag of %d bytes", ErrInvalid, len(data))
	}
	vals, err := amf0.Unmarshal(data)
	if err != nil {
		return "", nil, fmt.Errorf("flv: script data: %w", err)
	}
	if len(vals) == 0 {
		return "", nil, fmt.Errorf("%w: empty script tag", ErrInvalid)
	}
	name, ok := vals[0].(string)
	if !ok {
		return "", nil, fmt.Errorf("%w: script tag does not start with a name", ErrInvalid)
	}
	return name, vals[1:], nil
}
