package rtmpsink

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/sipstream/sipstream/rtmp"
	"github.com/sipstream/sipstream/sink"
)

// stallingLink sits between the sink's rtmp.Client and a real rtmp.Server:
// the Client writes into one end of a net.Pipe (unbuffered: a write ends
// only when read), a goroutine forwards to the server until stall is
// called, and from then on reads nothing, like a server that stopped
// reading with its socket buffers full.
type stallingLink struct {
	mu      sync.Mutex
	far     []net.Conn // our ends of the pipes
	stalled chan struct{}
	release chan struct{}
	wg      sync.WaitGroup
}

func newStallingLink() *stallingLink {
	return &stallingLink{stalled: make(chan struct{}), release: make(chan struct{})}
}

// dial is an rtmp.ClientConfig.Dial.
func (k *stallingLink) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	up, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	near, far := net.Pipe()
	k.mu.Lock()
	k.far = append(k.far, far)
	k.mu.Unlock()
	k.wg.Add(2)
	go func() { // server to client: always flows
		defer k.wg.Done()
		_, _ = io.Copy(far, up)
	}()
	go func() { // client to server: until stalled
		defer k.wg.Done()
		defer up.Close()
		defer far.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := far.Read(buf)
			if n > 0 {
				if _, werr := up.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				select {
				case <-k.stalled:
					<-k.release
				default:
				}
				return
			}
		}
	}()
	return near, nil
}

// stall stops reading what the client writes.
func (k *stallingLink) stall() {
	close(k.stalled)
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, c := range k.far {
		_ = c.SetReadDeadline(time.Unix(1, 0)) // ends the read in progress
	}
}

// stop ends the forwarding goroutines.
func (k *stallingLink) stop() {
	close(k.release)
	k.mu.Lock()
	for _, c := range k.far {
		_ = c.Close()
	}
	k.mu.Unlock()
	k.wg.Wait()
}

// TestCloseBoundedByContext: with a server that stopped reading, Close
// returns when its context ends, with the context's error, instead of
// waiting out the Client's one-second goodbye; the sink's goroutines end
// (and a sink.Fanout holding the sink behaves the same).
func TestCloseBoundedByContext(t *testing.T) {
	for _, viaFanout := range []bool{false, true} {
		name := "sink"
		if viaFanout {
			name = "fanout"
		}
		t.Run(name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			srv, err := rtmp.NewServer(rtmp.ServerConfig{})
			require.NoError(t, err)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			served := make(chan error, 1)
			go func() { served <- srv.Serve(ln) }()
			defer func() {
				_ = srv.Close()
				<-served
			}()
			link := newStallingLink()
			defer link.stop()

			dial := func(ctx context.Context, c *cfgOK) (publisher, error) {
				cl, err := rtmp.Dial(ctx, c.URL, rtmp.ClientConfig{
					DialTimeout: c.DialTimeout, WriteTimeout: c.WriteTimeout,
					StreamName: c.StreamName, Dial: link.dial,
				})
				if err != nil {
					return nil, err
				}
				return cl, nil
			}
			l := newStatusLog()
			cfg := testConfig(l)
			cfg.URL = "rtmp://" + ln.Addr().String() + "/live"
			s, err := newSink(cfg, dial, realClock{})
			require.NoError(t, err)
			l.wait(t, StatusActive)

			var closer interface {
				Close(ctx context.Context) error
			} = s
			if viaFanout {
				f := sink.NewFanout(sink.FanoutConfig{})
				require.NoError(t, f.Add("rtmp", s, 0))
				closer = f
			}
			link.stall()
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			start := time.Now()
			err = closer.Close(ctx)
			took := time.Since(start)
			require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
			require.Less(t, took, 600*time.Millisecond, "Close outlived its context")
			require.Nil(t, closer.Close(context.Background()), "a second Close is a no-op")
		})
	}
}
