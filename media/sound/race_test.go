//go:build race

package sound

const raceEnabled = true
