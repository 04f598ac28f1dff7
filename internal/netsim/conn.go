package netsim

import (
	"container/heap"
	"net"
	"sync"
	"time"
)

// Conn is a net.PacketConn whose writes go through a simulated network:
// WriteTo decides each packet's fate with a Sim on the wall clock (time
// since NewConn) and a goroutine sends it to the real connection when it is
// due. Reads are passed through untouched. Close stops the goroutine,
// drops the packets still in flight and closes the wrapped connection.
type Conn struct {
	net.PacketConn

	start time.Time
	wake  chan struct{}
	done  chan struct{}
	wg    sync.WaitGroup

	mu     sync.Mutex
	sim    *Sim
	queue  pending
	seq    uint64
	closed bool
	once   sync.Once
}

type inflight struct {
	due  time.Time
	seq  uint64 // tie-break: send order
	data []byte
	addr net.Addr
}

type pending []inflight

func (p pending) Len() int { return len(p) }
func (p pending) Less(i, j int) bool {
	if p[i].due.Equal(p[j].due) {
		return p[i].seq < p[j].seq
	}
	return p[i].due.Before(p[j].due)
}
func (p pending) Swap(i, j int) { p[i], p[j] = p[j], p[i] }
func (p *pending) Push(x any)   { *p = append(*p, x.(inflight)) }
func (p *pending) Pop() any {
	old := *p
	x := old[len(old)-1]
	*p = old[:len(old)-1]
	return x
}

// NewConn wraps pc. It takes ownership of pc: Close closes it.
func NewConn(pc net.PacketConn, cfg Config) (*Conn, error) {
	sim, err := New(cfg)
	if err != nil {
		return nil, err
	}
	c := &Conn{
		PacketConn: pc,
		start:      time.Now(),
		wake:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		sim:        sim,
	}
	c.wg.Add(1)
	go c.run()
	return c, nil
}

// Stats returns what the simulated network did so far.
func (c *Conn) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sim.Stats()
}

// WriteTo schedules b (copied) for delivery to addr. Like UDP it reports
// success for a packet the network then loses.
func (c *Conn) WriteTo(b []byte, addr net.Addr) (int, error) {
	now := time.Now()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return 0, net.ErrClosed
	}
	arr, n := c.sim.Fate(now.Sub(c.start))
	for k := 0; k < n; k++ {
		c.seq++
		heap.Push(&c.queue, inflight{due: c.start.Add(arr[k]), seq: c.seq, data: append([]byte(nil), b...), addr: addr})
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (c *Conn) run() {
	defer c.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		c.mu.Lock()
		var wait time.Duration = -1
		var due []inflight
		now := time.Now()
		for c.queue.Len() > 0 {
			if d := c.queue[0].due.Sub(now); d > 0 {
				wait = d
				break
			}
			due = append(due, heap.Pop(&c.queue).(inflight))
		}
		c.mu.Unlock()
		for _, p := range due {
			_, _ = c.PacketConn.WriteTo(p.data, p.addr) // a real network drops silently too
		}
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-c.done:
			return
		case <-c.wake:
		case <-timer.C:
		}
		if wait >= 0 && !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// Close stops delivering, waits for the delivery goroutine and closes the
// wrapped connection. It is idempotent.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.mu.Unlock()
		close(c.done)
		c.wg.Wait()
		err = c.PacketConn.Close()
	})
	return err
}
