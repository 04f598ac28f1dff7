package main

import (
	_ "embed"
	"errors"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/media/rtph264"
)

// The committed clip (testdata/clip_640x360_25fps.h264) was made with:
//
//	ffmpeg -f lavfi -i "testsrc2=size=640x360:rate=25,noise=alls=12:allf=t" -t 6 \
//	  -c:v libx264 -profile:v baseline -level 3.0 -pix_fmt yuv420p -g 25 -bf 0 \
//	  -x264-params keyint=25:min-keyint=25:scenecut=0:repeat-headers=1:nal-hrd=vbr \
//	  -b:v 800k -maxrate 900k -bufsize 800k -f h264 clip_640x360_25fps.h264
//
// 150 frames (6 s at 25 fps, ≈810 kbit/s), an IDR every 25 frames with SPS
// and PPS in front of each. It loops seamlessly: it starts with an IDR.

// clipH264 is the committed clip, Annex B.
//
//go:embed testdata/clip_640x360_25fps.h264
var clipH264 []byte

const (
	clipFPS       = 25
	frameDuration = 1_000_000_000 / clipFPS // ns
	videoClock    = 90000
	audioClock    = 8000
	audioPacket   = 20_000_000 // ns of audio per RTP packet
	audioSamples  = audioClock / 50
	defaultMTU    = 1200 // largest RTP payload (FU-A fragments)
)

// markerUUID identifies the load tool's SEI (user_data_unregistered). Its
// bytes are all non-zero so that no emulation prevention is needed.
var markerUUID = [16]byte{'s', 'i', 'p', 's', 't', 'r', 'e', 'a', 'm', '-', 'l', 'o', 'a', 'd', 0x5a, 0xa5}

// markerLen is the length of the marker SEI NAL unit: header, payload type
// 5, payload size 24, UUID, 8 counter bytes, trailing bits.
const markerLen = 1 + 1 + 1 + 16 + 8 + 1

// clipFrame is one access unit, pre-packetized: RTP payloads without the
// RTP header, the marker SEI at payloads[marker].
type clipFrame struct {
	payloads [][]byte
	marker   int
	key      bool
}

// clip is the looped video: frames shared by every call, never modified.
type clip struct {
	frames  []clipFrame
	maxPkts int // most packets of one frame
	maxSize int // most payload bytes of one frame
}

// loadClip groups an Annex-B stream into access units (one slice per
// picture, as the committed clip has; further slices of a picture join it)
// and packetizes each with packetization-mode 1 (single NAL unit packets,
// FU-A above mtu), inserting the marker SEI before the first slice.
func loadClip(annexB []byte, mtu int) (*clip, error) {
	if mtu < 100 {
		return nil, errors.New("loadtest: mtu too small")
	}
	// One NAL unit per Encode: the marker SEI must stay a payload of its
	// own (putMarker rewrites it in place), never joined in a STAP-A.
	enc, err := rtph264.NewEncoder(rtph264.EncoderConfig{PayloadType: 96, MTU: mtu + 12}) // 12: the RTP header
	if err != nil {
		return nil, err
	}
	var (
		c       clip
		pending [][]byte
	)
	add := func(f *clipFrame, nal []byte) error {
		p, err := packetize(enc, nal)
		f.payloads = append(f.payloads, p...)
		return err
	}
	for _, nal := range testmedia.SplitAnnexB(annexB) {
		typ := nal[0] & 0x1f
		vcl := typ >= 1 && typ <= 5
		if !vcl {
			if typ == 9 { // access unit delimiter: not needed
				continue
			}
			pending = append(pending, nal)
			continue
		}
		firstSlice := len(nal) > 1 && nal[1]&0x80 != 0 // first_mb_in_slice == 0
		if !firstSlice && len(pending) == 0 && len(c.frames) > 0 {
			if err := add(&c.frames[len(c.frames)-1], nal); err != nil {
				return nil, err
			}
			continue
		}
		f := clipFrame{key: typ == 5}
		for _, p := range pending {
			if err := add(&f, p); err != nil {
				return nil, err
			}
		}
		pending = pending[:0]
		f.marker = len(f.payloads)
		f.payloads = append(f.payloads, newMarker())
		if err := add(&f, nal); err != nil {
			return nil, err
		}
		c.frames = append(c.frames, f)
	}
	if len(c.frames) == 0 || !c.frames[0].key {
		return nil, errors.New("loadtest: clip must start with an IDR picture")
	}
	for _, f := range c.frames {
		size := 0
		for _, p := range f.payloads {
			size += len(p)
		}
		c.maxPkts = max(c.maxPkts, len(f.payloads))
		c.maxSize = max(c.maxSize, size)
	}
	return &c, nil
}

// packetize returns the RTP payloads of one NAL unit, as media/rtph264
// makes them: itself when it fits in mtu bytes, FU-A fragments otherwise.
func packetize(enc *rtph264.Encoder, nal []byte) ([][]byte, error) {
	pkts, err := enc.Encode([][]byte{nal}, 0)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(pkts))
	for i, p := range pkts {
		out[i] = p.Payload
	}
	return out, nil
}

// newMarker returns a marker SEI with a zero counter (see putMarker).
func newMarker() []byte {
	b := make([]byte, markerLen)
	b[0] = 6  // SEI
	b[1] = 5  // user_data_unregistered
	b[2] = 24 // payload size
	copy(b[3:19], markerUUID[:])
	putMarker(b, 0, 0)
	b[27] = 0x80 // rbsp_stop_one_bit
	return b
}

// putMarker writes the call index (21 bits) and the frame number (35 bits)
// into a marker SEI, 7 bits per byte with the top bit set (no zero bytes).
func putMarker(b []byte, call int, frame int64) {
	v := uint64(call&0x1fffff)<<35 | uint64(frame)&(1<<35-1)
	for i := 7; i >= 0; i-- {
		b[19+i] = 0x80 | byte(v&0x7f)
		v >>= 7
	}
}

// parseMarker reads a marker SEI NAL unit; ok is false for any other NAL
// unit.
func parseMarker(nal []byte) (call int, frame int64, ok bool) {
	if len(nal) < 27 || nal[0]&0x1f != 6 || nal[1] != 5 || nal[2] != 24 || string(nal[3:19]) != string(markerUUID[:]) {
		return 0, 0, false
	}
	var v uint64
	for i := 0; i < 8; i++ {
		c := nal[19+i]
		if c&0x80 == 0 {
			return 0, 0, false
		}
		v = v<<7 | uint64(c&0x7f)
	}
	return int(v >> 35), int64(v & (1<<35 - 1)), true
}
