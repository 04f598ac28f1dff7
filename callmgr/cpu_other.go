//go:build !unix

package callmgr

import "time"

// processCPU is not measured on this system: admission control then checks
// only socket drops and queues.
func processCPU() (time.Duration, bool) { return 0, false }
