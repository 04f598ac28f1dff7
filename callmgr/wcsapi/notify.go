package wcsapi

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

	"github.com/prometheus/client_golang/prometheus"
)

// StatusEvent is what the server tells the outside world about a call: POSTed
// to the webhook (like the product's CallStatusEvent) and pushed to the web
// page over Server-Sent Events.
type StatusEvent struct {
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

	queue chan StatusEvent
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once

	mu      sync.Mutex
	dropped uint64
	failed  uint64
	sent    uint64
	// lastDropLog is when a drop was last logged; drops in between are
	// summed into the next line (at most one line per dropLogEvery).
	lastDropLog    time.Time
	droppedNotLogd uint64
}

// webhookQueue is how many events may wait for delivery by default.
const webhookQueue = 1024

// dropLogEvery spaces the log lines about dropped webhook events.
const dropLogEvery = 10 * time.Second

// newWebhook starts the delivery goroutine; queue bounds the events waiting
// (zero means webhookQueue).
func newWebhook(url string, log *slog.Logger, queue int) *webhook {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if queue <= 0 {
		queue = webhookQueue
	}
	h := &webhook{
		url:     url,
		client:  &http.Client{Timeout: 5 * time.Second},
		log:     log,
		retries: 3,
		backoff: 500 * time.Millisecond,
		queue:   make(chan StatusEvent, queue),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go h.run()
	return h
}

// post queues ev without blocking; it reports false when the queue was full
// (the event is dropped, counted in sipstream_webhook_dropped_total and
// logged, at most one line per dropLogEvery).
func (h *webhook) post(ev StatusEvent) bool {
	select {
	case h.queue <- ev:
		return true
	default:
	}
	h.mu.Lock()
	h.dropped++
	h.droppedNotLogd++
	now := time.Now()
	var n uint64
	if now.Sub(h.lastDropLog) >= dropLogEvery {
		n, h.droppedNotLogd, h.lastDropLog = h.droppedNotLogd, 0, now
	}
	total := h.dropped
	h.mu.Unlock()
	if n > 0 {
		h.log.Warn("webhook queue full: events dropped", "dropped", n, "droppedTotal", total, "queue", cap(h.queue))
	}
	return false
}

var (
	webhookDroppedDesc = prometheus.NewDesc("sipstream_webhook_dropped_total", "Status events not sent to the webhook because its queue was full (a slow or dead receiver).", nil, nil)
	webhookFailedDesc  = prometheus.NewDesc("sipstream_webhook_failed_total", "Status events the webhook did not accept after every retry.", nil, nil)
	webhookSentDesc    = prometheus.NewDesc("sipstream_webhook_sent_total", "Status events the webhook accepted.", nil, nil)
)

// Describe implements prometheus.Collector.
func (h *webhook) Describe(ch chan<- *prometheus.Desc) {
	ch <- webhookDroppedDesc
	ch <- webhookFailedDesc
	ch <- webhookSentDesc
}

// Collect implements prometheus.Collector.
func (h *webhook) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	d, f, s := h.dropped, h.failed, h.sent
	h.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(webhookDroppedDesc, prometheus.CounterValue, float64(d))
	ch <- prometheus.MustNewConstMetric(webhookFailedDesc, prometheus.CounterValue, float64(f))
	ch <- prometheus.MustNewConstMetric(webhookSentDesc, prometheus.CounterValue, float64(s))
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

func (h *webhook) deliver(ev StatusEvent) {
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

func (h *webhook) send(ev StatusEvent) error {
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
	max     int // subscribers at most; 0 = no limit
	mu      sync.Mutex
	subs    map[chan []byte]struct{}
	closed  bool
	refused uint64
}

// hubBuffer is how many events one subscriber may have unread.
const hubBuffer = 256

// errTooManySubscribers: the hub has its maximum of subscribers.
var errTooManySubscribers = errors.New("too many event stream subscribers")

// newHub makes a hub for at most max subscribers (0: no limit).
func newHub(max int) *hub { return &hub{max: max, subs: make(map[chan []byte]struct{})} }

// subscribe adds a subscriber, or fails with errTooManySubscribers.
func (h *hub) subscribe() (chan []byte, func(), error) {
	ch := make(chan []byte, hubBuffer)
	h.mu.Lock()
	if h.max > 0 && len(h.subs) >= h.max && !h.closed {
		h.refused++
		h.mu.Unlock()
		return nil, nil, errTooManySubscribers
	}
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
	}, nil
}

var (
	sseSubsDesc    = prometheus.NewDesc("sipstream_sse_subscribers", "Event stream (/events) subscribers connected now.", nil, nil)
	sseRefusedDesc = prometheus.NewDesc("sipstream_sse_refused_total", "Event stream subscribers refused because -max-sse were connected.", nil, nil)
)

// Describe implements prometheus.Collector.
func (h *hub) Describe(ch chan<- *prometheus.Desc) {
	ch <- sseSubsDesc
	ch <- sseRefusedDesc
}

// Collect implements prometheus.Collector.
func (h *hub) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	n, r := len(h.subs), h.refused
	h.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(sseSubsDesc, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(sseRefusedDesc, prometheus.CounterValue, float64(r))
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
