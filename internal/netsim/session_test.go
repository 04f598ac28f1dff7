package netsim

import (
	"net"
	"net/netip"
)

// packetConn mirrors media/session.PacketConn, which netsim cannot import
// (session's tests import netsim). The interop tests that hand a
// RecvConn to callmgr.Config.MediaListen check the real interface.
type packetConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	LocalAddr() net.Addr
	Close() error
}

var _ packetConn = (*RecvConn)(nil)
