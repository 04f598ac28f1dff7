//go:build race

package filler

const raceEnabled = true
