package mcast

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/relmcast/relmcast/internal/udp"
	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/session"
)

// ErrMessageTooLarge is returned by Send for a message longer than
// Sender.MaxMessageSize.
var ErrMessageTooLarge = errors.New("mcast: message too large")

// Sender publishes messages to a multicast group as one PGM source.
//
// Messages are numbered and kept in a retransmit window; receivers that
// miss one NAK it and the Sender repairs it. Send and Write may be called
// from several goroutines; one internal goroutine owns the protocol state.
type Sender struct {
	group   netip.AddrPort
	id      SourceID
	maxMsg  int
	maxTSDU int
	linger  time.Duration
	tr      Transport
	sock    offloader // the sockets under tr, or nil
	rd      *reader
	wlog    *errLog

	mu      sync.Mutex // guards the fields below
	queue   [][]byte   // messages handed over by Send, in order
	data    byteFIFO   // their bytes
	closing bool
	closed  bool
	err     error // ErrInterfaceGone: Send returns it

	wake     chan struct{} // Send/Close → loop
	space    chan struct{} // loop → Send: the queue has room
	statsReq chan chan SenderStats
	done     chan struct{} // the loop has exited

	core      *session.Sender // owned by the loop goroutine
	closeOnce sync.Once
	final     SenderStats

	start time.Time    // NewSender: Uptime counts from here
	log   *slog.Logger // nil: silent

	watch <-chan struct{} // closed when watchInterface has stopped
}

// Queue bounds between Send and the loop: beyond them Send blocks. The
// bytes are held in one buffer of that size (byteFIFO), which any
// message fits when the queue is empty.
const (
	sendQueueMsgs  = 1024
	sendQueueBytes = queueBytes
)

// SenderStats are a Sender's counters.
type SenderStats struct {
	session.SenderStats
	Source SourceID
	// Uptime is the time since NewSender: with the byte and message
	// counters, the mean rate (see Rate for the rate between snapshots).
	Uptime time.Duration
	// Offload tells whether sends use UDP GSO, and how often they did.
	Offload Offload
}

// NewSender starts a PGM source on group (address and port; the port is
// used for multicast data and for the NAKs it receives). A nil cfg means
// the defaults.
func NewSender(group netip.AddrPort, cfg *Config) (*Sender, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	if err := checkGroup(group); err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	tr, sock, ifi, err := openTransport(cfg, group, udp.OpenSource)
	if err != nil {
		return nil, err
	}
	gsi, port := cfg.GSI, cfg.SourcePort
	var rnd [12]byte
	rand.Read(rnd[:])
	// A random first sequence number, and OPT_SYN on the first packet:
	// a sender restarted with the same TSI is then told from its previous
	// session by receivers (see session.SenderConfig.SYN and FirstSeq).
	first := binary.BigEndian.Uint32(rnd[8:])
	if zeroFirstSeq {
		first = 0
	}
	if cfg.FECGroupSize > 0 {
		first -= first % uint32(cfg.FECGroupSize)
	}
	if gsi == ([6]byte{}) {
		gsi = hostGSI(rnd)
	}
	dport := group.Port()
	if cfg.Batch > 0 {
		dport = session.BatchDPort(dport) // plain PGM receivers drop the session
	}
	for port == 0 || port == group.Port() || port == dport {
		port = binary.BigEndian.Uint16(rnd[6:])
		rnd[6]++
	}
	tsi := wire.TSI{GSI: gsi, Port: port}
	overhead := ipOverhead(group.Addr())
	rate := cfg.Rate
	switch {
	case rate == 0:
		rate = DefaultRate / 8
	case rate < 0:
		rate = 0
	default:
		rate = max(rate/8, 1)
	}
	winPackets, winBytes := cfg.WindowPackets, cfg.WindowBytes
	if rate == 0 { // unlimited
		winPackets = cmp.Or(winPackets, unlimitedWindowPackets)
		winBytes = cmp.Or(winBytes, unlimitedWindowBytes)
	}
	now := time.Now()
	core, err := session.NewSender(session.SenderConfig{
		TSI:           tsi,
		DPort:         dport,
		Group:         group.Addr(),
		NLA:           tr.LocalAddr(),
		MaxTPDU:       cfg.mtu() - overhead,
		IPOverhead:    overhead,
		WindowPackets: winPackets,
		WindowBytes:   winBytes,
		WindowTime:    cfg.WindowTime,
		Rate:          rate,
		MaxMessage:    wire.MaxAPDU,
		AmbientSPM:    cfg.SPMInterval,
		Heartbeat:     heartbeat,
		FirstSeq:      first,
		SYN:           true,
		FEC: session.FECConfig{
			GroupSize: cfg.FECGroupSize,
			Proactive: cfg.FECProactive,
			OnDemand:  cfg.FECOnDemand,
		},
		Batch: session.BatchConfig{Delay: cfg.Batch, MaxBytes: cfg.BatchSize},
	}, now)
	if err != nil {
		tr.Close()
		return nil, err
	}
	linger := cfg.Linger
	switch {
	case linger == 0:
		linger = DefaultLinger
	case linger < 0:
		linger = 0
	}
	s := &Sender{
		group:    group,
		id:       SourceID(tsi),
		maxMsg:   wire.MaxAPDU,
		maxTSDU:  core.MaxTSDU(),
		linger:   linger,
		tr:       tr,
		sock:     sock,
		wake:     make(chan struct{}, 1),
		space:    make(chan struct{}, 1),
		statsReq: make(chan chan SenderStats),
		done:     make(chan struct{}),
		core:     core,
		start:    now,
		log:      cfg.Logger,
		data:     newByteFIFO(sendQueueBytes),
	}
	s.rd = startReader(tr, max(readSize, cfg.mtu()), cfg.Logger, true)
	s.wlog = &errLog{l: cfg.Logger, what: "send failed"}
	go s.loop(cfg.mtu())
	s.watch = watchInterface(ifi, group, s.done, s.fail)
	return s, nil
}

// heartbeat is the SPM schedule after data (session.SenderConfig.Heartbeat):
// SPMs at +2, +10, +100, +200, +300, +400, +700 and +1300 ms after the
// last data or repair. A receiver that lost the last packets before the
// sender paused learns of them only from an SPM's lead, so the first two,
// sooner than the session default's +100 ms, cut that tail to a few ms
// (then NAK back-off and repair). They cost at most two SPMs per pause in
// the data, 500 per second at most; data with gaps under 2 ms never
// fires them. From +100 ms on it is ZeroMQ's schedule.
var heartbeat = []time.Duration{
	2 * time.Millisecond, 8 * time.Millisecond, 90 * time.Millisecond,
	100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond,
	300 * time.Millisecond, 600 * time.Millisecond,
}

// zeroFirstSeq makes every Sender number its packets from 0, as OpenPGM
// does: set by this package's tests, which name sequence numbers.
var zeroFirstSeq bool

// hostGSI derives a GSI from the host name, as OpenPGM's
// pgm_gsi_create_from_hostname does (with another hash, so that we never
// share a GSI with an OpenPGM sender on the same host). A sender restarted
// on the same host and address then has the same GSI and a new port, which
// receivers report as a restart. Two live senders never share GSI and
// address: each binds its address and port exclusively. Without a host
// name, the GSI is random.
func hostGSI(rnd [12]byte) [6]byte {
	var gsi [6]byte
	name, err := os.Hostname()
	if err != nil || name == "" {
		copy(gsi[:], rnd[:])
		return gsi
	}
	sum := sha256.Sum256([]byte("relmcast GSI " + name))
	copy(gsi[:], sum[:])
	return gsi
}

// Source is the sender's identity as receivers see it.
func (s *Sender) Source() SourceID { return s.id }

// Addr is the unicast address the sender advertises and takes NAKs on.
func (s *Sender) Addr() netip.Addr { return s.tr.LocalAddr() }

// MaxMessageSize is the largest message Send takes: 65535 bytes, the
// largest APDU PGM's fragment option and OpenPGM allow. Messages larger
// than one packet (MaxPacketPayload) are fragmented; OpenPGM receivers
// take at most 16 fragments (22848 bytes at MTU 1500).
func (s *Sender) MaxMessageSize() int { return s.maxMsg }

// MaxPacketPayload is the largest message that travels in one packet,
// unfragmented: the MTU less the IP, UDP and PGM headers.
func (s *Sender) MaxPacketPayload() int { return s.maxTSDU }

// Send queues one message. It blocks while the queue ahead of the rate
// limiter is full, until ctx is done or the Sender is closed. The message
// is copied before Send returns. With Config.Batch, a small message may
// wait up to Batch for others to share its packet. Once the interface of
// its socket has gone, it returns an error that wraps ErrInterfaceGone
// and names the interface and group.
func (s *Sender) Send(ctx context.Context, msg []byte) error {
	if len(msg) > s.maxMsg {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrMessageTooLarge, len(msg), s.maxMsg)
	}
	for {
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			return ErrClosed
		}
		if err := s.err; err != nil {
			s.mu.Unlock()
			notify(s.space) // pass the wake-up on to another blocked Send
			return err
		}
		var b []byte
		ok := len(s.queue) < sendQueueMsgs
		if ok {
			b, ok = s.data.alloc(len(msg)) // an empty queue takes any message
		}
		if ok {
			copy(b, msg)
			s.queue = append(s.queue, b)
			first := len(s.queue) == 1
			s.mu.Unlock()
			if first {
				// The loop takes the whole queue whenever it runs, and
				// runs again when the rate limiter allows: only a message
				// into an empty queue needs to wake it.
				notify(s.wake)
			}
			return nil
		}
		s.mu.Unlock()
		select {
		case <-s.space:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return ErrClosed
		}
	}
}

// fail makes Send return err (a blocked one too).
func (s *Sender) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	notify(s.space)
}

// Write sends p as one message (io.Writer).
func (s *Sender) Write(p []byte) (int, error) {
	if err := s.Send(context.Background(), p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends what is queued, then FIN, keeps answering NAKs for the
// linger time, and releases everything. It is idempotent, and later calls
// on the Sender return ErrClosed.
func (s *Sender) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		notify(s.wake)
		<-s.done
		<-s.watch
		s.rd.close()
	})
	return nil
}

// Stats returns a snapshot of the counters.
func (s *Sender) Stats() SenderStats {
	c := make(chan SenderStats, 1)
	select {
	case s.statsReq <- c:
		return <-c
	case <-s.done:
		return s.final
	}
}

// notify leaves a wake-up in c, a channel of capacity 1, unless one is
// pending already: then it spares the channel's lock (Read calls it for
// every message while more are queued).
func notify(c chan struct{}) {
	if len(c) > 0 {
		return
	}
	select {
	case c <- struct{}{}:
	default:
	}
}

// loop is the goroutine that owns the protocol core: it moves queued
// messages in, feeds it received packets and timer ticks, and writes what
// it has to send.
func (s *Sender) loop(mtu int) {
	defer close(s.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	out := make([]Datagram, batchSize)
	scratch := make([][]byte, batchSize) // for the packets not in the window
	for i := range scratch {
		scratch[i] = make([]byte, 0, mtu)
	}
	var (
		pkt       wire.Packet
		closedAt  time.Time // when the core finished FIN; linger from there
		coreClose bool
		late      = lateNAKWarn{l: s.log}
	)
	for {
		now := time.Now()
		drained := s.takeQueue(now)
		if drained && !coreClose {
			s.core.Close(now)
			coreClose = true
		}
		s.flush(now, out, scratch)
		if coreClose && s.core.Done() {
			if closedAt.IsZero() {
				closedAt = now
			}
			if !now.Before(closedAt.Add(s.linger)) {
				s.final = s.stats()
				return
			}
		}
		d := s.core.NextDeadline()
		if !closedAt.IsZero() {
			if l := closedAt.Add(s.linger); d.IsZero() || l.Before(d) {
				d = l
			}
		}
		timerReset(timer, now, d)
		select {
		case <-s.wake:
		case <-timer.C:
		case b := <-s.rd.rx:
			now = time.Now()
			for _, d := range b.ds[:b.n] {
				if wire.Parse(d.Buf[:d.N], &pkt) != nil {
					continue
				}
				s.core.HandlePacket(now, &pkt, d.Addr)
				logNAKPacket(s.log, false, &pkt, d.Addr)
			}
			s.rd.release(b)
			if s.log != nil {
				st := s.core.Stats()
				late.check(now, &st)
			}
		case c := <-s.statsReq:
			c <- s.stats()
		}
	}
}

// takeQueue moves queued messages into the core while it accepts them.
// It reports whether Close was called and everything queued was taken.
func (s *Sender) takeQueue(now time.Time) (closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	took := 0
	for _, m := range s.queue {
		if !s.core.Writable(len(m)) {
			break
		}
		if err := s.core.Send(now, m); err != nil {
			break
		}
		s.data.free(len(m))
		took++
	}
	if took > 0 {
		n := copy(s.queue, s.queue[took:])
		clear(s.queue[n:])
		s.queue = s.queue[:n]
		notify(s.space)
	}
	return s.closing && len(s.queue) == 0
}

// flush writes everything the core has to send now, in batches. New data
// goes out from the core's window buffers (PollRef), which stay intact
// until the core is called again after the batch is written; other
// packets are built in scratch.
func (s *Sender) flush(now time.Time, out []Datagram, scratch [][]byte) {
	for {
		n := 0
		for n < len(out) {
			pkt, ok := s.core.PollRef(now, scratch[n][:0])
			if !ok {
				break
			}
			if cap(pkt) > 0 && &pkt[:1][0] == &scratch[n][:1][0] {
				scratch[n] = pkt[:0] // keep what append may have grown
			}
			out[n].Buf, out[n].N, out[n].Addr = pkt, len(pkt), s.group
			n++
		}
		if n == 0 {
			return
		}
		if _, err := s.tr.WriteBatch(out[:n]); err != nil {
			s.wlog.log(err) // what did not go is lost: receivers NAK it
		}
		s.rd.markBusy(now)
		clear(out[:n]) // hold no window buffer beyond the write
		if n < len(out) {
			return
		}
	}
}

func (s *Sender) stats() SenderStats {
	return SenderStats{SenderStats: s.core.Stats(), Source: s.id, Uptime: time.Since(s.start), Offload: offload(s.sock)}
}
