package rtmp

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/internal/testmedia"
	"github.com/sipstream/sipstream/rtmp/flv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testTimeout bounds every wait in these tests; generous for loaded
// machines, never a speed assertion.
const testTimeout = 20 * time.Second

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startServer runs a Server on a loopback port and returns it with its
// address; cleanup closes it and checks that Serve returned.
func startServer(t *testing.T, cfg ServerConfig) (*Server, string) {
	t.Helper()
	s, err := NewServer(cfg)
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		if cfg.TLSConfig != nil {
			done <- s.ServeTLS(l)
		} else {
			done <- s.Serve(l)
		}
	}()
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		select {
		case err := <-done:
			require.True(t, errors.Is(err, ErrServerClosed), "Serve returned %v", err)
		case <-time.After(testTimeout):
			t.Error("Serve did not return after Close")
		}
	})
	return s, l.Addr().String()
}

// clipFrame is one access unit of the test clip in AVC format.
type clipFrame struct {
	avcc []byte
	key  bool
}

func clipFrames() []clipFrame {
	var out []clipFrame
	for _, au := range testmedia.ClipAccessUnits() {
		var b []byte
		for _, n := range au.NALUs {
			b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
			b = append(b, n...)
		}
		out = append(out, clipFrame{avcc: b, key: au.Keyframe})
	}
	return out
}

func clipParamSets(t testing.TB) (sps, pps []byte) {
	for _, n := range testmedia.ClipAccessUnits()[0].NALUs {
		switch testmedia.NALType(n) {
		case 7:
			sps = n
		case 8:
			pps = n
		}
	}
	require.NotNil(t, sps)
	require.NotNil(t, pps)
	return sps, pps
}

// readTags reads tags from sub until EOF.
func readTags(t *testing.T, ctx context.Context, sub *Subscription) []flv.Tag {
	t.Helper()
	var tags []flv.Tag
	for {
		tag, err := sub.ReadTag(ctx)
		if err != nil {
			require.ErrorIs(t, err, errEOF)
			return tags
		}
		tags = append(tags, tag)
	}
}
