package udp

import (
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched I/O on Linux: recvmmsg and sendmmsg on the socket's RawConn with
// message headers, iovecs, socket addresses and control buffers allocated
// once per Conn and reused.
//
// Why not x/net's ipv4.PacketConn.ReadBatch/WriteBatch: they make the same
// system calls, but on every read they allocate a net.IP and a *net.UDPAddr
// per message (internal/socket parseInetAddr), the cmsg parser
// (ipv4.ControlMessage.Parse) allocates a slice, and writes need a net.Addr per
// message. This code does neither; see TestAllocs and BenchmarkXNetBatch.
//
// The control buffer per message (oobSize) is larger than IP_PKTINFO needs so
// that UDP_GRO (one int) fits when it is added, and the write side has the same
// layout so that UDP_SEGMENT can be appended per message.

// oobSize is the control buffer per message: IPV6_PKTINFO needs 40 bytes, a
// UDP_GRO or UDP_SEGMENT cmsg 24 more.
const oobSize = 128

// maxEINTR bounds the retries of a system call interrupted by a signal.
const maxEINTR = 100

// mmsg is the state of one direction (read or write) of batched I/O. It is
// used by one goroutine at a time.
type mmsg struct {
	rc    syscall.RawConn
	hs    []unix.Mmsghdr
	iov   []unix.Iovec
	names []unix.RawSockaddrInet6 // also holds RawSockaddrInet4
	oob   []byte                  // MaxBatch*oobSize, 8-byte aligned

	// Arguments and results of the system call, for the prebound funcs.
	vlen   int
	n      int
	errno  unix.Errno
	recvFn func(fd uintptr) bool
	sendFn func(fd uintptr) bool
}

func newMmsg(uc *net.UDPConn) *mmsg {
	rc, err := uc.SyscallConn()
	if err != nil {
		return nil // cannot happen for a *net.UDPConn; fall back
	}
	m := &mmsg{
		rc:    rc,
		hs:    make([]unix.Mmsghdr, MaxBatch),
		iov:   make([]unix.Iovec, MaxBatch),
		names: make([]unix.RawSockaddrInet6, MaxBatch),
	}
	words := make([]uint64, MaxBatch*oobSize/8) // aligned for the cmsg headers
	m.oob = unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	m.recvFn = m.recv
	m.sendFn = m.send
	return m
}

func (m *mmsg) recv(fd uintptr) bool {
	for range maxEINTR {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.hs[0])), uintptr(m.vlen), 0, 0, 0)
		switch e {
		case 0:
			m.n, m.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until readable
		default:
			m.n, m.errno = 0, e
			return true
		}
	}
	m.n, m.errno = 0, unix.EINTR
	return true
}

func (m *mmsg) send(fd uintptr) bool {
	for range maxEINTR {
		n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.hs[0])), uintptr(m.vlen), 0, 0, 0)
		switch e {
		case 0:
			m.n, m.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait until writable
		default:
			m.n, m.errno = 0, e
			return true
		}
	}
	m.n, m.errno = 0, unix.EINTR
	return true
}

// setHdr points message header i at the buffer b, the socket address slot i
// (of length namelen) and, if oob, the control buffer slot i.
func (m *mmsg) setHdr(i int, b []byte, namelen uint32, oob bool) {
	iov := &m.iov[i]
	if len(b) > 0 {
		iov.Base = &b[0]
	} else {
		iov.Base = nil
	}
	iov.SetLen(len(b))
	h := &m.hs[i]
	h.Len = 0
	h.Hdr.Name = (*byte)(unsafe.Pointer(&m.names[i]))
	h.Hdr.Namelen = namelen
	h.Hdr.Iov = iov
	h.Hdr.SetIovlen(1)
	if oob {
		h.Hdr.Control = &m.oob[i*oobSize]
		h.Hdr.SetControllen(oobSize)
	} else {
		h.Hdr.Control = nil
		h.Hdr.SetControllen(0)
	}
	h.Hdr.Flags = 0
}

// readMmsg reads up to min(len(ds), MaxBatch) datagrams with one recvmmsg.
func (c *Conn) readMmsg(ds []Datagram) (int, error) {
	m := c.rmm
	n := min(len(ds), MaxBatch)
	for i := range n {
		m.setHdr(i, ds[i].Buf, unix.SizeofSockaddrInet6, true)
	}
	m.vlen = n
	if err := m.rc.Read(m.recvFn); err != nil {
		return 0, err
	}
	if m.errno != 0 {
		return 0, os.NewSyscallError("recvmmsg", m.errno)
	}
	for i := range m.n {
		h := &m.hs[i]
		d := &ds[i]
		d.N = int(h.Len)
		d.Addr = sockaddrToAddrPort(&m.names[i])
		off := i * oobSize
		d.Dst = parseDst(m.oob[off : off+min(int(h.Hdr.Controllen), oobSize)])
		c.rflags[i] = 0
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			c.rflags[i] |= flagTruncated
		}
		m.iov[i].Base = nil // do not keep the caller's buffer alive
	}
	return m.n, nil
}

// writeMmsg sends ds with as many sendmmsg calls as it takes.
func (c *Conn) writeMmsg(ds []Datagram) (int, error) {
	m := c.wmm
	sent := 0
	// Each round sends at least one datagram or returns, so the loop ends.
	for sent < len(ds) {
		n := min(len(ds)-sent, MaxBatch)
		k := 0
		var bad error
		for ; k < n; k++ {
			d := &ds[sent+k]
			namelen, err := c.putSockaddr(&m.names[k], d.Addr)
			if err != nil {
				bad = err
				break
			}
			m.setHdr(k, d.Buf[:d.N], namelen, false)
		}
		if k > 0 {
			m.vlen = k
			err := m.rc.Write(m.sendFn)
			for i := range k {
				m.iov[i].Base = nil
			}
			if err != nil {
				return sent, err
			}
			if m.errno != 0 {
				return sent, os.NewSyscallError("sendmmsg", m.errno)
			}
			if m.n <= 0 {
				return sent, io.ErrShortWrite
			}
			sent += m.n
			if m.n < k {
				continue // partial batch: send the rest
			}
		}
		if bad != nil {
			return sent, bad
		}
	}
	return sent, nil
}

// putSockaddr writes the socket address for sending to to into sa and
// returns its length.
func (c *Conn) putSockaddr(sa *unix.RawSockaddrInet6, to netip.AddrPort) (uint32, error) {
	a := to.Addr()
	if !c.v6 {
		a = a.Unmap()
		if !a.Is4() {
			return 0, errFamily{to}
		}
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		putPort(&sa4.Port, to.Port())
		sa4.Addr = a.As4()
		sa4.Zero = [8]uint8{}
		return unix.SizeofSockaddrInet4, nil
	}
	if !a.Is6() || a.Is4In6() {
		return 0, errFamily{to}
	}
	sa.Family = unix.AF_INET6
	putPort(&sa.Port, to.Port())
	sa.Flowinfo = 0
	sa.Addr = a.As16()
	sa.Scope_id = c.scopeID(a)
	return unix.SizeofSockaddrInet6, nil
}

// putPort stores port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

// sockaddrToAddrPort converts a received socket address; the zone of an
// IPv6 address is dropped (all traffic of a Conn is on its interface).
func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), getPort(&sa4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), getPort(&sa.Port))
	}
	return netip.AddrPort{}
}

// cmsgAlign rounds up to the alignment of control messages (sizeof(long)).
func cmsgAlign(n int) int {
	const a = int(unsafe.Sizeof(uintptr(0)))
	return (n + a - 1) &^ (a - 1)
}

// parseDst returns the destination address from an IP_PKTINFO or
// IPV6_PKTINFO control message in oob, or the zero Addr. It does not
// allocate. oob must be aligned for unix.Cmsghdr.
func parseDst(oob []byte) netip.Addr {
	hdrLen := cmsgAlign(unix.SizeofCmsghdr)
	// Each round consumes at least one aligned header, so the loop ends.
	for len(oob) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdrLen || l > len(oob) {
			break
		}
		data := oob[hdrLen:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }:
			// ipi_addr is the destination in the IP header.
			return netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			return netip.AddrFrom16([16]byte(data[0:16]))
		}
		next := cmsgAlign(l)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return netip.Addr{}
}
