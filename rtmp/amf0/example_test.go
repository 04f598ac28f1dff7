package amf0_test

import (
	"fmt"

	"github.com/sipstream/sipstream/rtmp/amf0"
)

// Example encodes an RTMP onStatus command and decodes it again.
func Example() {
	b, _ := amf0.Marshal("onStatus", 0, nil, amf0.Object{
		{Key: "level", Value: "status"},
		{Key: "code", Value: "NetStream.Publish.Start"},
	})
	vals, _ := amf0.DecodeAll(b)
	info := vals[3].(amf0.Object)
	code, _ := info.String("code")
	fmt.Println(vals[0], vals[1], vals[2], code)
	// Output: onStatus 0 <nil> NetStream.Publish.Start
}
