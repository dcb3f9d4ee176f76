package mcasttest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relmcast/relmcast/internal/lossy"
	"github.com/relmcast/relmcast/internal/udp"
)

// Endpoint is one bound UDP socket of a host on a Network. It implements
// udp.Transport: at most one goroutine reads and one writes at a time; the
// other methods may be called from any goroutine.
type Endpoint struct {
	n    *Network
	addr netip.Addr // as given; LocalAddr
	key  netip.Addr // addr.Unmap(), for routing
	port uint16
	seed uint64

	q      chan *packet // receive queue
	done   chan struct{}
	closed atomic.Bool
	drop   atomic.Pointer[func(udp.Datagram) bool]

	scratch []*Endpoint // writer-owned: receivers of the datagram being routed

	// Receive side, guarded by rxMu (held briefly, never while waiting).
	rxMu     sync.Mutex
	im       *lossy.Impairer
	held     [lossy.MaxHeld]*packet
	jitter   rand.PCG
	jrng     *rand.Rand // over jitter
	delayed  []*packet  // min-heap on (due, seq)
	seq      uint64
	timer    *time.Timer
	fireFunc func()

	stats [numStats]atomic.Uint64
}

var _ udp.Transport = (*Endpoint)(nil)

const (
	statSent = iota
	statReceived
	statDroppedImpairment
	statDroppedRule
	statDroppedQueue
	statDroppedMTU
	statDuplicated
	statReordered
	statTruncated
	numStats
)

// EndpointStats counts an endpoint's traffic. Receive-side counts are
// about datagrams addressed to it; DroppedMTU is about datagrams it sent.
type EndpointStats struct {
	Sent     uint64 // datagrams passed to WriteBatch
	Received uint64 // datagrams returned by ReadBatch

	Dropped           uint64 // sum of the Dropped* counts below
	DroppedImpairment uint64 // loss and burst loss of SetImpairment
	DroppedRule       uint64 // the SetDrop rule
	DroppedQueue      uint64 // the receive queue was full
	DroppedMTU        uint64 // sent datagrams larger than the MTU

	Duplicated uint64 // extra copies delivered by SetImpairment
	Reordered  uint64 // held back by SetImpairment and delivered later
	Truncated  uint64 // read into a buffer shorter than the datagram
}

// Stats returns the endpoint's counts so far.
func (e *Endpoint) Stats() EndpointStats {
	var s [numStats]uint64
	for i := range s {
		s[i] = e.stats[i].Load()
	}
	return EndpointStats{
		Sent:              s[statSent],
		Received:          s[statReceived],
		Dropped:           s[statDroppedImpairment] + s[statDroppedRule] + s[statDroppedQueue] + s[statDroppedMTU],
		DroppedImpairment: s[statDroppedImpairment],
		DroppedRule:       s[statDroppedRule],
		DroppedQueue:      s[statDroppedQueue],
		DroppedMTU:        s[statDroppedMTU],
		Duplicated:        s[statDuplicated],
		Reordered:         s[statReordered],
		Truncated:         s[statTruncated],
	}
}

// LocalAddr returns the endpoint's unicast address, as given to
// Network.Endpoint.
func (e *Endpoint) LocalAddr() netip.Addr { return e.addr }

// AddrPort returns the endpoint's address and bound port: the Addr of the
// datagrams it sends.
func (e *Endpoint) AddrPort() netip.AddrPort { return netip.AddrPortFrom(e.addr, e.port) }

// Join makes the endpoint receive datagrams sent to group (a multicast
// address and port). Joining twice is the same as once. It panics if group's
// address is not multicast.
func (e *Endpoint) Join(group netip.AddrPort) {
	g := netip.AddrPortFrom(group.Addr().Unmap(), group.Port())
	if !g.Addr().IsMulticast() {
		panic(fmt.Sprintf("mcasttest: Join(%v): not a multicast group", group))
	}
	e.n.join(e, g)
}

// Leave undoes Join. Datagrams already in flight to the endpoint still
// arrive.
func (e *Endpoint) Leave(group netip.AddrPort) {
	e.n.leave(e, netip.AddrPortFrom(group.Addr().Unmap(), group.Port()))
}

// SetImpairment sets the receive-side impairment for datagrams arriving at
// this endpoint from now on; the zero Impairment removes it. Decisions are
// seeded by cfg.Seed mixed with the network's Seed and this endpoint's
// addr:port (see the package documentation). Datagrams held back by the
// previous impairment are released first. It panics if cfg.Validate fails.
func (e *Endpoint) SetImpairment(cfg Impairment) {
	if err := cfg.Validate(); err != nil {
		panic("mcasttest: SetImpairment: " + err.Error())
	}
	e.rxMu.Lock()
	defer e.rxMu.Unlock()
	e.flushHeldLocked()
	e.im = nil
	if cfg.Active() && !e.closed.Load() {
		cfg.Seed = mix(cfg.Seed, e.seed)
		e.im = lossy.NewImpairer(cfg)
	}
}

// SetDrop sets a receive-side drop rule: every datagram arriving at this
// endpoint is passed to f (before impairment), and dropped if f returns
// true. d.Buf[:d.N] is the sender's buffer: f must not retain or modify
// it. f runs on the writer's goroutine and must not block. nil removes the
// rule. Returning false always makes f a tap that records traffic.
func (e *Endpoint) SetDrop(f func(d Datagram) bool) {
	if f == nil {
		e.drop.Store(nil)
		return
	}
	e.drop.Store(&f)
}

func errClosed(op string, e *Endpoint) error {
	return &net.OpError{Op: op, Net: "udp", Source: net.UDPAddrFromAddrPort(e.AddrPort()), Err: net.ErrClosed}
}

// WriteBatch sends every ds[i].Buf[:ds[i].N] to ds[i].Addr and returns
// len(ds). Like UDP, sending never blocks and never reports loss: datagrams
// larger than the MTU, unroutable or dropped on the way are only counted.
func (e *Endpoint) WriteBatch(ds []Datagram) (int, error) {
	if e.closed.Load() {
		return 0, errClosed("write", e)
	}
	mtu := e.n.cfg.MTU
	for i := range ds {
		d := &ds[i]
		b := d.Buf[:d.N]
		e.stats[statSent].Add(1)
		if len(b) > mtu {
			e.stats[statDroppedMTU].Add(1)
			continue
		}
		e.n.route(e, d.Addr, b)
	}
	return len(ds), nil
}

// ReadBatch blocks until at least one datagram is queued, then fills ds
// with as many queued datagrams as fit and returns their number. Addr is the
// sender's addr:port, Dst the group or unicast address it was sent to; a
// buffer shorter than the datagram gets its first len(Buf) bytes. After
// Close it returns an error wrapping net.ErrClosed, and a blocked call
// returns at once.
func (e *Endpoint) ReadBatch(ds []Datagram) (int, error) {
	if e.closed.Load() {
		return 0, errClosed("read", e)
	}
	if len(ds) == 0 {
		return 0, nil
	}
	var p *packet
	select {
	case p = <-e.q:
	case <-e.done:
		return 0, errClosed("read", e)
	}
	n := 0
	for {
		d := &ds[n]
		d.N = copy(d.Buf, p.buf)
		if d.N < len(p.buf) {
			e.stats[statTruncated].Add(1)
		}
		d.Addr, d.Dst = p.src, p.dst
		e.n.freePacket(p)
		n++
		if n == len(ds) {
			break
		}
		more := false
		select {
		case p = <-e.q:
			more = true
		default:
		}
		if !more {
			break
		}
	}
	e.stats[statReceived].Add(uint64(n))
	return n, nil
}

// Close detaches the endpoint from the network, discards datagrams queued
// or in flight to it, and unblocks ReadBatch. It is idempotent and returns
// nil.
func (e *Endpoint) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(e.done)
	e.n.detach(e)
	e.rxMu.Lock()
	defer e.rxMu.Unlock()
	if e.timer != nil {
		e.timer.Stop()
	}
	clear(e.delayed)
	e.delayed = e.delayed[:0]
	clear(e.held[:])
	e.im = nil
	return nil
}

// arrive handles one datagram sent to this endpoint: drop rule, impairment,
// then delivery now or after the latency.
func (e *Endpoint) arrive(src netip.AddrPort, dst netip.Addr, b []byte) {
	if e.closed.Load() {
		return
	}
	if f := e.drop.Load(); f != nil && (*f)(udp.Datagram{Buf: b, N: len(b), Addr: src, Dst: dst}) {
		e.stats[statDroppedRule].Add(1)
		return
	}
	n := e.n
	e.rxMu.Lock()
	defer e.rxMu.Unlock()
	if e.closed.Load() {
		return
	}
	if e.im == nil {
		e.scheduleLocked(n.newPacket(b, src, dst))
		return
	}
	switch d := e.im.Decide(b); d.Action {
	case lossy.Drop:
		e.stats[statDroppedImpairment].Add(1)
	case lossy.Deliver:
		e.scheduleLocked(n.newPacket(b, src, dst))
	case lossy.Duplicate:
		e.stats[statDuplicated].Add(1)
		e.scheduleLocked(n.newPacket(b, src, dst))
		e.scheduleLocked(n.newPacket(b, src, dst))
	case lossy.Hold:
		e.stats[statReordered].Add(1)
		e.held[d.Slot] = n.newPacket(b, src, dst)
	}
	for slot, ok := e.im.Due(); ok; slot, ok = e.im.Due() {
		e.scheduleLocked(e.held[slot])
		e.held[slot] = nil
	}
}

func (e *Endpoint) flushHeldLocked() {
	if e.im == nil {
		return
	}
	for slot, ok := e.im.Flush(); ok; slot, ok = e.im.Flush() {
		if p := e.held[slot]; p != nil {
			e.scheduleLocked(p)
			e.held[slot] = nil
		}
	}
}

// scheduleLocked delivers p after the network's latency and p's jitter.
func (e *Endpoint) scheduleLocked(p *packet) {
	d := e.n.cfg.Latency
	if j := e.n.cfg.Jitter; j > 0 {
		d += time.Duration(e.jrng.Int64N(int64(j)))
	}
	if d <= 0 {
		e.enqueueLocked(p)
		return
	}
	p.due = time.Now().Add(d)
	p.seq = e.seq
	e.seq++
	e.pushLocked(p)
	if e.delayed[0] != p {
		return // an earlier delivery already has the timer
	}
	if e.timer == nil {
		e.timer = time.AfterFunc(d, e.fireFunc)
	} else {
		e.timer.Reset(d)
	}
}

func (e *Endpoint) enqueueLocked(p *packet) {
	select {
	case e.q <- p:
	default:
		e.stats[statDroppedQueue].Add(1)
		e.n.freePacket(p)
	}
}

// fire runs on the delay timer: it queues every datagram that is due and
// rearms the timer for the next one.
func (e *Endpoint) fire() {
	e.rxMu.Lock()
	defer e.rxMu.Unlock()
	if e.closed.Load() {
		return
	}
	now := time.Now()
	for len(e.delayed) > 0 && !e.delayed[0].due.After(now) {
		e.enqueueLocked(e.popLocked())
	}
	if len(e.delayed) > 0 {
		e.timer.Reset(e.delayed[0].due.Sub(now))
	}
}

// The delay line is a binary min-heap ordered by (due, seq).

func (e *Endpoint) before(i, j int) bool {
	a, b := e.delayed[i], e.delayed[j]
	if c := a.due.Compare(b.due); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

func (e *Endpoint) pushLocked(p *packet) {
	e.delayed = append(e.delayed, p)
	h := e.delayed
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !e.before(i, parent) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (e *Endpoint) popLocked() *packet {
	h := e.delayed
	p := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = nil
	h = h[:last]
	e.delayed = h
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && e.before(l, m) {
			m = l
		}
		if r < len(h) && e.before(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	return p
}
