//go:build !unix

package aac

func cpuSeconds() float64 { return 0 }
