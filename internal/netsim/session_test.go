package netsim

import "net"

// PacketConn mirrors media/session.PacketConn, which netsim cannot import
// (session's tests import netsim); the interop tests that hand a RecvConn
// to callmgr.Config.MediaListen check the real interface. A RecvConn is
// one, and wraps one.
var (
	_ PacketConn = (*RecvConn)(nil)
	_ PacketConn = (*net.UDPConn)(nil)
)
