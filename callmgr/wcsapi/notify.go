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

// StatusEvent is what the server tells the webhooks about a call: the
// product's CallStatusEvent (wcs-docs "Stream capturing from a SIP call",
// "Additional status information"), with its members in its order and null
// where we have no value (sessionId, and rtmpUrl, rtmpStream and
// rtmpStreamStatus without an RTMP leg). Changes of the call's own RTMP leg
// are CallStatusEvents too, as in the product. sipstream adds type,
// sipMessage, mediaSessionId, info and timestamp after them.
type StatusEvent struct {
	// Type is the event's name, which is also the last segment of the URL
	// it is POSTed to: "CallStatusEvent" (empty means that too) for the
	// call's status and its RTMP leg, and sipstream's own "RtmpStatusEvent"
	// (a push or a recording changed: MediaSessionID names it) and
	// "DtmfEvent" (Info is the digit received).
	Type             string `json:"type"`
	NodeID           string `json:"nodeId"`
	AppKey           string `json:"appKey"`
	SessionID        string `json:"sessionId"`
	CallID           string `json:"callId"`
	Incoming         bool   `json:"incoming"`
	Status           string `json:"status"`
	SIPStatus        int    `json:"sipStatus"`
	RTMPURL          string `json:"rtmpUrl"`
	RTMPStream       string `json:"rtmpStream"`
	RTMPStreamStatus string `json:"rtmpStreamStatus"`
	Caller           string `json:"caller"`
	Callee           string `json:"callee"`
	HasAudio         bool   `json:"hasAudio"`
	HasVideo         bool   `json:"hasVideo"`
	VisibleName      string `json:"visibleName"`
	MediaProvider    string `json:"mediaProvider"`
	IsMsrp           bool   `json:"isMsrp"`

	// sipstream's additions, left out when empty.
	SIPMessage     string `json:"sipMessage,omitempty"`
	MediaSessionID string `json:"mediaSessionId,omitempty"`
	Info           string `json:"info,omitempty"`
	Timestamp      int64  `json:"timestamp"` // Unix milliseconds
}

// eventType is ev's name: its Type, CallStatusEvent when empty.
func (ev StatusEvent) eventType() string {
	if ev.Type == "" {
		return "CallStatusEvent"
	}
	return ev.Type
}

// MarshalJSON writes ev in the product's order with its nulls: the string
// members other than callId, status, caller and callee are null when empty.
// The product's members come first, at the positions its documented body
// has them (TestReplayWCSDocs), sipstream's after them, type included.
func (ev StatusEvent) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		NodeID           *string `json:"nodeId"`
		AppKey           *string `json:"appKey"`
		SessionID        *string `json:"sessionId"`
		CallID           string  `json:"callId"`
		Incoming         bool    `json:"incoming"`
		Status           string  `json:"status"`
		SIPStatus        int     `json:"sipStatus"`
		RTMPURL          *string `json:"rtmpUrl"`
		RTMPStream       *string `json:"rtmpStream"`
		RTMPStreamStatus *string `json:"rtmpStreamStatus"`
		Caller           string  `json:"caller"`
		Callee           string  `json:"callee"`
		HasAudio         bool    `json:"hasAudio"`
		HasVideo         bool    `json:"hasVideo"`
		VisibleName      *string `json:"visibleName"`
		MediaProvider    *string `json:"mediaProvider"`
		IsMsrp           bool    `json:"isMsrp"`
		Type             string  `json:"type"`
		SIPMessage       string  `json:"sipMessage,omitempty"`
		MediaSessionID   string  `json:"mediaSessionId,omitempty"`
		Info             string  `json:"info,omitempty"`
		Timestamp        int64   `json:"timestamp"`
	}{
		Type: ev.eventType(), NodeID: nullable(ev.NodeID), AppKey: nullable(ev.AppKey),
		SessionID: nullable(ev.SessionID), CallID: ev.CallID, Incoming: ev.Incoming,
		Status: ev.Status, SIPStatus: ev.SIPStatus, RTMPURL: nullable(ev.RTMPURL),
		RTMPStream: nullable(ev.RTMPStream), RTMPStreamStatus: nullable(ev.RTMPStreamStatus),
		Caller: ev.Caller, Callee: ev.Callee, HasAudio: ev.HasAudio, HasVideo: ev.HasVideo,
		VisibleName: nullable(ev.VisibleName), MediaProvider: nullable(ev.MediaProvider),
		IsMsrp: ev.IsMsrp, SIPMessage: ev.SIPMessage, MediaSessionID: ev.MediaSessionID,
		Info: ev.Info, Timestamp: ev.Timestamp,
	})
}

// hookURL is the URL an event named method is POSTed to for an application
// whose hook is base, as the product's REST hooks are called: base + "/" +
// method ("http://app/hook" + "CallStatusEvent" ->
// "http://app/hook/CallStatusEvent"; a query stays at the end).
func hookURL(base, method string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("not an http:// or https:// URL")
	}
	return u.JoinPath(method).String(), nil
}

// webhook delivers events to the applications' hook URLs: to the hook of
// the event's appKey, else to the default hook, else nowhere. Each hook has
// its own goroutine and bounded queue, so events reach one hook in order, a
// slow or dead receiver costs its own dropped notifications (counted) and
// never a blocked call or another application's events.
type webhook struct {
	client  *http.Client
	log     *slog.Logger
	retries int
	backoff time.Duration

	def  *hookTarget            // nil without a default hook
	apps map[string]*hookTarget // by appKey

	stop chan struct{}
	done chan struct{} // closed when every target's goroutine has ended
	once sync.Once

	mu      sync.Mutex
	dropped uint64
	failed  uint64
	sent    uint64
	// lastDropLog is when a drop was last logged; drops in between are
	// summed into the next line (at most one line per dropLogEvery).
	lastDropLog    time.Time
	droppedNotLogd uint64
}

// hookTarget is one hook URL's queue.
type hookTarget struct {
	base  string // the application's base URL
	queue chan hookMessage
}

// hookMessage is one event waiting for its hook: the URL's last segment
// (the event's name), the JSON body, and what a log line says of it.
type hookMessage struct {
	name string
	body any
	// id and status name the event in logs (a callId or an account).
	id, status string
}

// webhookQueue is how many events may wait for delivery by default.
const webhookQueue = 1024

// dropLogEvery spaces the log lines about dropped webhook events.
const dropLogEvery = 10 * time.Second

// newWebhook starts the delivery goroutine of one default hook; queue bounds
// the events waiting (zero means webhookQueue).
func newWebhook(base string, log *slog.Logger, queue int) *webhook {
	return newWebhooks(base, nil, log, queue)
}

// newWebhooks starts one delivery goroutine per hook: def (empty: none) for
// the applications apps does not name, apps by appKey. queue bounds each
// hook's waiting events (zero means webhookQueue). The URLs were checked by
// the caller (hookURL).
func newWebhooks(def string, apps map[string]string, log *slog.Logger, queue int) *webhook {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if queue <= 0 {
		queue = webhookQueue
	}
	h := &webhook{
		client:  hookClient(),
		log:     log,
		retries: 3,
		backoff: 500 * time.Millisecond,
		apps:    map[string]*hookTarget{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	var targets []*hookTarget
	byURL := map[string]*hookTarget{} // applications sharing a URL share its queue: one order
	target := func(base string) *hookTarget {
		if t, ok := byURL[base]; ok {
			return t
		}
		t := &hookTarget{base: base, queue: make(chan hookMessage, queue)}
		byURL[base] = t
		targets = append(targets, t)
		return t
	}
	if def != "" {
		h.def = target(def)
	}
	for app, base := range apps {
		h.apps[app] = target(base)
	}
	var wg sync.WaitGroup
	for _, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.run(t)
		}()
	}
	go func() {
		wg.Wait()
		close(h.done)
	}()
	return h
}

// post queues ev for its application's hook without blocking; it reports
// false when the event is dropped: the queue was full (counted in
// sipstream_webhook_dropped_total and logged, at most one line per
// dropLogEvery) or no hook serves its appKey.
func (h *webhook) post(ev StatusEvent) bool {
	return h.postTo(ev.AppKey, hookMessage{name: ev.eventType(), body: ev, id: ev.CallID, status: ev.Status})
}

// target is the hook of appKey's application: its own, else the default
// one; nil when neither.
func (h *webhook) target(appKey string) *hookTarget {
	if t := h.apps[appKey]; t != nil {
		return t
	}
	return h.def
}

// postTo queues msg for appKey's hook as post does.
func (h *webhook) postTo(appKey string, msg hookMessage) bool {
	t := h.target(appKey)
	if t == nil {
		return false
	}
	select {
	case t.queue <- msg:
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
		h.log.Warn("webhook queue full: events dropped", "dropped", n, "droppedTotal", total, "queue", cap(t.queue))
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

func (h *webhook) run(t *hookTarget) {
	for {
		select {
		case msg := <-t.queue:
			h.deliver(t, msg)
		case <-h.stop:
			// Deliver what is queued, once, without retries.
			for {
				select {
				case msg := <-t.queue:
					_ = h.send(t, msg)
				default:
					return
				}
			}
		}
	}
}

func (h *webhook) deliver(t *hookTarget, msg hookMessage) {
	wait := h.backoff
	for attempt := 0; ; attempt++ {
		err := h.send(t, msg)
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
			h.log.Warn("webhook delivery failed", "event", msg.name, "id", msg.id, "status", msg.status, "err", err)
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

// send POSTs msg to its hook's base URL + "/" + the event's name.
func (h *webhook) send(t *hookTarget, msg hookMessage) error {
	ctx, cancel := context.WithTimeout(context.Background(), h.client.Timeout)
	defer cancel()
	resp, err := h.do(ctx, t, msg)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// do POSTs msg's body as JSON to t's base URL + "/" + msg's name and
// returns the 2xx response (the caller closes its body). Errors never name
// the URL, which may carry credentials; a redirect is an error (hookClient).
func (h *webhook) do(ctx context.Context, t *hookTarget, msg hookMessage) (*http.Response, error) {
	body, err := json.Marshal(msg.body)
	if err != nil {
		return nil, err
	}
	u, err := hookURL(t.base, msg.name)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, errors.New("bad webhook URL") // the URL may carry credentials
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return nil, ue.Err // url.Error repeats the URL, which may carry credentials
		}
		return nil, err
	}
	if resp.StatusCode >= 300 {
		resp.Body.Close()
		return nil, fmt.Errorf("webhook answered %d", resp.StatusCode)
	}
	return resp, nil
}

// hookTimeout bounds each POST to a hook.
const hookTimeout = 5 * time.Second

// errHookRedirect: a hook answered with a redirect, which is not followed.
var errHookRedirect = errors.New("the hook answered with a redirect, which is not followed")

// hookClient is the HTTP client of the hooks. The hooks' URLs are the
// admin's (-webhook, -app-webhook); a hook's redirect is not followed (its
// 3xx is a failed delivery), so a hook cannot make the server POST call
// details, or ask for a call's routing, anywhere else: an internal address
// the admin never named included (SSRF).
func hookClient() *http.Client {
	return &http.Client{
		Timeout:       hookTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errHookRedirect },
	}
}

// close delivers what is queued (best effort) and stops the goroutines.
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
