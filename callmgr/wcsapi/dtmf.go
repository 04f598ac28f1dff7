package wcsapi

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// dtmfQueue sends /call/send_dtmf's digits after the request was answered:
// one goroutine per call with digits pending, which sends them in the order
// they were accepted and exits when the call's queue is empty. Failures are
// logged (callmgr's errors carry no secrets), never answered.
type dtmfQueue struct {
	calls callService
	log   *slog.Logger

	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending map[string][]dtmfJob // by call; present while its sender runs
	closed  bool
}

type dtmfJob struct{ digits, typ string }

const (
	// dtmfMaxPending bounds each call's queue of requests.
	dtmfMaxPending = 32
	// dtmfTimeout bounds sending one request's digits.
	dtmfTimeout = 30 * time.Second
)

func newDTMFQueue(calls callService, log *slog.Logger) *dtmfQueue {
	ctx, cancel := context.WithCancel(context.Background())
	return &dtmfQueue{calls: calls, log: log, ctx: ctx, cancel: cancel, pending: map[string][]dtmfJob{}}
}

// enqueue queues digits for callID; false when the call's queue is full or
// the server is closing.
func (q *dtmfQueue) enqueue(callID, digits, typ string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	jobs, running := q.pending[callID]
	if q.closed || len(jobs) >= dtmfMaxPending {
		return false
	}
	q.pending[callID] = append(jobs, dtmfJob{digits: digits, typ: typ})
	if !running {
		q.wg.Add(1)
		go q.run(callID)
	}
	return true
}

// run sends callID's queued digits until none are left.
func (q *dtmfQueue) run(callID string) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		jobs := q.pending[callID]
		if len(jobs) == 0 {
			delete(q.pending, callID)
			q.mu.Unlock()
			return
		}
		job := jobs[0]
		q.pending[callID] = jobs[1:]
		q.mu.Unlock()

		ctx, cancel := context.WithTimeout(q.ctx, dtmfTimeout)
		err := q.calls.SendDTMF(ctx, callID, job.digits, job.typ)
		cancel()
		if err != nil {
			q.log.Warn("DTMF not sent", "callId", callID, "type", job.typ, "err", err)
		}
	}
}

// close drops what is queued, cancels what is being sent and waits for
// the senders.
func (q *dtmfQueue) close() {
	q.mu.Lock()
	q.closed = true
	for id := range q.pending {
		q.pending[id] = nil
	}
	q.mu.Unlock()
	q.cancel()
	q.wg.Wait()
}
