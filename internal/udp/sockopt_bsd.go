//go:build darwin || freebsd || netbsd || openbsd || dragonfly

package udp

// No forcing buffer options off Linux.
const (
	rcvbufForce = -1
	sndbufForce = -1
)

// setMulticastAllOff does nothing: BSD stacks deliver multicast only to
// sockets that joined the group themselves.
func setMulticastAllOff(fd, family int) error { return nil }
