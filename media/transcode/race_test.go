//go:build race

package transcode

// raceEnabled: the race detector's instrumentation allocates now and then,
// so allocation guards skip under it.
const raceEnabled = true
