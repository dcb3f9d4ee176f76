package udp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Config describes one endpoint. The zero value of every field except Group
// selects a default. A Config must not be modified while Open* runs.
type Config struct {
	// Group is the multicast group and the port P used for everything:
	// data, SPM, NCF and RDATA go to Group; NAKs and SPMRs go unicast to
	// the source's address at port P (design.md §4). IPv4 or IPv6;
	// required. A zone on an IPv6 group names the interface when Interface
	// is nil.
	Group netip.AddrPort

	// Interface is the interface to send on and join on. Nil picks a
	// default: the first interface (in the order of net.Interfaces, i.e.
	// by index) that is up, multicast-capable, not loopback and has an
	// address of the group's family (for IPv6 a link-local address is
	// enough); if there is none, the up loopback interface. Note that Linux
	// does not deliver IPv6 multicast on lo, so an IPv6 fallback to lo
	// opens but receives nothing.
	Interface *net.Interface

	// Addr is the unicast address of the endpoint. A source binds it
	// (exclusively, at port P) and advertises it as its NLA; a receiver
	// sends its NAKs and SPMRs from it (at an ephemeral port). Zero: the
	// interface's first address of the group's family. It need not be
	// listed on the interface: any local address works, e.g. 127.0.0.2
	// for a second source on one host.
	Addr netip.Addr

	// TTL is the multicast TTL (IPv4) or hop limit (IPv6); 0 means 1.
	TTL int

	// Loopback sets IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP on the sending
	// socket, so that receivers on this host get what this endpoint sends
	// to the group.
	Loopback bool

	// ReadBuffer and WriteBuffer are the SO_RCVBUF / SO_SNDBUF sizes
	// requested; 0 means DefaultBufferSize. On Linux SO_RCVBUFFORCE /
	// SO_SNDBUFFORCE are tried first (they work with CAP_NET_ADMIN) and the
	// plain options are the fallback, which the kernel caps at
	// net.core.rmem_max / wmem_max. A capped size is not an error; see
	// Conn.Buffers for what was granted.
	ReadBuffer, WriteBuffer int

	// NoGSO and NoGRO turn off UDP generic segmentation offload on send
	// (UDP_SEGMENT) and generic receive offload on receive (UDP_GRO), which
	// are on by default where the kernel has them (Linux 4.18 and 5.0 and
	// later). They change nothing on the wire, only the number of system
	// calls and packets the kernel handles; benchmarks turn them off to
	// compare.
	NoGSO, NoGRO bool
}

// DefaultBufferSize is the socket buffer size used when Config.ReadBuffer or
// Config.WriteBuffer is 0: what a 1 Gbit/s sender needs.
const DefaultBufferSize = 4 << 20

// MaxBatch is the number of datagrams moved by one recvmmsg/sendmmsg call:
// ReadBatch returns at most this many (a reader gains nothing from a longer
// ds); WriteBatch writes larger batches in several calls.
const MaxBatch = 64

// Per-datagram read flags, set by the platform readers.
const (
	flagTruncated uint8 = 1 << iota
)

// Stats are the counters of a Conn. All are totals since Open.
type Stats struct {
	DatagramsRead    uint64 // datagrams returned by ReadBatch
	BytesRead        uint64 // their payload bytes
	DatagramsWritten uint64 // datagrams sent by WriteBatch
	BytesWritten     uint64 // their payload bytes
	DroppedWrongDst  uint64 // read but dropped: destination was not the group (receivers)
	DroppedTruncated uint64 // read but dropped: larger than the buffer given to ReadBatch
	ReadErrors       uint64 // ReadBatch calls that failed (not counting after Close)
	WriteErrors      uint64 // WriteBatch calls that failed (not counting after Close)

	// GSOWrites counts the coalesced sends: one UDP_SEGMENT send carries
	// two or more of the datagrams counted in DatagramsWritten.
	GSOWrites uint64
	// GROReads counts the coalesced reads: one UDP_GRO buffer that held
	// two or more of the datagrams counted in DatagramsRead.
	GROReads uint64
	// GSOFallbacks counts the sends the kernel refused with UDP_SEGMENT
	// (then GSO is turned off for the Conn and the datagrams resent
	// without it): 0 or 1.
	GSOFallbacks uint64
}

// Conn is the socket endpoint of a PGM source or receiver. It implements
// Transport: one goroutine may read while another writes; Close may be
// called from any goroutine.
type Conn struct {
	role  string         // "source" or "receiver", for errors
	group netip.AddrPort // no zone
	ifi   *net.Interface
	local netip.Addr // no zone
	v6    bool
	// filterDst: drop datagrams whose destination is not the group.
	filterDst bool

	recv *net.UDPConn // read by ReadBatch
	send *net.UDPConn // written by WriteBatch; == recv for a source

	rbuf, wbuf int // socket buffer sizes granted by the kernel

	// Read side, owned by the reading goroutine.
	rmm    *mmsg // batched reader; nil: one datagram per call (readGeneric)
	rflags [MaxBatch]uint8
	roob   []byte // control message buffer for readGeneric
	cm4    ipv4.ControlMessage
	cm6    ipv6.ControlMessage

	// Write side, owned by the writing goroutine.
	wmm *mmsg // batched writer; nil: one datagram per call (writeGeneric)

	// Offloads in use (Linux): set by the open and by the writer when the
	// kernel refuses GSO; read by Offload.
	gsoOn, groOn atomic.Bool
	noGSO, noGRO bool // Config.NoGSO, NoGRO

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error

	nRead, nReadBytes, nWritten, nWrittenBytes atomic.Uint64
	nWrongDst, nTrunc, nReadErr, nWriteErr     atomic.Uint64
	nGSO, nGRO, nGSOFallback                   atomic.Uint64
}

var _ Transport = (*Conn)(nil)

// endpoint is a validated Config.
type endpoint struct {
	group  netip.AddrPort // no zone
	ifi    *net.Interface
	local  netip.Addr // no zone
	v6     bool
	ttl    int
	loop   bool
	rbuf   int
	wbuf   int
	gscope int // scope (interface index) for binding the group; 0 if none
	lscope int // scope for binding local; 0 if none
	noGSO  bool
	noGRO  bool
}

// resolve validates cfg and fills in the defaults.
func resolve(cfg Config) (*endpoint, error) {
	g := cfg.Group.Addr()
	if !g.IsValid() {
		return nil, errors.New("udp: Config.Group is required")
	}
	zone := g.Zone()
	g = g.WithZone("").Unmap()
	if !g.IsMulticast() {
		return nil, fmt.Errorf("udp: group %v is not a multicast address", g)
	}
	if cfg.Group.Port() == 0 {
		return nil, fmt.Errorf("udp: group %v: port 0 is not allowed", g)
	}
	ttl := cfg.TTL
	if ttl == 0 {
		ttl = 1
	}
	if ttl < 1 || ttl > 255 {
		return nil, fmt.Errorf("udp: TTL %d out of range 1..255", cfg.TTL)
	}
	if cfg.ReadBuffer < 0 || cfg.WriteBuffer < 0 {
		return nil, errors.New("udp: negative buffer size")
	}
	e := &endpoint{
		group: netip.AddrPortFrom(g, cfg.Group.Port()),
		v6:    g.Is6(),
		ttl:   ttl,
		loop:  cfg.Loopback,
		rbuf:  orDefault(cfg.ReadBuffer, DefaultBufferSize),
		wbuf:  orDefault(cfg.WriteBuffer, DefaultBufferSize),
		noGSO: cfg.NoGSO,
		noGRO: cfg.NoGRO,
	}
	local := cfg.Addr.Unmap()
	if local.IsValid() {
		if local.Is6() != e.v6 {
			return nil, fmt.Errorf("udp: Config.Addr %v and group %v are of different address families", cfg.Addr, g)
		}
		if local.IsMulticast() || local.IsUnspecified() {
			return nil, fmt.Errorf("udp: Config.Addr %v is not a unicast address", cfg.Addr)
		}
	}
	ifi := cfg.Interface
	if ifi == nil && zone != "" {
		var err error
		if ifi, err = interfaceByZone(zone); err != nil {
			return nil, fmt.Errorf("udp: group %v: zone %q: %w", cfg.Group.Addr(), zone, err)
		}
	}
	if ifi == nil {
		var err error
		if ifi, err = defaultInterface(e.v6); err != nil {
			return nil, err
		}
	}
	e.ifi = ifi
	if !local.IsValid() {
		var err error
		if local, err = firstAddr(ifi, e.v6); err != nil {
			return nil, err
		}
	}
	e.local = local.WithZone("")
	if needsScope(e.group.Addr()) {
		e.gscope = ifi.Index
	}
	if needsScope(e.local) {
		e.lscope = ifi.Index
	}
	return e, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// needsScope reports whether an IPv6 address is only meaningful together
// with an interface (a zone): link-local unicast, link-local and
// interface-local multicast.
func needsScope(a netip.Addr) bool {
	return a.Is6() && !a.Is4In6() &&
		(a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast())
}

func interfaceByZone(zone string) (*net.Interface, error) {
	if n, err := strconv.Atoi(zone); err == nil {
		return net.InterfaceByIndex(n)
	}
	return net.InterfaceByName(zone)
}

// defaultInterface implements the choice documented on Config.Interface.
func defaultInterface(v6 bool) (*net.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("udp: list interfaces: %w", err)
	}
	var lo *net.Interface
	for i := range ifs {
		ifi := &ifs[i]
		if ifi.Flags&net.FlagUp == 0 {
			continue
		}
		if ifi.Flags&net.FlagLoopback != 0 {
			if lo == nil {
				if _, err := firstAddr(ifi, v6); err == nil {
					lo = ifi
				}
			}
			continue
		}
		if ifi.Flags&net.FlagMulticast == 0 {
			continue
		}
		if _, err := firstAddr(ifi, v6); err == nil {
			return ifi, nil
		}
	}
	if lo != nil {
		return lo, nil
	}
	return nil, fmt.Errorf("udp: no up multicast interface with an %s address and no loopback; set Config.Interface", family(v6))
}

// firstAddr returns the first address of the family on ifi, without zone.
func firstAddr(ifi *net.Interface, v6 bool) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("udp: addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		var ip net.IP
		switch a := a.(type) {
		case *net.IPNet:
			ip = a.IP
		case *net.IPAddr:
			ip = a.IP
		default:
			continue
		}
		na, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		na = na.Unmap()
		if na.Is6() == v6 && !na.IsMulticast() && !na.IsUnspecified() {
			return na, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("udp: interface %s has no %s address; set Config.Addr", ifi.Name, family(v6))
}

func family(v6 bool) string {
	if v6 {
		return "IPv6"
	}
	return "IPv4"
}

// OpenSource opens the endpoint of a PGM source: one socket bound
// exclusively (no SO_REUSEADDR/SO_REUSEPORT) to Addr:P. It sends to the
// group from that socket (multicast interface, TTL and loopback set) and
// receives on it the unicast NAKs and SPMRs of the receivers. Because the
// bind is exclusive, a second source on the same Addr:P fails, and the
// source alone gets what is sent to Addr:P, however many receivers share
// port P on this host. LocalAddr returns Addr.
//
// ReadBatch on a source returns the unicast datagrams sent to Addr:P, with
// Dst set to Addr.
func OpenSource(cfg Config) (*Conn, error) {
	e, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	bind := netip.AddrPortFrom(e.local, e.group.Port())
	s, err := openSocket(bind, e.lscope, false, e.rbuf, e.wbuf)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("udp: source bind %v: address %v port %d is already in use "+
				"(another source on this host?); give each source its own Config.Addr "+
				"(on loopback e.g. 127.0.0.2): %w", bind, e.local, bind.Port(), err)
		}
		return nil, fmt.Errorf("udp: source bind %v: %w", bind, err)
	}
	c := newConn("source", e, s, s)
	if err := c.setupSend(e); err != nil {
		s.Close()
		return nil, err
	}
	if err := c.setupRecv(); err != nil {
		s.Close()
		return nil, err
	}
	c.rbuf, c.wbuf = socketBuffers(s)
	return c, nil
}

// OpenReceiver opens the endpoint of a PGM receiver: a receive socket bound
// to the group address at port P with SO_REUSEADDR and SO_REUSEPORT, so
// that any number of receivers on one host each get every datagram sent to
// the group, joined to the group on the interface (on Linux with
// IP_MULTICAST_ALL / IPV6_MULTICAST_ALL off, so that groups joined by other
// sockets do not leak in); and a send socket bound to Addr at an ephemeral
// port, for NAKs and SPMRs to the source's NLA:P and SPMRs to the group.
// ReadBatch reads the receive socket and drops (and counts) datagrams whose
// destination is not the group. LocalAddr returns Addr.
func OpenReceiver(cfg Config) (*Conn, error) {
	e, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	r, err := openSocket(e.group, e.gscope, true, e.rbuf, 0)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("udp: receiver bind %v: port %d is held by a socket that does not share it "+
				"(bound to the wildcard address or the group without SO_REUSEADDR/SO_REUSEPORT): %w",
				e.group, e.group.Port(), err)
		}
		return nil, fmt.Errorf("udp: receiver bind %v: %w", e.group, err)
	}
	sbind := netip.AddrPortFrom(e.local, 0)
	s, err := openSocket(sbind, e.lscope, false, 0, e.wbuf)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("udp: receiver bind %v: %w", sbind, err)
	}
	c := newConn("receiver", e, r, s)
	c.filterDst = true
	if err := c.join(e); err != nil {
		r.Close()
		s.Close()
		return nil, err
	}
	if err := c.setupSend(e); err == nil {
		err = c.setupRecv()
	}
	if err != nil {
		r.Close()
		s.Close()
		return nil, err
	}
	c.rbuf, _ = socketBuffers(r)
	_, c.wbuf = socketBuffers(s)
	return c, nil
}

func newConn(role string, e *endpoint, recv, send *net.UDPConn) *Conn {
	return &Conn{
		role:  role,
		group: e.group,
		ifi:   e.ifi,
		local: e.local,
		v6:    e.v6,
		recv:  recv,
		send:  send,
		noGSO: e.noGSO,
		noGRO: e.noGRO,
	}
}

// join joins the group on the interface with the receive socket.
func (c *Conn) join(e *endpoint) error {
	g := &net.UDPAddr{IP: e.group.Addr().AsSlice()}
	var err error
	if c.v6 {
		err = ipv6.NewPacketConn(c.recv).JoinGroup(e.ifi, g)
	} else {
		err = ipv4.NewPacketConn(c.recv).JoinGroup(e.ifi, g)
	}
	if err != nil {
		return fmt.Errorf("udp: join %v on %s: %w", e.group.Addr(), e.ifi.Name, err)
	}
	return nil
}

// setupSend sets the multicast options of the send socket.
func (c *Conn) setupSend(e *endpoint) error {
	wrap := func(what string, err error) error {
		return fmt.Errorf("udp: %s %s on %s: %w", c.role, what, e.ifi.Name, err)
	}
	if c.v6 {
		p := ipv6.NewPacketConn(c.send)
		if err := p.SetMulticastInterface(e.ifi); err != nil {
			return wrap("set multicast interface", err)
		}
		if err := p.SetMulticastHopLimit(e.ttl); err != nil {
			return wrap("set multicast hop limit", err)
		}
		if err := p.SetMulticastLoopback(e.loop); err != nil {
			return wrap("set multicast loopback", err)
		}
	} else {
		p := ipv4.NewPacketConn(c.send)
		if err := p.SetMulticastInterface(e.ifi); err != nil {
			return wrap("set multicast interface", err)
		}
		if err := p.SetMulticastTTL(e.ttl); err != nil {
			return wrap("set multicast TTL", err)
		}
		if err := p.SetMulticastLoopback(e.loop); err != nil {
			return wrap("set multicast loopback", err)
		}
	}
	c.wmm = newMmsg(c.send)
	if c.wmm != nil && !c.noGSO {
		c.gsoOn.Store(c.wmm.enableGSO(c.ifi.MTU, c.v6))
	}
	return nil
}

// setupRecv asks for the destination address of received datagrams and
// prepares the reader.
func (c *Conn) setupRecv() error {
	var err error
	if c.v6 {
		err = ipv6.NewPacketConn(c.recv).SetControlMessage(ipv6.FlagDst, true)
		c.roob = ipv6.NewControlMessage(ipv6.FlagDst)
	} else {
		err = ipv4.NewPacketConn(c.recv).SetControlMessage(ipv4.FlagDst, true)
		c.roob = ipv4.NewControlMessage(ipv4.FlagDst)
	}
	if err != nil && !pktinfoOptional {
		return fmt.Errorf("udp: %s: enable destination address: %w", c.role, err)
	}
	c.roob = append(c.roob, make([]byte, 64)...) // room for more than we asked for
	c.rmm = newMmsg(c.recv)
	if c.rmm != nil && !c.noGRO {
		c.groOn.Store(c.rmm.enableGRO())
	}
	return nil
}

// LocalAddr returns the unicast address of the endpoint (Config.Addr or
// its default), without zone.
func (c *Conn) LocalAddr() netip.Addr { return c.local }

// Group returns the group and port P, without zone.
func (c *Conn) Group() netip.AddrPort { return c.group }

// Interface returns the interface the endpoint sends and joins on. The
// caller must not modify it.
func (c *Conn) Interface() *net.Interface { return c.ifi }

// Buffers returns the receive buffer size of the reading socket and the send
// buffer size of the writing socket as reported by the kernel (Linux
// reports twice the size set, for bookkeeping overhead). Zero if unknown.
func (c *Conn) Buffers() (read, write int) { return c.rbuf, c.wbuf }

// Offload reports whether UDP GSO is in use on send and UDP_GRO on
// receive. GSO turns itself off for good when the kernel refuses a
// segmented send (EIO, EINVAL or EMSGSIZE: no checksum offload on the
// device, an old kernel, a path MTU below the interface's).
func (c *Conn) Offload() (gso, gro bool) { return c.gsoOn.Load(), c.groOn.Load() }

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	return Stats{
		DatagramsRead:    c.nRead.Load(),
		BytesRead:        c.nReadBytes.Load(),
		DatagramsWritten: c.nWritten.Load(),
		BytesWritten:     c.nWrittenBytes.Load(),
		DroppedWrongDst:  c.nWrongDst.Load(),
		DroppedTruncated: c.nTrunc.Load(),
		ReadErrors:       c.nReadErr.Load(),
		WriteErrors:      c.nWriteErr.Load(),
		GSOWrites:        c.nGSO.Load(),
		GROReads:         c.nGRO.Load(),
		GSOFallbacks:     c.nGSOFallback.Load(),
	}
}

// Close closes the sockets. It is idempotent and safe to call concurrently
// with ReadBatch and WriteBatch: a blocked ReadBatch returns promptly, and
// ReadBatch and WriteBatch return errors wrapping net.ErrClosed from then on.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		err := c.recv.Close()
		if c.send != c.recv {
			if err2 := c.send.Close(); err == nil {
				err = err2
			}
		}
		if err != nil {
			c.closeErr = fmt.Errorf("udp: close %s: %w", c.role, err)
		}
	})
	return c.closeErr
}

// ReadBatch reads at least one datagram, blocking until one is available,
// into ds[:n] and returns n (at most min(len(ds), 64)). For each, Buf (its
// full length) receives the payload, N is its length, Addr the sender and
// Dst the IP destination (the group for a receiver, LocalAddr for a source;
// zero where the platform does not report it). Addresses carry no zone.
//
// Datagrams larger than their Buf, and on a receiver datagrams whose
// destination is not the group, are dropped and counted in Stats. To keep
// ds[:n] contiguous, ReadBatch may permute the Bufs among ds: afterwards
// ds holds the same set of buffers, possibly in another order.
//
// On Linux one call is at most one recvmmsg; elsewhere one datagram per
// call. With UDP_GRO (Linux, see Offload) the kernel may hand over many
// datagrams of one sender as one coalesced buffer: ReadBatch reads those
// into buffers of its own (64 KiB each) and splits them at the segment
// size into ds, one datagram per entry as without GRO; what does not fit
// into ds is returned by the next calls, without a system call. So the
// caller's buffers need only be as large as the largest datagram, with or
// without GRO. In steady state ReadBatch does not allocate on Linux.
func (c *Conn) ReadBatch(ds []Datagram) (int, error) { return c.readBatch(ds, false) }

// TryReadBatch is ReadBatch without the wait: it returns 0 and no error
// at once when no datagram is queued. A reader that polls with it while
// its process sends fast keeps its goroutine out of Go's network poller:
// a goroutine parked there on a socket makes every packet that socket
// sends on loopback wake the poller's thread (the kernel signals the
// socket writable as each one leaves), which cost a sender without GSO a
// quarter of its throughput. Only with recvmmsg (Linux); elsewhere it
// returns errors.ErrUnsupported.
func (c *Conn) TryReadBatch(ds []Datagram) (int, error) {
	if c.rmm == nil {
		return 0, errors.ErrUnsupported
	}
	return c.readBatch(ds, true)
}

// SetReadDeadline makes a ReadBatch waiting at t or later return an error
// wrapping os.ErrDeadlineExceeded (not counted in ReadErrors); the zero
// time means no deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.recv.SetReadDeadline(t) }

func (c *Conn) readBatch(ds []Datagram, try bool) (int, error) {
	if c.closed.Load() {
		return 0, c.closedErr("read")
	}
	if len(ds) == 0 {
		return 0, nil
	}
	for {
		var n int
		var err error
		if c.rmm != nil {
			c.rmm.try = try
			n, err = c.readMmsg(ds)
		} else {
			n, err = c.readGeneric(ds)
		}
		if err != nil {
			if c.closed.Load() || errors.Is(err, net.ErrClosed) {
				return 0, c.closedErr("read")
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return 0, err
			}
			c.nReadErr.Add(1)
			return 0, fmt.Errorf("udp: %s read on %v: %w", c.role, c.recvAddr(), err)
		}
		k, wrong, trunc := compact(ds[:n], c.rflags[:n], c.group.Addr(), c.filterDst)
		if wrong != 0 {
			c.nWrongDst.Add(uint64(wrong))
		}
		if trunc != 0 {
			c.nTrunc.Add(uint64(trunc))
		}
		if k > 0 {
			var bytes uint64
			for i := range ds[:k] {
				bytes += uint64(ds[i].N)
			}
			c.nRead.Add(uint64(k))
			c.nReadBytes.Add(bytes)
			return k, nil
		}
		if n == 0 {
			return 0, nil // try, and nothing was queued
		}
		// Everything read was dropped: read again (this consumed
		// datagrams, so it does not spin).
	}
}

// compact moves the datagrams to keep to the front of ds, swapping whole
// Datagrams (so no buffer is lost or duplicated), and returns how many were
// kept and how many dropped for a wrong destination and for truncation. A
// zero Dst (unknown) is kept.
func compact(ds []Datagram, flags []uint8, group netip.Addr, filterDst bool) (kept, wrongDst, truncated int) {
	for i := range ds {
		switch {
		case flags[i]&flagTruncated != 0:
			truncated++
			continue
		case filterDst && ds[i].Dst.IsValid() && ds[i].Dst != group:
			wrongDst++
			continue
		}
		if kept != i {
			ds[kept], ds[i] = ds[i], ds[kept]
			flags[kept], flags[i] = flags[i], flags[kept]
		}
		kept++
	}
	return kept, wrongDst, truncated
}

// WriteBatch sends ds[i].Buf[:ds[i].N] to ds[i].Addr for each datagram in
// order and returns how many were sent. It loops over partial sends until all
// are sent or an error occurs; then ds[n] is the datagram that failed. An
// IPv6 destination that needs a zone (link-local unicast or multicast) and
// has none is sent on the Conn's interface.
//
// On Linux one call is one sendmmsg per 64 datagrams; elsewhere one send per
// datagram. With GSO (Linux, see Offload), consecutive datagrams to the
// same destination and of the same size (the last of a run may be shorter)
// go out as one super-datagram with a UDP_SEGMENT control message, up to 64
// datagrams and 65507 bytes each; the kernel segments it, so the receivers
// get exactly the datagrams given. In steady state WriteBatch does not
// allocate on Linux.
func (c *Conn) WriteBatch(ds []Datagram) (int, error) {
	if c.closed.Load() {
		return 0, c.closedErr("write")
	}
	var n int
	var err error
	if c.wmm != nil {
		n, err = c.writeMmsg(ds)
	} else {
		n, err = c.writeGeneric(ds)
	}
	if n > 0 {
		var bytes uint64
		for i := range ds[:n] {
			bytes += uint64(ds[i].N)
		}
		c.nWritten.Add(uint64(n))
		c.nWrittenBytes.Add(bytes)
	}
	if err != nil {
		if c.closed.Load() || errors.Is(err, net.ErrClosed) {
			return n, c.closedErr("write")
		}
		c.nWriteErr.Add(1)
		var to netip.AddrPort
		if n < len(ds) {
			to = ds[n].Addr
		}
		return n, fmt.Errorf("udp: %s write to %v: %w", c.role, to, err)
	}
	return n, nil
}

func (c *Conn) closedErr(op string) error {
	return fmt.Errorf("udp: %s %s: %w", c.role, op, net.ErrClosed)
}

func (c *Conn) recvAddr() net.Addr { return c.recv.LocalAddr() }

// errFamily is returned for a destination of the wrong address family.
type errFamily struct{ to netip.AddrPort }

func (e errFamily) Error() string { return fmt.Sprintf("destination %v: wrong address family", e.to) }

// dest checks and normalises a destination for a socket of family v6: IPv4
// destinations are unmapped; an IPv6 destination that needs a zone and has
// none gets the interface's.
func (c *Conn) dest(to netip.AddrPort) (netip.AddrPort, error) {
	a := to.Addr()
	if !c.v6 {
		a = a.Unmap()
		if !a.Is4() {
			return to, errFamily{to}
		}
		return netip.AddrPortFrom(a, to.Port()), nil
	}
	if !a.Is6() || a.Is4In6() {
		return to, errFamily{to}
	}
	if needsScope(a) && a.Zone() == "" {
		return netip.AddrPortFrom(a.WithZone(c.ifi.Name), to.Port()), nil
	}
	return to, nil
}

// scopeID is the sin6_scope_id for sending to a.
func (c *Conn) scopeID(a netip.Addr) uint32 {
	if !needsScope(a) {
		return 0
	}
	z := a.Zone()
	if z == "" || z == c.ifi.Name {
		return uint32(c.ifi.Index)
	}
	if n, err := strconv.ParseUint(z, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(z); err == nil {
		return uint32(ifi.Index)
	}
	return 0 // unknown zone: the kernel rejects the send
}

// readGeneric reads one datagram with ReadMsgUDPAddrPort. It is the reader
// off Linux; on Linux tests use it to check the fallback.
func (c *Conn) readGeneric(ds []Datagram) (int, error) {
	d := &ds[0]
	n, oobn, flags, from, err := c.recv.ReadMsgUDPAddrPort(d.Buf, c.roob)
	if err != nil {
		return 0, err
	}
	d.N = n
	d.Addr = netip.AddrPortFrom(from.Addr().Unmap().WithZone(""), from.Port())
	d.Dst = c.parseDstGeneric(c.roob[:oobn])
	c.rflags[0] = 0
	if flags&msgTrunc != 0 {
		c.rflags[0] = flagTruncated
	}
	return 1, nil
}

// parseDstGeneric parses the destination address with x/net. That allocates
// (x/net's cmsg parser returns a slice), which is why Linux has its own.
func (c *Conn) parseDstGeneric(oob []byte) netip.Addr {
	if len(oob) == 0 {
		return netip.Addr{}
	}
	var dst net.IP
	if c.v6 {
		clear(c.cm6.Dst)
		if c.cm6.Parse(oob) != nil {
			return netip.Addr{}
		}
		dst = c.cm6.Dst
	} else {
		clear(c.cm4.Dst)
		if c.cm4.Parse(oob) != nil {
			return netip.Addr{}
		}
		dst = c.cm4.Dst
	}
	a, ok := netip.AddrFromSlice(dst)
	if !ok || a.IsUnspecified() {
		return netip.Addr{}
	}
	return a.Unmap()
}

// writeGeneric sends one datagram per call with WriteToUDPAddrPort.
func (c *Conn) writeGeneric(ds []Datagram) (int, error) {
	for i := range ds {
		to, err := c.dest(ds[i].Addr)
		if err != nil {
			return i, err
		}
		if _, err := c.send.WriteToUDPAddrPort(ds[i].Buf[:ds[i].N], to); err != nil {
			return i, err
		}
	}
	return len(ds), nil
}
