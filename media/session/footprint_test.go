package session

import (
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sipstream/sipstream/media"
)

// TestIdleSessionFootprint measures what an idle call costs: the heap and
// goroutine stacks that 200 started A/V sessions on real loopback sockets
// add, per session. Nothing has arrived, so nothing but the sessions
// themselves (sockets, goroutines, streams, depacketizers, jitter buffers)
// is counted.
func TestIdleSessionFootprint(t *testing.T) {
	if testing.Short() {
		t.Skip()
	}
	const n = 200
	var before, after runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&before)
	sessions := make([]*Session, 0, n)
	defer func() {
		for _, s := range sessions {
			require.NoError(t, s.Close())
		}
	}()
	for i := 0; i < n; i++ {
		s, err := New(Config{IP: loopback, Audio: true, Video: true})
		require.NoError(t, err)
		sessions = append(sessions, s)
		a := audioSpec(mustAddr("127.0.0.1:9"))
		v := videoSpec(mustAddr("127.0.0.1:11"), media.Feedback{PLI: true, NACK: true})
		a.Direction = media.RecvOnly
		require.NoError(t, s.Start([]media.StreamSpec{a, v}))
	}
	time.Sleep(100 * time.Millisecond) // let every reader block in its read (no assertion on time)
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if f := os.Getenv("SESSION_HEAP_PROFILE"); f != "" {
		w, err := os.Create(f)
		require.NoError(t, err)
		require.NoError(t, pprof.WriteHeapProfile(w))
		w.Close()
	}
	heap := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	stack := (int64(after.StackInuse) - int64(before.StackInuse)) / n
	t.Logf("per idle A/V session: heap %d B, goroutine stacks %d B, goroutines %d", heap, stack, runtime.NumGoroutine())
	// 356 KB before the shared receive buffers (issue 13)
	require.Less(t, heap+stack, int64(100<<10), "bytes per idle session")
}
