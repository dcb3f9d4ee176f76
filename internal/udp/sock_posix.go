//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package udp

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// msgTrunc is the recvmsg flag of a datagram larger than the buffer.
const msgTrunc = unix.MSG_TRUNC

// pktinfoOptional: the destination address is available on this platform,
// so failing to enable it is an error.
const pktinfoOptional = false

// openSocket opens a UDP socket bound to bind (scope: the interface index for
// an address that needs a zone, else 0). A shared socket (a receiver's
// socket bound to the group) gets SO_REUSEADDR and SO_REUSEPORT, and on
// Linux IP_MULTICAST_ALL/IPV6_MULTICAST_ALL off; otherwise the bind is
// exclusive. rcvbuf and sndbuf, when not 0, are requested buffer sizes.
//
// The socket is made by hand rather than with net.ListenUDP because the net
// package, given a multicast address, binds the wildcard address instead
// (and sets SO_REUSEADDR itself); binding the group is what keeps other
// groups on port P out, and the exclusive bind is what gives a source its
// unicast address:P alone.
func openSocket(bind netip.AddrPort, scope int, shared bool, rcvbuf, sndbuf int) (*net.UDPConn, error) {
	family := unix.AF_INET
	if bind.Addr().Is6() {
		family = unix.AF_INET6
	}
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, unix.SOCK_DGRAM, unix.IPPROTO_UDP)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := setupFD(fd, family, bind, scope, shared, rcvbuf, sndbuf); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "udp "+bind.String())
	pc, err := net.FilePacketConn(f) // dups fd
	f.Close()
	if err != nil {
		return nil, err
	}
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return nil, fmt.Errorf("socket is a %T, not a *net.UDPConn", pc)
	}
	return uc, nil
}

func setupFD(fd, family int, bind netip.AddrPort, scope int, shared bool, rcvbuf, sndbuf int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return os.NewSyscallError("setnonblock", err)
	}
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	if shared {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return os.NewSyscallError("setsockopt SO_REUSEADDR", err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return os.NewSyscallError("setsockopt SO_REUSEPORT", err)
		}
		if err := setMulticastAllOff(fd, family); err != nil {
			return err
		}
	}
	if rcvbuf > 0 {
		setBuffer(fd, unix.SO_RCVBUF, rcvbufForce, rcvbuf)
	}
	if sndbuf > 0 {
		setBuffer(fd, unix.SO_SNDBUF, sndbufForce, sndbuf)
	}
	var sa unix.Sockaddr
	if family == unix.AF_INET {
		sa = &unix.SockaddrInet4{Port: int(bind.Port()), Addr: bind.Addr().As4()}
	} else {
		sa = &unix.SockaddrInet6{Port: int(bind.Port()), ZoneId: uint32(scope), Addr: bind.Addr().As16()}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return os.NewSyscallError("bind", err)
	}
	return nil
}

// setBuffer sets a socket buffer size: first with the forcing option (Linux,
// needs CAP_NET_ADMIN; force < 0 means none), then with the plain one, which
// Linux caps silently and BSDs refuse above their limit, in which case
// smaller sizes are tried. Failure is not an error: the default stays.
func setBuffer(fd, opt, force, size int) {
	if force >= 0 && unix.SetsockoptInt(fd, unix.SOL_SOCKET, force, size) == nil {
		return
	}
	// At most 20 halvings: from 2 GiB to 2 KiB.
	for range 20 {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, size) == nil || size <= 64<<10 {
			return
		}
		size /= 2
	}
}

// socketBuffers returns SO_RCVBUF and SO_SNDBUF as the kernel reports them.
func socketBuffers(uc *net.UDPConn) (rcv, snd int) {
	rc, err := uc.SyscallConn()
	if err != nil {
		return 0, 0
	}
	rc.Control(func(fd uintptr) {
		rcv, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		snd, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF)
	})
	return rcv, snd
}
