//go:build !race

package sound

const raceEnabled = false
