package udp

import (
	"os"

	"golang.org/x/sys/unix"
)

const (
	rcvbufForce = unix.SO_RCVBUFFORCE
	sndbufForce = unix.SO_SNDBUFFORCE
)

// setMulticastAllOff turns IP_MULTICAST_ALL (IPV6_MULTICAST_ALL, Linux 4.20
// and later) off, so that the socket gets multicast only for the groups it
// joined itself, not for every group any socket on the host joined with a
// matching port. An old kernel without IPV6_MULTICAST_ALL is not an error:
// the bind to the group and the destination check still filter.
func setMulticastAllOff(fd, family int) error {
	if family == unix.AF_INET {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
			return os.NewSyscallError("setsockopt IP_MULTICAST_ALL", err)
		}
		return nil
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0); err != nil && err != unix.ENOPROTOOPT {
		return os.NewSyscallError("setsockopt IPV6_MULTICAST_ALL", err)
	}
	return nil
}
