package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// statusEvent is what the server tells the outside world about a call: POSTed
// to the webhook (like the product's CallStatusEvent) and pushed to the web
// page over Server-Sent Events.
type statusEvent struct {
	Type             string `json:"type"` // "CallStatusEvent" or "RtmpStatusEvent"
	CallID           string `json:"callId"`
	Status           string `json:"status"`
	SIPStatus        int    `json:"sipStatus,omitempty"`
	SIPMessage       string `json:"sipMessage,omitempty"`
	RTMPStreamStatus string `json:"rtmpStreamStatus,omitempty"`
	MediaSessionID   string `json:"mediaSessionId,omitempty"`
	RTMPURL          string `json:"rtmpUrl,omitempty"`
	Info             string `json:"info,omitempty"`
	Caller           string `json:"caller,omitempty"`
	Callee           string `json:"callee,omitempty"`
	AppKey           string `json:"appKey,omitempty"`
	Timestamp        int64  `json:"timestamp"` // Unix milliseconds
}

// webhook delivers events to one URL, in order, from one goroutine, with a
// bounded queue: a slow or dead receiver costs dropped notifications (counted),
// never a blocked call.
type webhook struct {
	url     string
	client  *http.Client
	log     *slog.Logger
	retries int
	backoff time.Duration

	queue chan statusEvent
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex
	dropped uint64
	failed  uint64
	sent    uint64
}

// webhookQueue is how many events may wait for delivery.
const webhookQueue = 1024

func newWebhook(url string, log *slog.Logger) *webhook {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	h := &webhook{
		url:     url,
		client:  &http.Client{Timeout: 5 * time.Second},
		log:     log,
		retries: 3,
		backoff: 500 * time.Millisecond,
		queue:   make(chan statusEvent, webhookQueue),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go h.run()
	return h
}

// post queues ev without blocking; it reports false when the queue was full.
func (h *webhook) post(ev statusEvent) bool {
	select {
	case h.queue <- ev:
		return true
	default:
		h.mu.Lock()
		h.dropped++
		h.mu.Unlock()
		return false
	}
}

func (h *webhook) run() {
	defer close(h.done)
	for {
		select {
		case ev := <-h.queue:
			h.deliver(ev)
		case <-h.stop:
			// Deliver what is queued, once, without retries.
			for {
				select {
				case ev := <-h.queue:
					_ = h.send(ev)
				default:
					return
				}
			}
		}
	}
}

func (h *webhook) deliver(ev statusEvent) {
	wait := h.backoff
	for attempt := 0; ; attempt++ {
		err := h.send(ev)
		if err == nil {
			h.mu.Lock()
			h.sent++
			h.mu.Unlock()
			return
		}
		if attempt >= h.retries {
			h.mu.Lock()
			h.failed++
			h.mu.Unlock()
			h.log.Warn("webhook delivery failed", "callId", ev.CallID, "status", ev.Status, "err", err)
			return
		}
		select {
		case <-time.After(wait):
			wait *= 2
		case <-h.stop:
			return
		}
	}
}

func (h *webhook) send(ev statusEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.client.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err // url.Error repeats the URL, which may carry credentials
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return nil
}

// close delivers what is queued (best effort) and stops the goroutine.
func (h *webhook) close() {
	h.once.Do(func() { close(h.stop) })
	<-h.done
}

// hub fans events out to Server-Sent Events subscribers. A subscriber that
// cannot keep up is disconnected (its page reconnects and gets a fresh
// snapshot), so no subscriber can slow the others or the calls.
type hub struct {
	mu     sync.Mutex
	subs   map[chan []byte]struct{}
	closed bool
}

// hubBuffer is how many events one subscriber may have unread.
const hubBuffer = 256

func newHub() *hub { return &hub{subs: make(map[chan []byte]struct{})} }

func (h *hub) subscribe() (chan []byte, func()) {
	ch := make(chan []byte, hubBuffer)
	h.mu.Lock()
	if h.closed {
		close(ch)
	} else {
		h.subs[ch] = struct{}{}
	}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
		h.mu.Unlock()
	}
}

func (h *hub) publish(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- msg:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// close disconnects every subscriber.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
