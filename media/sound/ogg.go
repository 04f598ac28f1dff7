package sound

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// An Ogg page reader of our own: pion/webrtc's oggreader returns a page's
// body with its lacing values dropped, so a page holding several packets
// (ffmpeg puts about a second of Opus packets in each) cannot be split
// into packets with it, nor can a packet continued on the next page be
// joined.
//
// Specification: RFC 3533 (the Ogg encapsulation format).

const oggHeaderLen = 27

// Ogg page header_type flags.
const (
	oggContinued = 0x01
	oggBOS       = 0x02
	oggEOS       = 0x04
)

// oggPage is one page; body aliases the input.
type oggPage struct {
	flags   byte
	granule uint64
	serial  uint32
	lacing  []byte
	body    []byte
}

// readOggPage parses the page at the start of b and returns it with its
// total length.
func readOggPage(b []byte) (oggPage, int, error) {
	if len(b) < oggHeaderLen {
		return oggPage{}, 0, fmt.Errorf("%w: Ogg: truncated page header", ErrMalformed)
	}
	if string(b[:4]) != "OggS" {
		return oggPage{}, 0, fmt.Errorf("%w: Ogg: lost page sync", ErrMalformed)
	}
	if b[4] != 0 {
		return oggPage{}, 0, fmt.Errorf("%w: Ogg stream structure version %d", ErrUnsupportedFormat, b[4])
	}
	nseg := int(b[26])
	if len(b) < oggHeaderLen+nseg {
		return oggPage{}, 0, fmt.Errorf("%w: Ogg: truncated segment table", ErrMalformed)
	}
	lacing := b[oggHeaderLen : oggHeaderLen+nseg]
	size := 0
	for _, l := range lacing {
		size += int(l)
	}
	end := oggHeaderLen + nseg + size
	if len(b) < end {
		return oggPage{}, 0, fmt.Errorf("%w: Ogg: truncated page", ErrMalformed)
	}
	if got, want := oggCRC(b[:end]), binary.LittleEndian.Uint32(b[22:26]); got != want {
		return oggPage{}, 0, fmt.Errorf("%w: Ogg: page checksum mismatch", ErrMalformed)
	}
	return oggPage{
		flags:   b[5],
		granule: binary.LittleEndian.Uint64(b[6:14]),
		serial:  binary.LittleEndian.Uint32(b[14:18]),
		lacing:  lacing,
		body:    b[oggHeaderLen+nseg : end],
	}, end, nil
}

// oggPackets calls fn with each packet of the first logical stream of b,
// in order, and returns the last page of that stream. The packet is
// valid only during the call. Pages of other logical streams (a
// multiplexed file) are skipped.
func oggPackets(b []byte, fn func(pkt []byte) error) (last oggPage, err error) {
	var (
		serial  uint32
		started bool
		pending []byte // a packet continued on the next page
		inPkt   bool
	)
	for len(b) > 0 {
		pg, n, err := readOggPage(b)
		if err != nil {
			return last, err
		}
		b = b[n:]
		if !started {
			if pg.flags&oggBOS == 0 {
				return last, fmt.Errorf("%w: Ogg: first page is not a beginning of stream", ErrMalformed)
			}
			serial, started = pg.serial, true
		} else if pg.serial != serial {
			continue
		}
		last = pg
		if pg.flags&oggContinued == 0 {
			pending, inPkt = pending[:0], false // a lost continuation: drop the part
		}
		body := pg.body
		for _, l := range pg.lacing {
			seg := body[:l]
			body = body[l:]
			if l == 255 {
				pending, inPkt = append(pending, seg...), true
				continue
			}
			pkt := seg
			if inPkt {
				pending = append(pending, seg...)
				pkt = pending
			}
			if err := fn(pkt); err != nil {
				return last, err
			}
			pending, inPkt = pending[:0], false
		}
		if pg.flags&oggEOS != 0 {
			break
		}
	}
	if !started {
		return last, fmt.Errorf("%w: Ogg: no pages", ErrMalformed)
	}
	return last, nil
}

// isOggOpus reports whether b starts with an Ogg page whose first packet
// is an Opus identification header.
func isOggOpus(b []byte) bool {
	if len(b) < oggHeaderLen || string(b[:4]) != "OggS" {
		return false
	}
	off := oggHeaderLen + int(b[26])
	return len(b) >= off && bytes.HasPrefix(b[off:], []byte("OpusHead"))
}

// oggCRC is the Ogg page checksum: CRC-32 with polynomial 0x04c11db7,
// initial value 0, no reflection, no final XOR, computed with the
// checksum field taken as zero.
func oggCRC(page []byte) uint32 {
	var crc uint32
	for i, v := range page {
		if i >= 22 && i < 26 {
			v = 0
		}
		crc = crc<<8 ^ oggCRCTable[byte(crc>>24)^v]
	}
	return crc
}

var oggCRCTable = func() (t [256]uint32) {
	for i := range t {
		r := uint32(i) << 24
		for range 8 {
			if r&0x80000000 != 0 {
				r = r<<1 ^ 0x04c11db7
			} else {
				r <<= 1
			}
		}
		t[i] = r
	}
	return t
}()
