package flv

import (
	"bytes"
	"runtime"
	"testing"
)

func memTotal() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// FuzzReader reads arbitrary files tag by tag and parses each tag body
// with the parser for its type. Invariants: no panic; a tag that was read
// re-encodes to the bytes it came from.
func FuzzReader(f *testing.F) {
	for _, c := range tagCases {
		f.Add(append(append([]byte(nil), fileHeader...), c.wire...))
	}
	sh, _ := AVCSequenceHeader(testSPS, testPPS)
	for _, body := range [][]byte{sh, AACSequenceHeader([]byte{0x11, 0x90}), OnMetaData(Metadata{Width: 1, VideoCodecID: 7}),
		AppendHEVCFrame(nil, true, 3, []byte{1}), AppendOpusFrame(nil, []byte{1})} {
		w, _ := AppendTag(append([]byte(nil), fileHeader...), Tag{Type: TagVideo, Data: body})
		f.Add(w)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := NewReader(bytes.NewReader(in))
		if err != nil {
			return
		}
		r.MaxDataSize = 1 << 16
		for {
			tag, err := r.ReadTag()
			if err != nil {
				return
			}
			if _, err := AppendTag(nil, tag); err != nil {
				t.Fatal(err)
			}
			switch tag.Type {
			case TagVideo:
				if v, err := ParseVideo(tag.Data); err == nil && v.SequenceHeader() && !v.Enhanced {
					_, _ = ParseAVCConfig(v.Payload)
				}
			case TagAudio:
				_, _ = ParseAudio(tag.Data)
			case TagScript:
				_, _, _ = ParseScript(tag.Data)
			}
		}
	})
}
