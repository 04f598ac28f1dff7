package handshake

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type script struct {
	in  *bytes.Reader
	out bytes.Buffer
}

func (s *script) Read(b []byte) (int, error)  { return s.in.Read(b) }
func (s *script) Write(b []byte) (int, error) { return s.out.Write(b) }

func TestClientServer(t *testing.T) {
	// TCP, not net.Pipe: the handshake relies on socket buffering (the
	// server writes S0+S1+S2 while the client writes C2).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	errc := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		errc <- Server(c, 7)
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, Client(c, 0))
	require.NoError(t, <-errc)
}

// TestClientEchoesS1 checks C2 against a scripted server that sends a
// non-zero S1 version (as YouTube does) and garbage S2.
func TestClientEchoesS1(t *testing.T) {
	s1 := bytes.Repeat([]byte{0x5a}, PacketSize)
	s1[4] = 0x0d // version field, not validated
	s := &script{in: bytes.NewReader(append(append([]byte{3}, s1...), make([]byte, PacketSize)...))}
	require.NoError(t, Client(s, 1000))
	out := s.out.Bytes()
	require.Len(t, out, 1+2*PacketSize)
	require.Equal(t, byte(3), out[0])
	require.Equal(t, []byte{0, 0, 0x03, 0xe8, 0, 0, 0, 0}, out[1:9])
	require.Equal(t, s1, out[1+PacketSize:])
}

func TestServerEchoesC1(t *testing.T) {
	c1 := bytes.Repeat([]byte{0x33}, PacketSize)
	s := &script{in: bytes.NewReader(append(append([]byte{3}, c1...), make([]byte, PacketSize)...))}
	require.NoError(t, Server(s, 0))
	out := s.out.Bytes()
	require.Len(t, out, 1+2*PacketSize)
	require.Equal(t, []byte{0, 0, 0, 0}, out[5:9], "S1 version field must be zero")
	require.Equal(t, c1, out[1+PacketSize:])
}

func TestErrors(t *testing.T) {
	require.ErrorIs(t, Client(&script{in: bytes.NewReader(append([]byte{'H'}, make([]byte, PacketSize)...))}, 0), ErrVersion)
	require.ErrorIs(t, Server(&script{in: bytes.NewReader([]byte("GET / HTTP/1.1\r\n" + string(make([]byte, 2000))))}, 0), ErrVersion)
	err := Client(&script{in: bytes.NewReader([]byte{3, 1, 2})}, 0)
	require.True(t, errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
	err = Server(&script{in: bytes.NewReader(append([]byte{3}, make([]byte, PacketSize+10)...))}, 0)
	require.True(t, errors.Is(err, io.ErrUnexpectedEOF), "%v", err)
}

// FuzzHandshake runs both sides against arbitrary peer bytes: no panic, and
// success only when the peer sent version 3 and enough bytes.
func FuzzHandshake(f *testing.F) {
	f.Add(append([]byte{3}, make([]byte, 2*PacketSize)...))
	f.Add([]byte{6, 0, 0})
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, side := range []func(io.ReadWriter, uint32) error{Client, Server} {
			err := side(&script{in: bytes.NewReader(in)}, 0)
			if err == nil && (len(in) < 1+2*PacketSize || in[0] != Version) {
				t.Fatalf("accepted %d bytes starting with %d", len(in), in[0])
			}
		}
	})
}
