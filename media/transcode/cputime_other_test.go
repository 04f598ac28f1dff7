//go:build !unix

package transcode

func cpuSeconds() float64 { return 0 }
