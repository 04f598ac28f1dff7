package callmgr

import "fmt"

// newRealBackend wires the real SIP user agent, SDP, media sessions and
// sinks.
func newRealBackend(cfg *Config) (*backend, error) {
	return nil, fmt.Errorf("%w: the SIP user agent is not wired into callmgr yet", ErrNotConfigured)
}
