//go:build race

package sip

// raceEnabled: the race detector keeps metadata per goroutine and lock,
// which heap measurements must not count.
const raceEnabled = true
