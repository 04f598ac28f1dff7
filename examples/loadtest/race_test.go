//go:build race

package main

// raceEnabled: the race detector's instrumentation allocates on paths that
// allocate nothing in a normal build (3 to 5 per sender tick).
const raceEnabled = true
