//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly || windows)

package udp

import (
	"errors"
	"net"
	"net/netip"
	"runtime"
)

const msgTrunc = 0

const pktinfoOptional = true

func openSocket(bind netip.AddrPort, scope int, shared bool, rcvbuf, sndbuf int) (*net.UDPConn, error) {
	return nil, errors.New("not implemented on " + runtime.GOOS)
}

func socketBuffers(uc *net.UDPConn) (rcv, snd int) { return 0, 0 }
