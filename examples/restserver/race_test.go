//go:build race

package main

// raceEnabled: the tests run with -race (the interop tests build the server
// with it too, reusing the build cache).
const raceEnabled = true
