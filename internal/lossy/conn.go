package lossy

import (
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/relmcast/relmcast/internal/udp"
)

// Conn is a udp.Transport that impairs the datagrams read from the transport
// it wraps. Writes, LocalAddr and Close pass through.
//
// ReadBatch reads into the caller's buffers and decides in place; it copies
// only the datagrams it has to keep across calls (held-back ones, and
// output that does not fit in the caller's slice this time) into storage
// owned by the Conn, which is allocated once and reused, so the steady state
// allocates nothing. It never retains the caller's buffers.
//
// Like any udp.Transport, a Conn is used by at most one reading and one
// writing goroutine at a time; Stats and Close may be called from any
// goroutine.
type Conn struct {
	t      udp.Transport
	im     *Impairer
	closed atomic.Bool

	held [MaxHeld]stored // held-back datagrams, by Impairer slot

	// pend is a FIFO ring of copies waiting to be returned by ReadBatch,
	// in delivery order: output that did not fit where it had to go.
	pend  []stored
	phead int
	plen  int
}

var _ udp.Transport = (*Conn)(nil)

// stored is a datagram copied into storage owned by the Conn.
type stored struct {
	buf  []byte
	addr netip.AddrPort
	dst  netip.Addr
}

func (s *stored) set(b []byte, addr netip.AddrPort, dst netip.Addr) {
	if cap(s.buf) < len(b) {
		s.buf = make([]byte, len(b), max(len(b), 2048))
	}
	s.buf = s.buf[:len(b)]
	copy(s.buf, b)
	s.addr, s.dst = addr, dst
}

// Wrap returns a Conn that applies cfg's impairments to the datagrams read
// from t. It panics if cfg.Validate fails. A Conn with an inactive cfg
// passes everything through (cfg.Active tells whether wrapping is worth it).
func Wrap(t udp.Transport, cfg Config) *Conn {
	return &Conn{t: t, im: NewImpairer(cfg)}
}

// Unwrap returns the wrapped transport.
func (c *Conn) Unwrap() udp.Transport { return c.t }

// Stats returns the impairments applied so far.
func (c *Conn) Stats() Stats { return c.im.Stats() }

// LocalAddr returns the wrapped transport's LocalAddr.
func (c *Conn) LocalAddr() netip.Addr { return c.t.LocalAddr() }

// WriteBatch writes ds through the wrapped transport, unimpaired.
func (c *Conn) WriteBatch(ds []udp.Datagram) (int, error) {
	if c.closed.Load() {
		return 0, &net.OpError{Op: "write", Net: "udp", Err: net.ErrClosed}
	}
	return c.t.WriteBatch(ds)
}

// Close closes the wrapped transport. Datagrams still held back are
// discarded.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.t.Close()
}

// ReadBatch reads from the wrapped transport and returns what survives the
// impairments: datagrams may be missing, duplicated or come later than their
// successors. It blocks until at least one datagram survives; if datagrams
// are pending from an earlier batch it returns them without reading.
func (c *Conn) ReadBatch(ds []udp.Datagram) (int, error) {
	if c.closed.Load() {
		return 0, &net.OpError{Op: "read", Net: "udp", Err: net.ErrClosed}
	}
	if len(ds) == 0 {
		return 0, nil
	}
	if c.plen > 0 {
		w := 0
		for ; w < len(ds) && c.plen > 0; w++ {
			c.pop(&ds[w])
		}
		return w, nil
	}
	for {
		n, err := c.t.ReadBatch(ds)
		n = min(max(n, 0), len(ds))
		w := c.process(ds, n)
		if w > 0 || err != nil {
			return w, err
		}
	}
}

// process applies the impairments to ds[:n], compacting the output into
// ds[:w] (followed by pending copies that fit) and returning w.
func (c *Conn) process(ds []udp.Datagram, n int) int {
	w := 0 // next output position; ds[:w] is output, ds[w:r] is free
	for r := range n {
		d := &ds[r]
		b := d.Buf[:d.N]
		switch dec := c.im.Decide(b); dec.Action {
		case Drop:
		case Hold:
			c.held[dec.Slot].set(b, d.Addr, d.Dst)
		case Deliver:
			w = c.emit(ds, w, r, b, d.Addr, d.Dst, true)
		case Duplicate:
			w = c.emit(ds, w, r, b, d.Addr, d.Dst, true)
			w = c.emit(ds, w, r, b, d.Addr, d.Dst, false)
		}
		for slot, ok := c.im.Due(); ok; slot, ok = c.im.Due() {
			h := &c.held[slot]
			w = c.emit(ds, w, r, h.buf, h.addr, h.dst, false)
		}
	}
	for ; w < len(ds) && c.plen > 0; w++ {
		c.pop(&ds[w])
	}
	return w
}

// emit outputs one datagram while ds[r] is being processed. It goes to ds[w]
// if that slot is free (w <= r) and nothing is pending ahead of it;
// otherwise it is copied to the pending FIFO, which keeps the order. isR
// says b is ds[r]'s own buffer.
func (c *Conn) emit(ds []udp.Datagram, w, r int, b []byte, addr netip.AddrPort, dst netip.Addr, isR bool) int {
	if c.plen > 0 || w > r {
		c.push(b, addr, dst)
		return w
	}
	o := &ds[w]
	if !(isR && w == r) {
		o.N = copy(o.Buf, b)
		o.Addr, o.Dst = addr, dst
	}
	return w + 1
}

func (c *Conn) push(b []byte, addr netip.AddrPort, dst netip.Addr) {
	if c.plen == len(c.pend) {
		grown := make([]stored, max(2*len(c.pend), 4))
		for i := range c.plen {
			grown[i] = c.pend[(c.phead+i)%len(c.pend)]
		}
		c.pend, c.phead = grown, 0
	}
	c.pend[(c.phead+c.plen)%len(c.pend)].set(b, addr, dst)
	c.plen++
}

func (c *Conn) pop(o *udp.Datagram) {
	s := &c.pend[c.phead]
	o.N = copy(o.Buf, s.buf)
	o.Addr, o.Dst = s.addr, s.dst
	c.phead = (c.phead + 1) % len(c.pend)
	c.plen--
}
