package rtph264

import (
	"bytes"

	"github.com/pion/rtp"
)

// Test NAL units: real-looking headers, synthetic bodies.
var (
	testSPS   = []byte{0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x01, 0x40, 0x7b, 0x20}
	testPPS   = []byte{0x68, 0xcb, 0x83, 0xcb, 0x20}
	testIDR   = append([]byte{0x65, 0x88, 0x84}, bytes.Repeat([]byte{0xaa}, 20)...)
	bigIDR    = append([]byte{0x65, 0x88, 0x80}, seqBytes(2500)...)
	testP     = append([]byte{0x41, 0x9a, 0x02}, bytes.Repeat([]byte{0x55}, 10)...)
	testSlice = append([]byte{0x41, 0x9a, 0x04}, bytes.Repeat([]byte{0x66}, 8)...)
)

func seqBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

const casePT, caseSSRC = 96, 0x9dbb7812

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

func u16(n int) []byte { return []byte{byte(n >> 8), byte(n)} }

// cases is the golden table: an access unit and the packets it becomes with
// a 1200-byte MTU, starting at sequence number 17645 and timestamp 2289528.
// It drives the encode test, the decode test and the fuzz seeds.
var cases = []struct {
	name  string
	nalus [][]byte
	pkts  []*rtp.Packet
}{
	{
		name:  "single NAL unit",
		nalus: [][]byte{testP},
		pkts:  []*rtp.Packet{mkpkt(17645, 2289528, true, testP)},
	},
	{
		name:  "STAP-A with SPS, PPS and IDR",
		nalus: [][]byte{testSPS, testPPS, testIDR},
		pkts: []*rtp.Packet{mkpkt(17645, 2289528, true, cat(
			[]byte{0x78}, // F=0, NRI=3 (highest of the three), type 24
			u16(len(testSPS)), testSPS,
			u16(len(testPPS)), testPPS,
			u16(len(testIDR)), testIDR,
		))},
	},
	{
		name:  "STAP-A for SPS+PPS, FU-A for a large IDR",
		nalus: [][]byte{testSPS, testPPS, bigIDR},
		pkts: []*rtp.Packet{
			mkpkt(17645, 2289528, false, cat([]byte{0x78}, u16(len(testSPS)), testSPS, u16(len(testPPS)), testPPS)),
			mkpkt(17646, 2289528, false, cat([]byte{0x7c, 0x85}, bigIDR[1:1187])),
			mkpkt(17647, 2289528, false, cat([]byte{0x7c, 0x05}, bigIDR[1187:2373])),
			mkpkt(17648, 2289528, true, cat([]byte{0x7c, 0x45}, bigIDR[2373:])),
		},
	},
	{
		name:  "two slices of one picture",
		nalus: [][]byte{testP, testSlice},
		pkts: []*rtp.Packet{mkpkt(17645, 2289528, true, cat(
			[]byte{0x58}, u16(len(testP)), testP, u16(len(testSlice)), testSlice,
		))},
	},
}
