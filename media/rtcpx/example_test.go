package rtcpx_test

import (
	"fmt"

	"github.com/pion/rtcp"

	"github.com/sipstream/sipstream/media/rtcpx"
)

// Walk a compound RTCP packet as a phone sends it and read its SR.
func ExampleWalk() {
	b, _ := rtcp.Marshal([]rtcp.Packet{
		&rtcp.SenderReport{SSRC: 0x1234, NTPTime: 0xe8a1b2c300000000, RTPTime: 160000},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 0x1234, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "phone"}}}}},
	})
	err := rtcpx.Walk(b, func(p rtcpx.Packet) bool {
		if p.Type == rtcpx.TypeSR {
			sr, err := rtcpx.ParseSenderReport(p)
			if err == nil {
				fmt.Printf("SR from %#x: RTP %d at NTP %#x\n", sr.SSRC, sr.RTPTime, sr.NTPTime)
			}
		} else {
			fmt.Println("packet type", p.Type)
		}
		return true
	})
	fmt.Println(err)
	// Output:
	// SR from 0x1234: RTP 160000 at NTP 0xe8a1b2c300000000
	// packet type 202
	// <nil>
}
