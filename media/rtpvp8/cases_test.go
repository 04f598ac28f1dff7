package rtpvp8

import (
	"bytes"

	"github.com/pion/rtp"
)

// Test frames: real VP8 frame tags (RFC 6386 §9.1), synthetic bodies.
var (
	// key frame: P=0, show_frame, then the start code and 176x144.
	testKey = append([]byte{0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2a, 0xb0, 0x00, 0x90, 0x00}, seqBytes(40)...)
	// a large key frame split over three packets with a 100-byte MTU
	bigKey = append([]byte{0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2a, 0xb0, 0x00, 0x90, 0x00}, seqBytes(200)...)
	// inter frame: P=1
	testInter = append([]byte{0x31, 0x02, 0x00}, bytes.Repeat([]byte{0x55}, 12)...)
)

func seqBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

const casePT, caseSSRC = 100, 0x2f0a41c3

func mkpkt(seq uint16, ts uint32, marker bool, payload []byte) *rtp.Packet {
	return &rtp.Packet{
		Header: rtp.Header{
			Version: 2, Marker: marker, PayloadType: casePT,
			SequenceNumber: seq, Timestamp: ts, SSRC: caseSSRC,
		},
		Payload: payload,
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// cases is the golden table: a frame, the encoder settings and the packets
// it becomes, starting at sequence number 65534 (so that the sequence
// wraps) and timestamp 2289528. It drives the encode test, the decode test
// and the fuzz seeds.
var cases = []struct {
	name  string
	cfg   EncoderConfig
	frame []byte
	pkts  []*rtp.Packet
}{
	{
		name:  "key frame in one packet",
		frame: testKey,
		pkts:  []*rtp.Packet{mkpkt(65534, 2289528, true, cat([]byte{0x10}, testKey))},
	},
	{
		name:  "inter frame in one packet",
		frame: testInter,
		pkts:  []*rtp.Packet{mkpkt(65534, 2289528, true, cat([]byte{0x10}, testInter))},
	},
	{
		name:  "key frame over three packets",
		cfg:   EncoderConfig{MTU: 100},
		frame: bigKey,
		pkts: []*rtp.Packet{
			mkpkt(65534, 2289528, false, cat([]byte{0x10}, bigKey[:87])),
			mkpkt(65535, 2289528, false, cat([]byte{0x00}, bigKey[87:174])),
			mkpkt(0, 2289528, true, cat([]byte{0x00}, bigKey[174:])),
		},
	},
	{
		name:  "15-bit PictureID",
		cfg:   EncoderConfig{MTU: 100, PictureID: true, InitialPictureID: 0x1234},
		frame: bigKey,
		pkts: []*rtp.Packet{
			mkpkt(65534, 2289528, false, cat([]byte{0x90, 0x80, 0x92, 0x34}, bigKey[:84])),
			mkpkt(65535, 2289528, false, cat([]byte{0x80, 0x80, 0x92, 0x34}, bigKey[84:168])),
			mkpkt(0, 2289528, true, cat([]byte{0x80, 0x80, 0x92, 0x34}, bigKey[168:])),
		},
	},
}

// descCases are payload descriptors and their wire form (RFC 7741 §4.2).
var descCases = []struct {
	name string
	desc Descriptor
	wire []byte
}{
	{"minimal start", Descriptor{Start: true}, []byte{0x10}},
	{"non-reference, partition 3", Descriptor{NonReference: true, PartitionID: 3}, []byte{0x23}},
	{"7-bit PictureID", Descriptor{Start: true, HasPictureID: true, PictureID: 0x45}, []byte{0x90, 0x80, 0x45}},
	{"15-bit PictureID", Descriptor{Start: true, HasPictureID: true, PictureID16Bit: true, PictureID: 0x7abc}, []byte{0x90, 0x80, 0xfa, 0xbc}},
	{"all extensions", Descriptor{
		Start: true, HasPictureID: true, PictureID16Bit: true, PictureID: 0x0102,
		HasTL0PICIDX: true, TL0PICIDX: 0x33, HasTID: true, TID: 2, LayerSync: true, HasKEYIDX: true, KEYIDX: 0x11,
	}, []byte{0x90, 0xf0, 0x81, 0x02, 0x33, 0xb1}},
	{"TID only", Descriptor{HasTID: true, TID: 1}, []byte{0x80, 0x20, 0x40}},
	{"KEYIDX only", Descriptor{HasKEYIDX: true, KEYIDX: 7}, []byte{0x80, 0x10, 0x07}},
}
