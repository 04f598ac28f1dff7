//go:build unix

package aac

import "syscall"

// cpuSeconds returns the CPU time (user + system) this process has used, so
// benchmarks can report a realtime factor that does not depend on how busy
// the machine is.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}
