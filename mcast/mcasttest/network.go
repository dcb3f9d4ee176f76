package mcasttest

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relmcast/relmcast/internal/lossy"
)

// NetworkConfig configures a Network. The zero value is a perfect network:
// no latency, 1500-byte MTU, 4096-datagram receive queues.
type NetworkConfig struct {
	// Latency is the one-way delay of every datagram. 0 delivers during
	// WriteBatch.
	Latency time.Duration
	// Jitter adds a uniformly random extra delay in [0, Jitter) to each
	// datagram, per receiver; datagrams may then arrive out of order.
	Jitter time.Duration
	// MTU is the largest datagram (UDP payload, in bytes) the network
	// carries; a larger one is dropped on send and counted in the
	// sender's EndpointStats.DroppedMTU. 0 means 1500.
	MTU int
	// QueueLen is each endpoint's receive queue, in datagrams, like a
	// socket receive buffer: datagrams arriving while it is full are
	// dropped and counted in EndpointStats.DroppedQueue. 0 means 4096.
	QueueLen int
	// Seed seeds the jitter and, mixed into each Impairment's Seed, the
	// impairment decisions.
	Seed uint64
}

// NetworkStats counts datagrams the network itself dropped.
type NetworkStats struct {
	// Unroutable counts unicast datagrams sent to an addr:port no open
	// endpoint is bound to (or to an invalid address).
	Unroutable uint64
	// Partitioned counts deliveries suppressed by SetPartition.
	Partitioned uint64
}

// Network is an in-memory multicast network. Its methods are safe for
// concurrent use.
type Network struct {
	cfg NetworkConfig

	mu       sync.Mutex
	closed   bool
	bound    map[netip.AddrPort][]*Endpoint // unicast addr:port -> endpoints, oldest first
	groups   map[netip.AddrPort][]*Endpoint // group:port -> members, in join order
	cut      map[hostPair]struct{}
	nextPort map[netip.Addr]uint16
	all      []*Endpoint

	unroutable  atomic.Uint64
	partitioned atomic.Uint64

	pool sync.Pool // of *packet
}

type hostPair struct{ a, b netip.Addr }

func makePair(a, b netip.Addr) hostPair {
	if b.Less(a) {
		a, b = b, a
	}
	return hostPair{a, b}
}

// packet is one datagram in flight or queued, owned by exactly one
// receiver's delay line or queue at a time.
type packet struct {
	buf []byte
	src netip.AddrPort
	dst netip.Addr
	due time.Time // delivery time, when delayed
	seq uint64    // tie-break among equal due times
}

// NewNetwork returns a Network configured by cfg. Under testing/synctest,
// call it inside the bubble.
func NewNetwork(cfg NetworkConfig) *Network {
	if cfg.MTU <= 0 {
		cfg.MTU = 1500
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 4096
	}
	if cfg.Latency < 0 || cfg.Jitter < 0 {
		panic(fmt.Sprintf("mcasttest: negative Latency %v or Jitter %v", cfg.Latency, cfg.Jitter))
	}
	n := &Network{
		cfg:      cfg,
		bound:    make(map[netip.AddrPort][]*Endpoint),
		groups:   make(map[netip.AddrPort][]*Endpoint),
		cut:      make(map[hostPair]struct{}),
		nextPort: make(map[netip.Addr]uint16),
	}
	n.pool.New = func() any { return new(packet) }
	return n
}

// ParseImpairment parses an impairment spec such as "0.05" or
// "loss=0.05,burst=0.01,burstlen=8,reorder=0.02,dup=0.01,seed=7", the syntax
// of the command-line tools' --loss flags.
func ParseImpairment(spec string) (Impairment, error) { return lossy.ParseSpec(spec) }

// Config returns the network's configuration with defaults filled in.
func (n *Network) Config() NetworkConfig { return n.cfg }

// Stats returns the network-level drop counts.
func (n *Network) Stats() NetworkStats {
	return NetworkStats{Unroutable: n.unroutable.Load(), Partitioned: n.partitioned.Load()}
}

// Endpoint attaches a host with unicast address addr and binds UDP port
// port on it (0 picks a free port from 49152 up). The endpoint receives
// unicast datagrams sent to addr:port and multicast datagrams for the
// groups it joins. Several endpoints may share an addr:port; unicast goes to
// the oldest open one. It panics if addr is invalid or multicast, or if the
// Network is closed.
func (n *Network) Endpoint(addr netip.Addr, port uint16) *Endpoint {
	if !addr.IsValid() || addr.Unmap().IsMulticast() {
		panic(fmt.Sprintf("mcasttest: Endpoint address %v is not a unicast address", addr))
	}
	key := addr.Unmap()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		panic("mcasttest: Endpoint called on a closed Network")
	}
	if port == 0 {
		port = n.ephemeralLocked(key)
	}
	e := &Endpoint{
		n:    n,
		addr: addr,
		key:  key,
		port: port,
		q:    make(chan *packet, n.cfg.QueueLen),
		done: make(chan struct{}),
	}
	e.seed = mix(n.cfg.Seed, addrPortHash(netip.AddrPortFrom(key, port)))
	e.jitter.Seed(e.seed, 0x6a09e667f3bcc909)
	e.jrng = rand.New(&e.jitter)
	e.fireFunc = e.fire
	ap := netip.AddrPortFrom(key, port)
	n.bound[ap] = append(n.bound[ap], e)
	n.all = append(n.all, e)
	return e
}

func (n *Network) ephemeralLocked(addr netip.Addr) uint16 {
	p := n.nextPort[addr]
	for range 1 << 16 {
		if p < 49152 {
			p = 49152
		}
		cand := p
		p++
		if len(n.bound[netip.AddrPortFrom(addr, cand)]) == 0 {
			n.nextPort[addr] = p
			return cand
		}
	}
	panic(fmt.Sprintf("mcasttest: no free port on %v", addr))
}

// SetPartition cuts (cut true) or restores delivery between hosts a and b,
// in both directions, for unicast and multicast alike. a == b cuts a host
// off from itself (multicast loop and unicast to its own address).
// Datagrams already in flight are not affected.
func (n *Network) SetPartition(a, b netip.Addr, cut bool) {
	p := makePair(a.Unmap(), b.Unmap())
	n.mu.Lock()
	defer n.mu.Unlock()
	if cut {
		n.cut[p] = struct{}{}
	} else {
		delete(n.cut, p)
	}
}

// Close closes every endpoint. It is idempotent.
func (n *Network) Close() {
	n.mu.Lock()
	n.closed = true
	all := slices.Clone(n.all)
	n.mu.Unlock()
	for _, e := range all {
		e.Close()
	}
}

func (n *Network) join(e *Endpoint, g netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e.closed.Load() || slices.Contains(n.groups[g], e) {
		return
	}
	n.groups[g] = append(n.groups[g], e)
}

func (n *Network) leave(e *Endpoint, g netip.AddrPort) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.leaveLocked(e, g)
}

func (n *Network) leaveLocked(e *Endpoint, g netip.AddrPort) {
	m := slices.DeleteFunc(n.groups[g], func(x *Endpoint) bool { return x == e })
	if len(m) == 0 {
		delete(n.groups, g)
	} else {
		n.groups[g] = m
	}
}

// detach removes a closing endpoint from every routing table.
func (n *Network) detach(e *Endpoint) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for g := range n.groups {
		n.leaveLocked(e, g)
	}
	ap := netip.AddrPortFrom(e.key, e.port)
	if b := slices.DeleteFunc(n.bound[ap], func(x *Endpoint) bool { return x == e }); len(b) == 0 {
		delete(n.bound, ap)
	} else {
		n.bound[ap] = b
	}
	n.all = slices.DeleteFunc(n.all, func(x *Endpoint) bool { return x == e })
}

// route delivers b, written by from to dst, to its receivers.
func (n *Network) route(from *Endpoint, dst netip.AddrPort, b []byte) {
	dstIP := dst.Addr().Unmap()
	key := netip.AddrPortFrom(dstIP, dst.Port())
	rcv := from.scratch[:0]
	n.mu.Lock()
	if dstIP.IsMulticast() {
		for _, r := range n.groups[key] {
			if n.cutLocked(from.key, r.key) {
				n.partitioned.Add(1)
				continue
			}
			rcv = append(rcv, r)
		}
	} else if eps := n.bound[key]; len(eps) == 0 || !dst.IsValid() {
		n.unroutable.Add(1)
	} else if n.cutLocked(from.key, eps[0].key) {
		n.partitioned.Add(1)
	} else {
		rcv = append(rcv, eps[0])
	}
	n.mu.Unlock()
	src := netip.AddrPortFrom(from.addr, from.port)
	for _, r := range rcv {
		r.arrive(src, dstIP, b)
	}
	clear(rcv)
	from.scratch = rcv[:0]
}

func (n *Network) cutLocked(a, b netip.Addr) bool {
	if len(n.cut) == 0 {
		return false
	}
	_, ok := n.cut[makePair(a, b)]
	return ok
}

func (n *Network) newPacket(b []byte, src netip.AddrPort, dst netip.Addr) *packet {
	p := n.pool.Get().(*packet)
	if cap(p.buf) < len(b) {
		p.buf = make([]byte, len(b), max(len(b), 2048))
	}
	p.buf = p.buf[:len(b)]
	copy(p.buf, b)
	p.src, p.dst = src, dst
	return p
}

func (n *Network) freePacket(p *packet) {
	p.due = time.Time{}
	n.pool.Put(p)
}

// mix combines two 64-bit values into a well-spread seed (splitmix64).
func mix(a, b uint64) uint64 {
	z := a ^ (b + 0x9e3779b97f4a7c15 + a<<6 + a>>2)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func addrPortHash(ap netip.AddrPort) uint64 {
	a16 := ap.Addr().As16()
	h := uint64(ap.Port())
	for i := 0; i < 16; i += 8 {
		var w uint64
		for _, c := range a16[i : i+8] {
			w = w<<8 | uint64(c)
		}
		h = mix(h, w)
	}
	return h
}
