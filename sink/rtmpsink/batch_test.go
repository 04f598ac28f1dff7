package rtmpsink

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

// holdConn is a fake connection that also offers rtmp.Client's Hold and
// Flush, and records them.
type holdConn struct {
	*fakeConn
	mu        sync.Mutex
	holding   bool
	holds     int
	flushes   int
	failFlush bool
	heldOps   int // ops written while holding
}

func (c *holdConn) Hold() {
	c.mu.Lock()
	c.holding = true
	c.holds++
	c.mu.Unlock()
}

func (c *holdConn) Flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	c.flushes++
	if c.failFlush {
		return errors.New("write: broken pipe")
	}
	return nil
}

func (c *holdConn) WriteH264(pts, dts time.Duration, avcc []byte, key bool) error {
	c.count()
	return c.fakeConn.WriteH264(pts, dts, avcc, key)
}

func (c *holdConn) WriteG711(pts time.Duration, alaw bool, p []byte) error {
	c.count()
	return c.fakeConn.WriteG711(pts, alaw, p)
}

func (c *holdConn) count() {
	c.mu.Lock()
	if c.holding {
		c.heldOps++
	}
	c.mu.Unlock()
}

// TestWriteFramesBatch: WriteFrames writes a batch between one Hold and
// one Flush of the connection; when that Flush fails, the batch's frames
// count as dropped, not sent, and the sink reconnects.
func TestWriteFramesBatch(t *testing.T) {
	srv := newFakeServer()
	l := newStatusLog()
	var mu sync.Mutex
	var conns []*holdConn
	dial := func(ctx context.Context, c *cfgOK) (publisher, error) {
		p, err := srv.dial(ctx, c)
		if err != nil {
			return nil, err
		}
		hc := &holdConn{fakeConn: p.(*fakeConn)}
		mu.Lock()
		conns = append(conns, hc)
		mu.Unlock()
		return hc, nil
	}
	s, err := newSink(testConfig(l), dial, realClock{})
	require.NoError(t, err)
	defer s.Close(context.Background())
	l.wait(t, StatusActive)

	n, err := s.WriteFrames([]*media.Frame{vframe(0, true), aframe(0), aframe(1)})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	mu.Lock()
	hc := conns[0]
	mu.Unlock()
	hc.mu.Lock()
	require.Equal(t, 1, hc.holds)
	require.Equal(t, 1, hc.flushes)
	require.Equal(t, 3, hc.heldOps)
	hc.failFlush = true
	hc.mu.Unlock()
	require.Equal(t, uint64(3), s.Stats().FramesSent)

	// One frame alone is not held.
	n, err = s.WriteFrames([]*media.Frame{vframe(1, false)})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	hc.mu.Lock()
	require.Equal(t, 1, hc.holds)
	hc.mu.Unlock()

	n, err = s.WriteFrames([]*media.Frame{vframe(2, false), aframe(2), aframe(3)})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	st := s.Stats()
	require.Equal(t, uint64(4), st.FramesSent, "a failed batch is not counted as sent")
	require.Equal(t, uint64(3), st.FramesDropped)
	// The sink reports the lost connection and reconnects.
	deadline := time.After(20 * time.Second)
	for len(l.statuses()) < 4 {
		select {
		case <-l.ch:
		case <-deadline:
			t.Fatalf("statuses %v", l.statuses())
		}
	}
	require.Equal(t, []Status{StatusWait, StatusActive, StatusLost, StatusActive}, l.statuses())

	require.NoError(t, s.Close(context.Background()))
	_, err = s.WriteFrames([]*media.Frame{aframe(4)})
	require.ErrorIs(t, err, ErrClosed)
}
