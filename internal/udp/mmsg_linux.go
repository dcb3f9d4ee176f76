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
// Offloads (design.md §3), as in wireguard-go's conn/ and quic-go:
//
//   - GSO: WriteBatch gathers runs of consecutive datagrams with the same
//     destination and size (the last may be shorter) into one message
//     header whose iovecs are the datagrams and whose control message is
//     UDP_SEGMENT with the size. The kernel sends them as one skb and
//     segments it as late as possible (on lo: never; the receiving socket
//     gets the super-datagram, or its segments if it has no UDP_GRO).
//     Checked with getsockopt(UDP_SEGMENT) at open; a send refused with
//     EIO, EINVAL or EMSGSIZE turns GSO off for the Conn and is retried
//     without it.
//   - GRO: setsockopt(UDP_GRO) at open (failure: off). The kernel may then
//     return many datagrams of one sender in one buffer, with a UDP_GRO
//     control message giving the segment size. Such a buffer can be 64 KiB
//     long, and a shorter buffer would truncate it (losing all the
//     datagrams in it), so a GRO reader reads into groSlots buffers of its
//     own and copies the segments out into the caller's Datagrams, one per
//     entry, keeping what does not fit for the next ReadBatch.

// oobSize is the control buffer per message: IPV6_PKTINFO needs 40 bytes, a
// UDP_GRO or UDP_SEGMENT cmsg 24 more.
const oobSize = 128

// maxEINTR bounds the retries of a system call interrupted by a signal.
const maxEINTR = 100

const (
	// maxGSOSegments is the most datagrams in one UDP_SEGMENT send (the
	// kernel's UDP_MAX_SEGMENTS was 64 before Linux 6.9, 128 since).
	maxGSOSegments = 64
	// maxGSOBytes is the most payload in one UDP_SEGMENT send. An IPv4
	// datagram holds 65535 bytes less the IP and UDP headers, but the
	// kernel segments in software (skb_segment, per packet, in the
	// sender's system call) any GSO packet whose length with its link
	// header reaches the device's gso_max_size (64 KiB by default, on
	// loopback too): 1424-byte segments in runs of 46 made 65546 bytes with
	// Ethernet's 14, and cost the sender 4 times the CPU of runs of 45.
	// Leave room for IPv6's header and a link header of up to 128 bytes.
	maxGSOBytes = 65536 - 40 - 8 - 128
	// groSlots is the number of coalesced buffers one GRO recvmmsg reads;
	// groBufSize their size (a UDP GRO skb is at most 64 KiB).
	groSlots   = 16
	groBufSize = 1 << 16
)

// mmsg is the state of one direction (read or write) of batched I/O. It is
// used by one goroutine at a time.
type mmsg struct {
	rc    syscall.RawConn
	hs    []unix.Mmsghdr
	iov   []unix.Iovec
	names []unix.RawSockaddrInet6 // also holds RawSockaddrInet4
	oob   []byte                  // MaxBatch*oobSize, 8-byte aligned

	// Write side: GSO.
	gso    bool          // use UDP_SEGMENT (owned by the writer)
	gsoMTU int           // largest segment: interface MTU less IP and UDP headers
	runs   [MaxBatch]int // datagrams per message header of the last send
	// forceErr, when not 0, is returned instead of sending a message
	// header that carries UDP_SEGMENT: a test hook for the fallback.
	forceErr unix.Errno

	// Read side: GRO; nil when off.
	gro *groReader

	// try: a read returns at once, with n = 0, when nothing is queued
	// (TryReadBatch).
	try bool

	// Arguments and results of the system call, for the prebound funcs.
	vlen   int
	n      int
	errno  unix.Errno
	recvFn func(fd uintptr) bool
	sendFn func(fd uintptr) bool
}

// groReader holds the coalesced buffers of the last GRO recvmmsg and how
// far they have been handed out.
type groReader struct {
	bufs  [groSlots][]byte
	lens  [groSlots]int // bytes in each
	segs  [groSlots]int // segment size from UDP_GRO; 0: one datagram
	trunc [groSlots]bool
	addrs [groSlots]netip.AddrPort
	dsts  [groSlots]netip.Addr
	n     int // slots filled
	slot  int // next slot to hand out
	off   int // offset of the next segment in it
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

// enableGSO turns GSO on if the kernel has it (getsockopt UDP_SEGMENT
// works) and the interface MTU is known; mtu is the interface MTU.
func (m *mmsg) enableGSO(mtu int, v6 bool) bool {
	hdr := 20 + 8
	if v6 {
		hdr = 40 + 8
	}
	if mtu <= hdr {
		return false
	}
	var err error
	cerr := m.rc.Control(func(fd uintptr) {
		_, err = unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT)
	})
	m.gso = cerr == nil && err == nil
	m.gsoMTU = mtu - hdr
	return m.gso
}

// setsockoptGRO turns UDP_GRO on or off; a variable so that tests can make
// it fail.
var setsockoptGRO = func(fd int, on bool) error {
	v := 0
	if on {
		v = 1
	}
	return unix.SetsockoptInt(fd, unix.IPPROTO_UDP, unix.UDP_GRO, v)
}

// enableGRO turns UDP_GRO on and allocates the coalesced buffers; on
// failure the reader goes on without.
func (m *mmsg) enableGRO() bool {
	var err error
	cerr := m.rc.Control(func(fd uintptr) { err = setsockoptGRO(int(fd), true) })
	if cerr != nil || err != nil {
		return false
	}
	g := &groReader{}
	mem := make([]byte, groSlots*groBufSize)
	for i := range g.bufs {
		g.bufs[i] = mem[i*groBufSize : (i+1)*groBufSize : (i+1)*groBufSize]
	}
	m.gro = g
	return true
}

// disableGRO turns UDP_GRO off (tests use it before the generic reader,
// which does not split).
func (m *mmsg) disableGRO() {
	m.rc.Control(func(fd uintptr) { setsockoptGRO(int(fd), false) })
	m.gro = nil
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
			if m.try {
				m.n, m.errno = 0, 0
				return true
			}
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
	setIov(&m.iov[i], b)
	m.setHdrIov(i, i, 1, namelen)
	h := &m.hs[i]
	if oob {
		h.Hdr.Control = &m.oob[i*oobSize]
		h.Hdr.SetControllen(oobSize)
	}
}

func setIov(iov *unix.Iovec, b []byte) {
	if len(b) > 0 {
		iov.Base = &b[0]
	} else {
		iov.Base = nil
	}
	iov.SetLen(len(b))
}

// setHdrIov points message header i at the iovecs iov[first:first+n] and
// socket address slot i, without control messages.
func (m *mmsg) setHdrIov(i, first, n int, namelen uint32) {
	h := &m.hs[i]
	h.Len = 0
	h.Hdr.Name = (*byte)(unsafe.Pointer(&m.names[i]))
	h.Hdr.Namelen = namelen
	h.Hdr.Iov = &m.iov[first]
	h.Hdr.SetIovlen(n)
	h.Hdr.Control = nil
	h.Hdr.SetControllen(0)
	h.Hdr.Flags = 0
}

// setSegment adds a UDP_SEGMENT control message with size to header i.
func (m *mmsg) setSegment(i int, size int) {
	b := m.oob[i*oobSize : (i+1)*oobSize]
	c := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	c.Level = unix.SOL_UDP
	c.Type = unix.UDP_SEGMENT
	c.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = uint16(size)
	h := &m.hs[i]
	h.Hdr.Control = &b[0]
	h.Hdr.SetControllen(unix.CmsgSpace(2))
}

// readMmsg reads up to min(len(ds), MaxBatch) datagrams with one recvmmsg.
func (c *Conn) readMmsg(ds []Datagram) (int, error) {
	m := c.rmm
	if m.gro != nil {
		return c.readGRO(ds)
	}
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
		d.Dst, _ = parseCmsgs(m.oob[off : off+min(int(h.Hdr.Controllen), oobSize)])
		c.rflags[i] = 0
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			c.rflags[i] |= flagTruncated
		}
		m.iov[i].Base = nil // do not keep the caller's buffer alive
	}
	return m.n, nil
}

// readGRO hands out the datagrams of the coalesced buffers, reading more
// with one recvmmsg when none are left.
func (c *Conn) readGRO(ds []Datagram) (int, error) {
	m := c.rmm
	g := m.gro
	if g.slot >= g.n {
		for i := range groSlots {
			m.setHdr(i, g.bufs[i], unix.SizeofSockaddrInet6, true)
		}
		m.vlen = groSlots
		g.n, g.slot, g.off = 0, 0, 0
		if err := m.rc.Read(m.recvFn); err != nil {
			return 0, err
		}
		if m.errno != 0 {
			return 0, os.NewSyscallError("recvmmsg", m.errno)
		}
		coalesced := 0
		for i := range m.n {
			h := &m.hs[i]
			g.lens[i] = int(h.Len)
			g.addrs[i] = sockaddrToAddrPort(&m.names[i])
			off := i * oobSize
			g.dsts[i], g.segs[i] = parseCmsgs(m.oob[off : off+min(int(h.Hdr.Controllen), oobSize)])
			g.trunc[i] = h.Hdr.Flags&unix.MSG_TRUNC != 0
			if g.segs[i] > 0 && g.segs[i] < g.lens[i] && !g.trunc[i] {
				coalesced++
			}
		}
		g.n = m.n
		if coalesced > 0 {
			c.nGRO.Add(uint64(coalesced))
		}
	}
	// Each round hands out one datagram and moves g.off or g.slot forward.
	k := 0
	for k < len(ds) && k < MaxBatch && g.slot < g.n {
		i := g.slot
		total := g.lens[i]
		seg := g.segs[i]
		if seg <= 0 || seg > total || g.trunc[i] {
			seg = total
		}
		l := min(seg, total-g.off)
		d := &ds[k]
		c.rflags[k] = 0
		switch {
		case g.trunc[i] || l > len(d.Buf):
			c.rflags[k] = flagTruncated
			d.N = 0
		default:
			d.N = copy(d.Buf, g.bufs[i][g.off:g.off+l])
		}
		d.Addr, d.Dst = g.addrs[i], g.dsts[i]
		k++
		if g.off += l; g.off >= total {
			g.slot++
			g.off = 0
		}
	}
	return k, nil
}

// writeMmsg sends ds with as many sendmmsg calls as it takes.
func (c *Conn) writeMmsg(ds []Datagram) (int, error) {
	m := c.wmm
	sent := 0
	// Each round sends at least one datagram, turns GSO off (once), or
	// returns, so the loop ends.
	for sent < len(ds) {
		n := min(len(ds)-sent, MaxBatch) // datagrams this round
		k, nh := 0, 0                    // datagrams and message headers set up
		var bad error
		for k < n {
			d := &ds[sent+k]
			namelen, err := c.putSockaddr(&m.names[nh], d.Addr)
			if err != nil {
				bad = err
				break
			}
			run := 1
			if m.gso {
				run = m.gsoRun(ds[sent+k : sent+n])
			}
			for j := range run {
				d := &ds[sent+k+j]
				setIov(&m.iov[k+j], d.Buf[:d.N])
			}
			m.setHdrIov(nh, k, run, namelen)
			if run > 1 {
				m.setSegment(nh, d.N)
			}
			m.runs[nh] = run
			k += run
			nh++
		}
		if nh > 0 {
			m.vlen = nh
			var err error
			if m.forceErr != 0 && m.runs[0] > 1 {
				m.n, m.errno = 0, m.forceErr
			} else {
				err = m.rc.Write(m.sendFn)
			}
			for i := range k {
				m.iov[i].Base = nil
			}
			if err != nil {
				return sent, err
			}
			if m.errno != 0 {
				// sendmmsg fails only when its first message does.
				if m.runs[0] > 1 && (m.errno == unix.EIO || m.errno == unix.EINVAL || m.errno == unix.EMSGSIZE) {
					m.gso = false
					c.gsoOn.Store(false)
					c.nGSOFallback.Add(1)
					continue // resend without GSO
				}
				return sent, os.NewSyscallError("sendmmsg", m.errno)
			}
			if m.n <= 0 {
				return sent, io.ErrShortWrite
			}
			gso := 0
			for _, r := range m.runs[:min(m.n, nh)] {
				sent += r
				if r > 1 {
					gso++
				}
			}
			if gso > 0 {
				c.nGSO.Add(uint64(gso))
			}
			if m.n < nh {
				continue // partial batch: send the rest
			}
		}
		if bad != nil {
			return sent, bad
		}
	}
	return sent, nil
}

// gsoRun returns how many datagrams from ds[0] on can go in one UDP_SEGMENT
// send: same destination, same size (the last may be shorter), at most
// maxGSOSegments and maxGSOBytes, each small enough to go out unfragmented.
// 1 means send ds[0] alone.
func (m *mmsg) gsoRun(ds []Datagram) int {
	first := &ds[0]
	size := first.N
	if size <= 0 || size > m.gsoMTU {
		return 1
	}
	total, run := size, 1
	for run < len(ds) && run < maxGSOSegments {
		d := &ds[run]
		if d.N <= 0 || d.N > size || total+d.N > maxGSOBytes || d.Addr != first.Addr {
			break
		}
		total += d.N
		run++
		if d.N < size {
			break // a shorter one ends the run
		}
	}
	return run
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
// IPV6_PKTINFO control message in oob, or the zero Addr.
func parseDst(oob []byte) netip.Addr {
	dst, _ := parseCmsgs(oob)
	return dst
}

// parseCmsgs returns the destination address from an IP_PKTINFO or
// IPV6_PKTINFO control message in oob (or the zero Addr) and the segment
// size from a UDP_GRO control message (or 0). It does not allocate. oob
// must be aligned for unix.Cmsghdr.
func parseCmsgs(oob []byte) (dst netip.Addr, seg int) {
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
			dst = netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			dst = netip.AddrFrom16([16]byte(data[0:16]))
		case h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 4:
			seg = int(*(*int32)(unsafe.Pointer(&data[0])))
		}
		next := cmsgAlign(l)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return dst, seg
}
