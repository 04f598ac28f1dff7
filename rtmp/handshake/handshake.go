// Package handshake implements the simple (unsigned) RTMP handshake.
//
// The client sends C0 (version 3) and C1 (time, four zero bytes, 1528
// random bytes), echoes S1 as C2, and reads S2 without checking it. It does
// not validate S1 either: YouTube answers with a non-zero version field and
// digest-style S1, and every server seen accepts an echo. The server side
// sends S1 with a zero version field, which makes FFmpeg and librtmp clients
// skip their digest check, and echoes C1 as S2.
//
// Specification: Adobe RTMP Specification 1.0, section 5.2.
package handshake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
)

// Version is the RTMP version byte of C0 and S0.
const Version = 3

// PacketSize is the size of C1, S1, C2 and S2.
const PacketSize = 1536

// ErrVersion means the peer's version byte is not 3 (for example an HTTP
// or TLS peer on an rtmp:// port).
var ErrVersion = errors.New("rtmp handshake: unsupported version")

func fillRandom(b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rand.Uint64())
	}
}

// Client performs the client side over rw. epoch is written as C1's time
// field (milliseconds; zero is fine).
func Client(rw io.ReadWriter, epoch uint32) error {
	c := make([]byte, 1+PacketSize)
	c[0] = Version
	binary.BigEndian.PutUint32(c[1:], epoch)
	fillRandom(c[9:])
	if _, err := rw.Write(c); err != nil {
		return fmt.Errorf("rtmp handshake: write C0+C1: %w", err)
	}
	s := make([]byte, 1+PacketSize)
	if _, err := io.ReadFull(rw, s); err != nil {
		return fmt.Errorf("rtmp handshake: read S0+S1: %w", err)
	}
	if s[0] != Version {
		return fmt.Errorf("%w: S0 is %d", ErrVersion, s[0])
	}
	if _, err := rw.Write(s[1:]); err != nil { // C2 echoes S1
		return fmt.Errorf("rtmp handshake: write C2: %w", err)
	}
	if _, err := io.ReadFull(rw, s[1:]); err != nil { // S2, not checked
		return fmt.Errorf("rtmp handshake: read S2: %w", err)
	}
	return nil
}

// Server performs the server side over rw. epoch is written as S1's time
// field.
func Server(rw io.ReadWriter, epoch uint32) error {
	c := make([]byte, 1+PacketSize)
	if _, err := io.ReadFull(rw, c); err != nil {
		return fmt.Errorf("rtmp handshake: read C0+C1: %w", err)
	}
	if c[0] != Version {
		return fmt.Errorf("%w: C0 is %d", ErrVersion, c[0])
	}
	s := make([]byte, 1+2*PacketSize)
	s[0] = Version
	binary.BigEndian.PutUint32(s[1:], epoch)
	fillRandom(s[9 : 1+PacketSize])
	copy(s[1+PacketSize:], c[1:]) // S2 echoes C1
	if _, err := rw.Write(s); err != nil {
		return fmt.Errorf("rtmp handshake: write S0+S1+S2: %w", err)
	}
	if _, err := io.ReadFull(rw, c[1:]); err != nil { // C2, not checked
		return fmt.Errorf("rtmp handshake: read C2: %w", err)
	}
	return nil
}
