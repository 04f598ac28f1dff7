package filler

import "time"

// Clock is the Filler's source of time: when real frames arrive (the
// mapping between the call's timeline and the wall clock) and when filler
// frames are due. Tests pass a fake clock and advance it instead of
// sleeping.
type Clock interface {
	// Now returns the current time; its monotonic reading is what
	// counts.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, like
	// time.AfterFunc.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call of Clock.AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not started yet, and reports
	// whether it did (time.Timer.Stop's result).
	Stop() bool
}

// systemClock is the wall clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
