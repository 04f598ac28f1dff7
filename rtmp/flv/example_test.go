package flv_test

import (
	"bytes"
	"fmt"

	"github.com/sipstream/sipstream/rtmp/flv"
)

// Example writes a small FLV file with an AVC sequence header, one frame
// and G.711 audio, then reads it back.
func Example() {
	sps := []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x01, 0x40, 0x7b, 0x20}
	pps := []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
	idr := []byte{0, 0, 0, 3, 0x65, 0x88, 0x84}

	var file bytes.Buffer
	w, _ := flv.NewWriter(&file, true, true)
	_ = w.WriteTag(flv.Tag{Type: flv.TagScript, Data: flv.OnMetaData(flv.Metadata{
		Width: 320, Height: 240, VideoCodecID: flv.CodecAVC, AudioCodecID: flv.SoundG711ALaw, AudioSampleRate: 8000})})
	seq, _ := flv.AVCSequenceHeader(sps, pps)
	_ = w.WriteTag(flv.Tag{Type: flv.TagVideo, Data: seq})
	_ = w.WriteTag(flv.Tag{Type: flv.TagVideo, Data: flv.AppendAVCFrame(nil, true, 0, idr)})
	_ = w.WriteTag(flv.Tag{Type: flv.TagAudio, Timestamp: 20, Data: flv.AppendG711Frame(nil, true, make([]byte, 160))})

	r, _ := flv.NewReader(&file)
	for {
		tag, err := r.ReadTag()
		if err != nil {
			break
		}
		switch tag.Type {
		case flv.TagVideo:
			v, _ := flv.ParseVideo(tag.Data)
			fmt.Println("video", tag.Timestamp, "key", v.Keyframe(), "config", v.SequenceHeader())
		case flv.TagAudio:
			a, _ := flv.ParseAudio(tag.Data)
			fmt.Println("audio", tag.Timestamp, "format", a.Format, "bytes", len(a.Payload))
		case flv.TagScript:
			name, _, _ := flv.ParseScript(tag.Data)
			fmt.Println("script", name)
		}
	}
	// Output:
	// script onMetaData
	// video 0 key true config true
	// video 0 key true config false
	// audio 20 format 7 bytes 160
}
