package session

import (
	"encoding/binary"
	"net/netip"
	"time"

	"github.com/pion/rtcp"

	"github.com/sipstream/sipstream/media/rtcpx"
)

// receiveRTCP handles an RTCP datagram (on the RTCP port, or muxed).
func (st *stream) receiveRTCP(b []byte, from netip.AddrPort, now time.Time, onRTCPPort bool) {
	if !st.configured {
		return
	}
	if len(b) < 8 || b[0]>>6 != 2 {
		st.c.InvalidPackets++
		return
	}
	// A stranger's RTCP must neither reach the timeline nor decide where
	// ours goes.
	ok, learn := st.rtcpFromPeer(from, binary.BigEndian.Uint32(b[4:]))
	if !ok {
		st.c.StrangerPackets++
		return
	}
	if st.srtpIn != nil {
		out, err := st.srtpIn.DecryptRTCP(st.decBuf[:0], b, nil)
		if err != nil {
			st.c.SRTPErrors++
			return
		}
		b = out
	}
	if onRTCPPort && learn {
		// RTCP from another port than the SDP says (NAT): ours goes back
		// where it comes from.
		st.rtcpSource, st.haveRTCPSrc = from, true
	}
	st.c.RTCPReceived++
	err := rtcpx.Walk(b, func(p rtcpx.Packet) bool {
		switch p.Type {
		case rtcpx.TypeSR:
			sr, err := rtcpx.ParseSenderReport(p)
			if err != nil {
				st.c.InvalidPackets++
				return false
			}
			if st.haveSSRC && sr.SSRC == st.ssrc {
				st.c.SenderReports++
				st.recv.SenderReport(sr.NTPTime, now)
				st.tl.SenderReport(sr.SSRC, sr.NTPTime, sr.RTPTime, now)
			}
			st.roundTrip(p, now)
		case rtcpx.TypeRR:
			st.roundTrip(p, now)
		case rtcpx.TypeBYE:
			_ = rtcpx.ByeSources(p, func(ssrc uint32) {
				if st.haveSSRC && ssrc == st.ssrc {
					st.s.emit(Event{Type: EventRTCPBye, Kind: st.kind, Time: now, SSRC: ssrc})
				}
			})
		}
		return true
	})
	if err != nil {
		st.c.InvalidPackets++
	}
	st.publish()
}

// rtcpFromPeer reports whether RTCP from addr whose first packet's sender
// SSRC is ssrc is the peer's (ok), and whether it teaches where the peer
// wants RTCP (learn). The addresses the SDP names (the RTCP address, and
// the RTP address for peers that mux) and the latched RTP source are the
// peer's. Another port of the same host (a NAT, or an SBC that rewrote the
// SDP) is the peer's only when the packet speaks for the SSRC the peer's
// RTP comes from: RTCP is tied to the latched RTP source, so a stranger's
// reports neither reach the timeline nor decide where ours go.
func (st *stream) rtcpFromPeer(from netip.AddrPort, ssrc uint32) (ok, learn bool) {
	r := st.spec.Remote
	want := st.spec.RemoteRTCP
	if !want.IsValid() && r.IsValid() {
		want = netip.AddrPortFrom(r.Addr(), r.Port()+1)
	}
	switch {
	case r.IsValid() && (from == want || from == r):
		return true, false
	case st.latched && from == st.source:
		return true, false
	case st.latched && from.Addr() == st.source.Addr() && st.haveSSRC && ssrc == st.ssrc:
		return true, true
	}
	return false, false
}

// sendReport sends a compound RTCP report: SR when RTP was sent since the
// last one, else RR, with a reception block for the peer's source, and
// SDES CNAME.
func (st *stream) sendReport(now time.Time) {
	if !st.spec.Remote.IsValid() && !st.latched {
		return
	}
	var reports []rtcp.ReceptionReport
	if st.haveSSRC {
		reports = []rtcp.ReceptionReport{st.recv.Report(st.ssrc, now)}
	}
	var first rtcp.Packet
	if st.sentSince {
		elapsed := now.Sub(st.lastSentAt)
		first = &rtcp.SenderReport{
			SSRC:        st.localSSRC,
			NTPTime:     rtcpx.NTP(now),
			RTPTime:     st.ts + uint32(int64(elapsed)*int64(st.sendRate)/int64(time.Second)),
			PacketCount: st.sentPackets,
			OctetCount:  st.sentOctets,
			Reports:     reports,
		}
		st.sentSince = false
	} else {
		first = &rtcp.ReceiverReport{SSRC: st.localSSRC, Reports: reports}
	}
	st.writeRTCP(now, first, st.sdes())
}

func (st *stream) sdes() rtcp.Packet {
	return &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{
		Source: st.localSSRC,
		Items:  []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: st.s.cname}},
	}}}
}

func (st *stream) writeRTCP(now time.Time, pkts ...rtcp.Packet) {
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		return
	}
	if st.srtpOut != nil {
		if b, err = st.srtpOut.EncryptRTCP(st.encBuf[:0], b, nil); err != nil {
			return
		}
	}
	dst, sk := st.rtcpDestination()
	if !sendable(dst) {
		return
	}
	if _, err := sk.conn.WriteToUDPAddrPort(b, dst); err == nil {
		st.c.RTCPSent++
	}
}
