package whep

import (
	"net"
	"net/netip"
)

// ICEAddrs picks Config.ICEIPs and Config.PublicIPs for a server whose SIP
// side listens on sipAddr ("host:port") and is reached at public (invalid
// when it has no public address of its own), on a machine with the
// addresses local, so that an answer never shows every address of the
// machine (docker bridges, VPNs):
//
//   - public when it is one of local;
//   - when it is not (a 1:1 NAT), public is advertised (publics) in place of
//     the concrete host of sipAddr, on which ICE gathers;
//   - without public, the concrete host of sipAddr, else the first
//     non-loopback IPv4 address of local (the one calls write in their SDP)
//     and loopback (viewers on this machine).
//
// Nil local means the machine's interface addresses. Set
// Config.PublicIPsOnly when publics is not empty.
func ICEAddrs(sipAddr string, public netip.Addr, local []netip.Addr) (ice, publics []netip.Addr) {
	if local == nil {
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				local = append(local, p.Addr())
			}
		}
	}
	var sipHost netip.Addr
	if h, _, err := net.SplitHostPort(sipAddr); err == nil {
		if a, err := netip.ParseAddr(h); err == nil && !a.IsUnspecified() {
			sipHost = a.Unmap()
		}
	}
	if public.IsValid() {
		for _, a := range local {
			if a.Unmap() == public.Unmap() {
				return []netip.Addr{public.Unmap()}, nil
			}
		}
		if sipHost.IsValid() {
			ice = []netip.Addr{sipHost}
		}
		return ice, []netip.Addr{public.Unmap()}
	}
	if sipHost.IsValid() {
		return []netip.Addr{sipHost}, nil
	}
	for _, a := range local {
		if a = a.Unmap(); a.Is4() && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
			return []netip.Addr{a, netip.MustParseAddr("127.0.0.1")}, nil
		}
	}
	return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
}
