package udp

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"syscall"
)

// Windows: untested, best effort. It cannot bind a socket to a multicast
// address, so a receiver's socket is bound to the wildcard address at port P
// (with SO_REUSEADDR); x/net cannot enable IP_PKTINFO there, so Dst is not
// reported and the destination check does not run; and there is no batching.

const msgTrunc = 0 // Windows reports truncation as an error (WSAEMSGSIZE)

// pktinfoOptional: x/net does not implement the destination address here.
const pktinfoOptional = true

func openSocket(bind netip.AddrPort, scope int, shared bool, rcvbuf, sndbuf int) (*net.UDPConn, error) {
	network := "udp4"
	if bind.Addr().Is6() {
		network = "udp6"
	}
	addr := bind
	if shared {
		unspec := netip.IPv4Unspecified()
		if bind.Addr().Is6() {
			unspec = netip.IPv6Unspecified()
		}
		addr = netip.AddrPortFrom(unspec, bind.Port())
	} else if scope != 0 && needsScope(bind.Addr()) {
		addr = netip.AddrPortFrom(bind.Addr().WithZone(strconv.Itoa(scope)), bind.Port())
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			h := syscall.Handle(fd)
			if shared {
				serr = syscall.SetsockoptInt(h, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			}
			if rcvbuf > 0 {
				syscall.SetsockoptInt(h, syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}
			if sndbuf > 0 {
				syscall.SetsockoptInt(h, syscall.SOL_SOCKET, syscall.SO_SNDBUF, sndbuf)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		return nil, err
	}
	return pc.(*net.UDPConn), nil
}

func socketBuffers(uc *net.UDPConn) (rcv, snd int) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0, 0
	}
	rc.Control(func(fd uintptr) {
		rcv, _ = syscall.GetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
		snd, _ = syscall.GetsockoptInt(syscall.Handle(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	})
	return rcv, snd
}
