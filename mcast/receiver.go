package mcast

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/relmcast/relmcast/internal/udp"
	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/nak"
	"github.com/relmcast/relmcast/session"
)

// queueBytes bounds the message data a Receiver queues for Read (besides
// Config.Queue events), and the data a Sender queues ahead of its loop.
const queueBytes = 4 << 20

// Receiver receives the messages of every source sending to a multicast
// group, repairing what it misses. Read returns them as an ordered stream
// of events. Read may be called from several goroutines; one internal
// goroutine owns the protocol state.
type Receiver struct {
	group netip.AddrPort
	tr    Transport
	sock  offloader // the sockets under tr, or nil
	rd    *reader
	wlog  *errLog

	mu      sync.Mutex // guards the queue and closed
	queue   []Event    // ring of events ready for Read
	data    byteFIFO   // their Data, in the same order
	qBatch  []bool     // queue[i].Data is a batch (wire.CheckBatch), read one message at a time
	qOff    int        // bytes of the head batch already read
	qHead   int
	qLen    int
	closed  bool
	err     error         // ErrInterfaceGone: Read returns it once the queue is empty
	blocked bool          // the loop stopped delivering: the queue was full
	avail   chan struct{} // loop → Read: events are queued
	space   chan struct{} // Read → loop: the queue has room
	quit    chan struct{} // Close → loop
	done    chan struct{} // the loop has exited
	stats   chan chan ReceiverStats
	once    sync.Once
	final   ReceiverStats
	core    *session.Receiver // owned by the loop goroutine

	srcReq chan chan []SourceStats // Sources → loop
	srcBuf []session.SourceStats   // reused by the loop
	log    *slog.Logger            // nil: silent
	logQ   []Event                 // events to log after deliver (loop)
	watch  <-chan struct{}         // closed when watchInterface has stopped
}

// ReceiverStats are a Receiver's counters.
type ReceiverStats struct {
	session.ReceiverStats
	// Malformed counts datagrams that were not valid PGM.
	Malformed uint64
	// OtherGroup counts datagrams for another group on our port, which
	// the socket layer let through (it filters them on Linux).
	OtherGroup uint64
	// Offload tells whether reads use UDP GRO, and how often they did.
	Offload Offload
}

// Listen joins group (address and port) and starts receiving from every
// source sending to it. A nil cfg means the defaults.
func Listen(group netip.AddrPort, cfg *Config) (*Receiver, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tr, sock, ifi, err := openTransport(cfg, group, udp.OpenReceiver)
	if err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		var b [8]byte
		rand.Read(b[:])
		seed = binary.LittleEndian.Uint64(b[:])
	}
	q := cfg.Queue
	if q <= 0 {
		q = DefaultQueue
	}
	retries := cmp.Or(cfg.NAKRetries, 10)
	dataWait := cmp.Or(cfg.NAKDataWait, DefaultNAKDataWait)
	r := &Receiver{
		group:  group,
		tr:     tr,
		sock:   sock,
		queue:  make([]Event, q),
		qBatch: make([]bool, q),
		data:   newByteFIFO(queueBytes),
		avail:  make(chan struct{}, 1),
		space:  make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		stats:  make(chan chan ReceiverStats),
		core: session.NewReceiver(session.ReceiverConfig{
			DPort:        group.Port(),
			BatchDPort:   session.BatchDPort(group.Port()),
			Group:        group.Addr(),
			Window:       cfg.ReceiveWindow,
			WindowBytes:  cfg.ReceiveWindowBytes,
			MaxSources:   cfg.MaxSources,
			SourceExpiry: cmp.Or(cfg.SourceExpiry, DefaultSourceExpiry),
			Passive:      cfg.Passive,
			NAKRate:      cfg.NAKRate,
			Seed:         seed,
			FECMaxTSDU:   cfg.mtu() - ipOverhead(group.Addr()) - 24, // PGM header + data header
			NAK: nak.Config{
				BackoffIvl:  cmp.Or(cfg.NAKBackoff, 10*time.Millisecond),
				RepeatIvl:   cmp.Or(cfg.NAKRepeat, 100*time.Millisecond),
				RdataIvl:    dataWait,
				RdataFirst:  dataWait / 8,
				NCFRetries:  retries,
				DataRetries: retries,
			},
		}),
	}
	r.srcReq = make(chan chan []SourceStats)
	r.log = cfg.Logger
	r.rd = startReader(tr, max(readSize, cfg.mtu()), cfg.Logger, false)
	r.wlog = &errLog{l: cfg.Logger, what: "send failed"}
	go r.loop(cfg.mtu())
	r.watch = watchInterface(ifi, group, r.done, r.fail)
	return r, nil
}

// Read waits for the next event and stores it in ev, reusing ev.Data's
// capacity: a loop that reads into one Event allocates nothing per
// message. Each message of a batch (a sender's Config.Batch) is an event
// of its own. It returns ctx's error when ctx is done and no event is
// queued (a queued event is returned even with ctx done, so a done ctx
// makes Read a non-blocking poll), and ErrClosed after Close. Once the
// interface of its socket has gone (see ErrInterfaceGone), it returns an
// error that wraps ErrInterfaceGone and names the interface and group,
// after the events already queued.
func (r *Receiver) Read(ctx context.Context, ev *Event) error {
	for {
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return ErrClosed
		}
		if r.qLen > 0 {
			// The message leaves the queue's byte FIFO by a copy into
			// ev's own buffer: the queue's memory stays bounded (Queue
			// doc) whatever the readers keep.
			e := &r.queue[r.qHead]
			data := ev.Data
			*ev = *e
			if r.qBatch[r.qHead] {
				// One message of a batch; the event leaves the queue
				// with its last.
				msg, rest := wire.NextBatched(e.Data[r.qOff:])
				ev.Data = append(data[:0], msg...)
				if len(rest) > 0 {
					r.qOff = len(e.Data) - len(rest)
					r.mu.Unlock()
					notify(r.avail) // wake another reader
					return nil
				}
				r.qOff = 0
			} else {
				ev.Data = append(data[:0], e.Data...)
			}
			r.data.free(len(e.Data))
			e.Data = nil
			r.qHead = (r.qHead + 1) % len(r.queue)
			r.qLen--
			more, wake := r.qLen > 0, r.blocked
			r.blocked = false
			r.mu.Unlock()
			if wake {
				notify(r.space) // only a loop that stopped needs waking
			}
			if more {
				notify(r.avail) // wake another reader
			}
			return nil
		}
		if err := r.err; err != nil {
			r.mu.Unlock()
			notify(r.avail) // pass the wake-up on to another reader
			return err
		}
		r.mu.Unlock()
		select {
		case <-r.avail:
		case <-ctx.Done():
			return ctx.Err()
		case <-r.done:
			return ErrClosed
		}
	}
}

// fail makes Read return err once the events queued are read.
func (r *Receiver) fail(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
	notify(r.avail)
}

// Close leaves the group and stops the Receiver; a blocked Read returns
// ErrClosed. It is idempotent.
func (r *Receiver) Close() error {
	r.once.Do(func() {
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		close(r.quit)
		<-r.done
		<-r.watch
		r.rd.close()
	})
	return nil
}

// Stats returns a snapshot of the counters.
func (r *Receiver) Stats() ReceiverStats {
	c := make(chan ReceiverStats, 1)
	select {
	case r.stats <- c:
		return <-c
	case <-r.done:
		return r.final
	}
}

// loopCounters are counted by the loop goroutine.
type loopCounters struct{ malformed, otherGroup uint64 }

func (r *Receiver) snapshot(c loopCounters) ReceiverStats {
	return ReceiverStats{ReceiverStats: r.core.Stats(), Malformed: c.malformed, OtherGroup: c.otherGroup, Offload: offload(r.sock)}
}

// loop is the goroutine that owns the protocol core.
func (r *Receiver) loop(mtu int) {
	var counts loopCounters
	defer func() {
		r.final = r.snapshot(counts)
		close(r.done)
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	out := make([]Datagram, batchSize)
	for i := range out {
		out[i].Buf = make([]byte, 0, mtu)
	}
	var pkt wire.Packet
	group := r.group.Addr()
	// deadline is the core's next deadline as of the end of the last pass.
	// Packets handled since may have brought an earlier one; the timer,
	// reset at the end of every pass, fires for it. NextDeadline looks at
	// every source, so it is asked once a pass, not twice.
	var deadline time.Time
	for {
		now := time.Now()
		if !deadline.IsZero() && !now.Before(deadline) {
			r.core.Advance(now)
		}
		r.deliver()
		r.flush(out)
		deadline = r.core.NextDeadline()
		timerReset(timer, now, deadline)
		select {
		case <-r.quit:
			return
		case <-timer.C:
		case <-r.space:
		case b := <-r.rd.rx:
			now = time.Now()
			for _, d := range b.ds[:b.n] {
				if d.Dst.IsValid() && d.Dst.IsMulticast() && d.Dst.Unmap().WithZone("") != group.WithZone("") {
					counts.otherGroup++
					continue
				}
				if wire.Parse(d.Buf[:d.N], &pkt) != nil {
					counts.malformed++
					continue
				}
				r.core.HandlePacket(now, &pkt, d.Addr.Addr().Unmap())
			}
			r.rd.release(b)
		case c := <-r.stats:
			c <- r.snapshot(counts)
		case c := <-r.srcReq:
			c <- r.sourceStats()
		}
	}
}

// deliver moves ready events from the core into the queue for Read.
func (r *Receiver) deliver() {
	r.mu.Lock()
	n := r.qLen
	r.core.Deliver(func(e *session.Event) bool {
		if r.qLen == len(r.queue) {
			r.blocked = true
			return false
		}
		data, ok := r.data.alloc(len(e.Data))
		if !ok {
			r.blocked = true
			return false
		}
		copy(data, e.Data)
		i := (r.qHead + r.qLen) % len(r.queue)
		ev := &r.queue[i]
		ev.copyFrom(e, data)
		r.qBatch[i] = e.Batch > 0
		r.qLen++
		if r.log != nil && ev.Kind != EventData {
			r.logQ = append(r.logQ, *ev) // logged once r.mu is released
			r.logQ[len(r.logQ)-1].Data = nil
		}
		return true
	})
	added := r.qLen > n
	r.mu.Unlock()
	if added {
		notify(r.avail)
	}
	// Logged outside r.mu: a slow log handler must not hold up Read.
	for i := range r.logQ {
		logEvent(r.log, &r.logQ[i])
	}
	clear(r.logQ)
	r.logQ = r.logQ[:0]
}

// flush sends the NAKs and SPMRs the core has queued.
func (r *Receiver) flush(out []Datagram) {
	for {
		n := 0
		for n < len(out) {
			pkt, dst, ok := r.core.Poll(out[n].Buf[:0])
			if !ok {
				break
			}
			out[n].Buf, out[n].N, out[n].Addr = pkt, len(pkt), dst
			logNAK(r.log, true, pkt, dst)
			n++
		}
		if n == 0 {
			return
		}
		if _, err := r.tr.WriteBatch(out[:n]); err != nil {
			r.wlog.log(err) // what did not go is lost: receivers NAK it
		}
		if n < len(out) {
			return
		}
	}
}
