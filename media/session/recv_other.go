//go:build !linux

package session

// Elsewhere than on Linux datagrams are read one at a time and the kernel
// drop counter is not available.

type sysBatch struct{}

func (sysBatch) init(*rxBatch) {}

func newBatchReader(PacketConn) (batchReader, bool) { return nil, false }

func enableDropCounter(PacketConn) {}

func readBufferSize(PacketConn) int { return 0 }
