package chunk_test

import (
	"bytes"
	"fmt"

	"github.com/sipstream/sipstream/rtmp/chunk"
)

// Example splits a 300-byte video message into 128-byte chunks and
// reassembles it.
func Example() {
	var wire bytes.Buffer
	w := chunk.NewWriter(&wire)
	m := chunk.Message{ChunkStreamID: 7, Type: chunk.TypeVideo, Timestamp: 0x01000000, StreamID: 1, Payload: make([]byte, 300)}
	_ = w.WriteMessage(&m)
	// 3 chunks: a 16-byte type-0 header with extended timestamp, then two
	// 5-byte type-3 headers that repeat it.
	fmt.Println("wire bytes:", wire.Len())

	r := chunk.NewReader(&wire)
	got, _ := r.ReadMessage()
	fmt.Println("type", got.Type, "timestamp", got.Timestamp, "length", len(got.Payload))
	// Output:
	// wire bytes: 326
	// type 9 timestamp 16777216 length 300
}
