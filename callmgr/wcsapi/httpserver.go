package wcsapi

import (
	"crypto/tls"
	"net/http"
	"time"
)

// NewServer returns an http.Server for h with timeouts fit for this API on
// a public address: a request's headers within 10 s (slow or idle
// connections cannot pile up), its whole body within 30 s, its answer
// within 60 s (a WHEP answer waits up to 8 s for media; the event stream
// and HLS playlist waits set their own deadlines), an idle keep-alive
// connection closed after 2 minutes, headers at most 64 KiB. tlsCfg may be
// nil. Serve it with Serve or ServeTLS as usual, and call the Handler's
// EndStreams before Shutdown: event streams never end by themselves.
func NewServer(h http.Handler, tlsCfg *tls.Config) *http.Server {
	return &http.Server{
		Handler: h, TLSConfig: tlsCfg, MaxHeaderBytes: 64 << 10,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute,
	}
}
