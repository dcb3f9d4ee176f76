package mcast

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/relmcast/relmcast/internal/udp"
)

// rxBatch is one batch of datagrams read by the reader goroutine and
// handed to the loop goroutine, which gives it back when done.
type rxBatch struct {
	ds []Datagram
	n  int
}

const (
	batchSize = 64 // datagrams per read or write
	// rxBatches is the number of batches in flight between the reader and
	// the loop. The reader waits when all are with the loop, and the socket
	// buffer absorbs the burst, so a few are enough.
	rxBatches = 4
	// readSize is the read buffer per datagram. A PGM packet never
	// exceeds the path MTU: 9216 covers jumbo frames (an OpenPGM sender
	// with PGM_MTU 9000). Longer datagrams are dropped and counted by the
	// socket layer. 4 batches of 64 take 2.4 MB per endpoint.
	readSize = 9216
)

func newBatch(bufSize int) *rxBatch {
	b := &rxBatch{ds: make([]Datagram, batchSize)}
	mem := make([]byte, batchSize*bufSize)
	for i := range b.ds {
		b.ds[i].Buf = mem[i*bufSize : (i+1)*bufSize : (i+1)*bufSize]
	}
	return b
}

// reader moves datagrams from a Transport to a loop goroutine. When every
// batch is in the loop's hands it waits for one to come back, and leaves
// the datagrams in the socket buffer meanwhile: that buffer (4 MiB or
// more) absorbs a loop that falls behind for a moment far better than
// dropping here would, and when it overflows the kernel drops and counts.
type reader struct {
	tr   Transport
	rx   chan *rxBatch // to the loop; capacity rxBatches, so never blocks
	free chan *rxBatch // back from the loop
	stop chan struct{} // closed by close: stop waiting for a batch
	done chan struct{}

	// poll, when not nil, is tr able to read without waiting: a Sender's
	// reader polls it every pollEvery while the Sender writes (until
	// busy, Unix ns; see markBusy), and waits in tr.ReadBatch, at most
	// idleWait at a time, otherwise.
	poll     pollReader
	busy     atomic.Int64
	deadline bool // a read deadline is set on poll (owned by run)

	log *errLog
}

// pollReader is a Transport that can read without waiting and with a
// deadline: udp.Conn with recvmmsg (Linux).
type pollReader interface {
	TryReadBatch(ds []Datagram) (int, error)
	SetReadDeadline(t time.Time) error
}

// A Sender's reader polls its socket while the Sender writes, rather than
// wait in Go's network poller: a goroutine parked there on a socket makes
// every packet the socket sends on loopback wake the poller's thread (the
// kernel signals the socket writable as each one leaves), 55 000 wakeups
// and context switches a second that cost a sender without GSO a quarter
// of its throughput (1400-byte messages, no rate limit). NAKs then wait
// up to pollEvery (about a millisecond) before the Sender sees them.
const (
	busyHold  = 10 * time.Millisecond // polling goes on this long after a write
	pollEvery = time.Millisecond
	idleWait  = 20 * time.Millisecond // an idle reader looks at busy this often
)

// markBusy tells the reader that its endpoint wrote at now.
func (r *reader) markBusy(now time.Time) {
	if r.poll != nil {
		r.busy.Store(now.Add(busyHold).UnixNano())
	}
}

// read reads one batch into ds: from tr.ReadBatch, or for a polling
// reader as markBusy and pollReader allow.
func (r *reader) read(ds []Datagram) (int, error) {
	if r.poll == nil {
		return r.tr.ReadBatch(ds)
	}
	for {
		select {
		case <-r.stop:
			return 0, net.ErrClosed
		default:
		}
		if time.Now().UnixNano() < r.busy.Load() {
			if r.deadline {
				// A deadline that has passed fails every read, the
				// polling ones too.
				if err := r.poll.SetReadDeadline(time.Time{}); err != nil {
					return 0, err
				}
				r.deadline = false
			}
			n, err := r.poll.TryReadBatch(ds)
			if n > 0 || err != nil {
				return n, err
			}
			time.Sleep(pollEvery)
			continue
		}
		if err := r.poll.SetReadDeadline(time.Now().Add(idleWait)); err != nil {
			return r.tr.ReadBatch(ds)
		}
		r.deadline = true
		n, err := r.tr.ReadBatch(ds)
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
	}
}

// errLog logs transport errors without flooding: the first, then one in
// every 1000, each with the count so far. A nil logger is silent.
type errLog struct {
	l    *slog.Logger
	what string
	n    atomic.Uint64
}

func (e *errLog) log(err error) {
	if e == nil || e.l == nil {
		return
	}
	if n := e.n.Add(1); n == 1 || n%1000 == 0 {
		e.l.Warn("mcast: "+e.what, "err", err, "count", n)
	}
}

// startReader starts a reader of tr. With poll, and a tr that can
// (pollReader), it polls while markBusy says its endpoint writes.
func startReader(tr Transport, bufSize int, l *slog.Logger, poll bool) *reader {
	r := &reader{
		log:  &errLog{l: l, what: "read failed"},
		tr:   tr,
		rx:   make(chan *rxBatch, rxBatches),
		free: make(chan *rxBatch, rxBatches),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	if p, ok := tr.(pollReader); ok && poll {
		if _, err := p.TryReadBatch(nil); !errors.Is(err, errors.ErrUnsupported) {
			r.poll = p
		}
	}
	for range rxBatches {
		r.free <- newBatch(bufSize)
	}
	go r.run()
	return r
}

func (r *reader) run() {
	defer close(r.done)
	failures := 0
	for {
		var b *rxBatch
		select {
		case b = <-r.free:
		case <-r.stop:
			return
		}
		n, err := r.read(b.ds)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient errors (ICMP-induced ECONNREFUSED and the like) are
			// retried; a socket that keeps failing is given up on.
			r.log.log(err)
			if failures++; failures > 100 {
				return
			}
			time.Sleep(10 * time.Millisecond)
		} else {
			failures = 0
		}
		b.n = n
		r.rx <- b
	}
}

// release gives a batch back to the reader.
func (r *reader) release(b *rxBatch) { r.free <- b }

// close stops the reader and closes the transport, which unblocks a read
// in progress, and waits for the reader to exit.
func (r *reader) close() {
	close(r.stop)
	r.tr.Close()
	<-r.done
}

// Offload is the state of the socket layer's UDP offloads, in Stats.
type Offload struct {
	// GSO and GRO say whether sends use UDP generic segmentation offload
	// (UDP_SEGMENT: one system call and one trip down the stack for up to
	// 64 datagrams) and reads UDP generic receive offload (UDP_GRO). Both
	// are on where the kernel has them (Linux 4.18 and 5.0) unless
	// Config.NoGSO or NoGRO; GSO turns itself off if the kernel refuses a
	// send. False with a Config.Transport that is not this package's
	// sockets.
	GSO, GRO bool
	// GSOWrites counts the sends that carried two or more datagrams in
	// one UDP_SEGMENT send, GROReads the reads that got two or more in
	// one UDP_GRO buffer: packets per system call is what offload saves.
	GSOWrites, GROReads uint64
}

// offloader is what the socket layer (udp.Conn) tells about offload.
type offloader interface {
	Offload() (gso, gro bool)
	Stats() udp.Stats
}

// offload returns the offload state of c (nil: none).
func offload(c offloader) Offload {
	if c == nil {
		return Offload{}
	}
	gso, gro := c.Offload()
	st := c.Stats()
	return Offload{GSO: gso, GRO: gro, GSOWrites: st.GSOWrites, GROReads: st.GROReads}
}

// openTransport returns cfg.Transport or opens sockets, and applies
// cfg.WrapTransport. sock is the socket layer under it, for Offload: nil
// for a Config.Transport that is not one. With sockets, ifi is the
// interface they send and join on, for watchInterface.
func openTransport(cfg *Config, group netip.AddrPort, open func(udp.Config) (*udp.Conn, error)) (tr Transport, sock offloader, ifi *net.Interface, err error) {
	tr = cfg.Transport
	if o, ok := tr.(offloader); ok {
		sock = o
	}
	if tr == nil {
		if ifi := cfg.Interface; ifi != nil {
			// An interface looked up earlier may have gone since.
			now, err := net.InterfaceByIndex(ifi.Index)
			if err != nil || now.Name != ifi.Name {
				return nil, nil, nil, fmt.Errorf("mcast: group %v: interface %s (index %d) does not exist (any more): "+
					"choose one that `ip link` lists", group, ifi.Name, ifi.Index)
			}
			// Linux joins groups on an interface without the MULTICAST
			// flag, but nothing is ever received or sent on it. Loopback
			// carries multicast without the flag.
			if now.Flags&(net.FlagMulticast|net.FlagLoopback) == 0 {
				return nil, nil, nil, fmt.Errorf("mcast: group %v: interface %s does not do multicast (no MULTICAST flag): "+
					"choose another, or `ip link set %s multicast on`", group, ifi.Name, ifi.Name)
			}
		}
		c, err := open(cfg.udpConfig(group))
		if err != nil {
			ifname := "the default interface"
			if cfg.Interface != nil {
				ifname = "interface " + cfg.Interface.Name
			}
			return nil, nil, nil, fmt.Errorf("mcast: group %v on %s: %w", group, ifname, err)
		}
		tr, sock, ifi = c, c, c.Interface()
	}
	if cfg.WrapTransport != nil {
		tr = cfg.WrapTransport(tr)
	}
	return tr, sock, ifi, nil
}

// ErrInterfaceGone is wrapped by the error that Receiver.Read and
// Sender.Send return once the interface of their sockets has gone (it
// was deleted, or renamed): its group membership and sending address
// went with it, and they are not restored if it comes back. Close and
// start again on an interface that exists.
var ErrInterfaceGone = errors.New("interface gone")

// interfaceCheck is how often watchInterface looks.
const interfaceCheck = time.Second

// watchInterface checks every interfaceCheck, until done is closed, that
// the interface ifi (nil: none to watch) still exists under its name, and
// calls fail once with an error naming it and the group if not. The
// channel it returns is closed when it has stopped (at once for a nil
// ifi): Close waits for it, leaving nothing running.
func watchInterface(ifi *net.Interface, group netip.AddrPort, done <-chan struct{}, fail func(error)) <-chan struct{} {
	stopped := make(chan struct{})
	if ifi == nil {
		close(stopped)
		return stopped
	}
	go func() {
		defer close(stopped)
		t := time.NewTicker(interfaceCheck)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			now, err := net.InterfaceByIndex(ifi.Index)
			if err == nil && now.Name == ifi.Name {
				continue
			}
			fail(fmt.Errorf("mcast: group %v: interface %s (index %d): %w", group, ifi.Name, ifi.Index, ErrInterfaceGone))
			return
		}
	}()
	return stopped
}

// timerReset points t at deadline d (zero: far away).
func timerReset(t *time.Timer, now, d time.Time) {
	wait := time.Hour
	if !d.IsZero() {
		wait = max(d.Sub(now), 0)
	}
	t.Reset(wait)
}

// errClosed is returned by every call on a closed Sender or Receiver.
var errClosed = &closedError{}

type closedError struct{}

func (*closedError) Error() string { return "mcast: closed" }
func (*closedError) Unwrap() error { return net.ErrClosed }

// ErrClosed is returned by calls on a closed Sender or Receiver; it
// satisfies errors.Is(err, net.ErrClosed).
var ErrClosed error = errClosed
