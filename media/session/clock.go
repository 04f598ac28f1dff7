package session

import "time"

// Clock is the session's source of time: packet arrival times, jitter
// buffer deadlines, RTCP intervals, keyframe request pacing, media timeouts
// and the pacing of outgoing silence and DTMF all come from it. Tests pass
// a fake clock and advance it instead of sleeping.
type Clock interface {
	Now() time.Time
	// NewTimer returns a stopped-or-running timer that fires once, d from
	// now, like time.NewTimer.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a Clock.
type Timer interface {
	// C delivers the time when the timer fires.
	C() <-chan time.Time
	// Reset makes the timer fire d from now (Go 1.23 semantics: no stale
	// value is delivered after Reset or Stop).
	Reset(d time.Duration)
	// Stop stops the timer.
	Stop()
}

// SystemClock is the wall clock (time.Now, time.NewTimer).
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// NewTimer returns a timer backed by time.NewTimer.
func (SystemClock) NewTimer(d time.Duration) Timer { return sysTimer{time.NewTimer(d)} }

type sysTimer struct{ t *time.Timer }

func (t sysTimer) C() <-chan time.Time   { return t.t.C }
func (t sysTimer) Reset(d time.Duration) { t.t.Reset(d) }
func (t sysTimer) Stop()                 { t.t.Stop() }
