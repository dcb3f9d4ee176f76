package session

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
)

// Errors returned by Sender.Send.
var (
	// ErrWouldBlock: the message does not fit under SenderConfig.MaxQueued
	// right now; nothing was queued. Wait until Writable reports true.
	ErrWouldBlock = errors.New("session: send queue full")
	// ErrMessageTooLarge: the message is longer than SenderConfig.MaxMessage.
	ErrMessageTooLarge = errors.New("session: message too large")
	// ErrClosed: Send after Close. errors.Is(ErrClosed, net.ErrClosed) holds.
	ErrClosed = fmt.Errorf("session: sender closed: %w", net.ErrClosed)
)

// Sender defaults (see SenderConfig).
const (
	defaultMaxTPDU       = 1500 - 20 - 8 // IPv4, MTU 1500
	defaultIPOverhead    = 20 + 8        // IPv4 + UDP headers
	defaultWindowPackets = 16384
	defaultWindowBytes   = 32 << 20
	defaultWindowTime    = 10 * time.Second
	defaultAmbientSPM    = time.Second
	defaultNAKElim       = 20 * time.Millisecond
	defaultMaxQueued     = 4096

	// minTPDU keeps MaxFragment at 20 bytes or more.
	minTPDU = wire.HeaderLen + wire.DataHeaderLen + wire.FragmentOverhead + 20
	// maxTPDU is the largest UDP payload over IPv4.
	maxTPDU = 65535 - 20 - 8
	// maxWindowPackets and maxMaxQueued keep the ring well inside the
	// 2^31 sequence half-space that serial arithmetic needs.
	maxWindowPackets = 1 << 24
	maxMaxQueued     = 1 << 24

	// txStartSPMs and txFinSPMs: OpenPGM sends 3 SPMs at connect and 3 SPMs
	// with OPT_FIN at pgm_close(sock, TRUE).
	txStartSPMs = 3
	txFinSPMs   = 3
	// txSPMRInterval coalesces SPMR-triggered SPMs: at most one per
	// interval, so an SPMR flood cannot amplify into an SPM flood.
	txSPMRInterval = 10 * time.Millisecond
	// txNCFMax is the largest NCF: IPv6 NLAs and a full NAK list, plus
	// IP and UDP headers.
	txNCFMax = wire.HeaderLen + 4 + 2*20 + 4 + 4 + 4*wire.MaxNAKList + 48
	// txNCFQueue bounds the NCFs waiting to be polled. The owner drains
	// Poll after every batch of received packets, so this only overflows
	// under a NAK flood larger than a read batch; extra NCFs are dropped
	// and counted (the repairs are still queued).
	txNCFQueue = 128
)

// defaultHeartbeat is the SPM heartbeat after data. Unlike OpenPGM, each
// entry is used exactly once, in order (OpenPGM stores its list as
// [0, h1..hN], uses h1 twice and never uses hN; research §5.3).
var defaultHeartbeat = []time.Duration{
	100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond,
	100 * time.Millisecond, 300 * time.Millisecond, 600 * time.Millisecond,
}

// SenderConfig configures a Sender. Zero values mean the default. A
// SenderConfig must not be modified after it has been passed to NewSender
// (the Sender keeps its own copy anyway).
type SenderConfig struct {
	// TSI is the session: our GSI plus the data-source port (the caller
	// draws the random port). Port must not be 0.
	TSI wire.TSI
	// DPort is the data-destination port, the UDP port P. Must not be 0.
	DPort uint16
	// Group is the multicast group. NAKs must name it as group NLA.
	Group netip.Addr
	// NLA is our unicast address, advertised as the SPM path NLA. NAKs
	// must name it as source NLA.
	NLA netip.Addr

	// MaxTPDU is the largest PGM packet (UDP payload) we send;
	// 0 => 1472 (1500 - 20 - 8: IPv4, MTU 1500). At least 64.
	MaxTPDU int
	// IPOverhead is charged per packet by the rate limiter for the IP and
	// UDP headers; 0 => 28 (IPv4 + UDP). Pass 48 for IPv6.
	IPOverhead int
	// MaxMessage is the largest message; 0 => wire.MaxAPDU (65535).
	// Larger Sends fail with ErrMessageTooLarge.
	//
	// OpenPGM receivers (rxw.c) accept at most 16 fragments per APDU
	// (PGM_MAX_FRAGMENTS) and mark larger messages lost, so for
	// interoperation with libpgm receivers keep MaxMessage <=
	// 16*MaxFragment (22848 bytes at MTU 1500, OpenPGM's own max_apdu).
	MaxMessage int

	// WindowPackets bounds the transmit window by the number of sent TPDUs
	// kept for repair; 0 => 16384.
	WindowPackets int
	// WindowBytes bounds it by the payload bytes kept; 0 => 32 MiB. At
	// least MaxTSDU.
	WindowBytes int
	// WindowTime bounds it by age since first transmission; 0 => 10s.
	// (OpenPGM has no time bound: its window only drops data on overflow.)
	WindowTime time.Duration

	// Rate is the wire rate in bytes per second, IPOverhead included, of
	// ODATA and RDATA together; 0 => unlimited. NCFs and SPMs are never
	// rate limited. (OpenPGM charges non-connect SPMs to its total bucket
	// and also has separate ODATA and RDATA buckets; we have one bucket.)
	Rate int64
	// Burst is the token bucket depth in bytes;
	// 0 => max(Rate/100 (10 ms of data), 4*(MaxTPDU+IPOverhead)).
	// At least MaxTPDU+IPOverhead.
	Burst int

	// AmbientSPM is the longest time without an SPM; 0 => 1s. This is
	// deliberately much shorter than OpenPGM's 30s, so that receivers can
	// detect a dead source within seconds; it also keeps flowing during
	// continuous data, when the heartbeat never fires.
	AmbientSPM time.Duration
	// Heartbeat is the SPM heartbeat after data: when a message's last
	// TPDU (or an RDATA) is sent at t, SPMs follow at t+h[0], then h[1]
	// after that, and so on; after the list the ambient interval applies.
	// nil => {100, 100, 100, 100, 300, 600} ms, i.e. SPMs at +100, +200,
	// +300, +400, +700 and +1300 ms after the last data. A non-nil empty
	// slice turns the heartbeat off. OpenPGM differs: its list is stored as
	// [0, h1..hN], h1 is used twice and hN never (research §5.3).
	Heartbeat []time.Duration

	// NAKElim: after an RDATA for sqn s, further NAKs for s within this
	// interval are NCF'd but cause no further RDATA; 0 => 20ms, negative
	// => no interval (only NAKs for a repair still queued are merged, as
	// OpenPGM does).
	NAKElim time.Duration
	// MaxQueued bounds the TPDUs accepted by Send and not yet sent (held
	// back by the rate limiter); 0 => 4096. Send returns ErrWouldBlock
	// rather than exceed it. Must hold a MaxMessage message.
	MaxQueued int
	// FirstSeq is the first data sequence number (OpenPGM starts at 0).
	// With FEC on it must be a multiple of FEC.GroupSize. A random one
	// (as package mcast draws) makes a restarted sender's numbers land
	// inside a receiver's window of its previous session with
	// probability about Window/2^32 only.
	FirstSeq uint32
	// SYN marks the first data packet of the session (its first TPDU)
	// with OPT_SYN (RFC 3208 §9.4), so that receivers tell a restarted
	// sender with the same TSI from its previous session at once (see
	// Receiver). OpenPGM receivers ignore the option. The TPDU carrying
	// it has 8 bytes of options more (4 with OPT_FRAGMENT: the first
	// fragment is 4 bytes shorter), so it goes only on a first message
	// that fits as many TPDUs with it as without: at most MaxTSDU-8
	// bytes, or fragmented with room to spare in its last fragment. Off
	// when FEC is on.
	SYN bool

	// NCFRate bounds the NCFs, in bytes per second on the wire
	// (IPOverhead included), with a depth of 20 ms of it (at least 16
	// NCFs). NCFs over it wait in the NCF queue (its overflow is dropped
	// and counted in NCFsDropped); RDATA and ODATA do not wait for them.
	// A NAK flood then multicasts at most NCFRate of NCFs to the group.
	// 0 => Rate/10 when rate limited (at least 64 KiB/s), 10 MB/s when
	// not; negative => unlimited. Independently of it, a sequence number
	// is confirmed by NCF at most once per NAKElim interval.
	NCFRate int64

	// FEC turns on forward error correction (parity packets); off by
	// default. See FECConfig.
	FEC FECConfig
	// Batch turns on small-message batching; off by default. See
	// BatchConfig.
	Batch BatchConfig
}

func (c *SenderConfig) setDefaults() {
	if c.MaxTPDU == 0 {
		c.MaxTPDU = defaultMaxTPDU
	}
	if c.IPOverhead == 0 {
		c.IPOverhead = defaultIPOverhead
	}
	if c.MaxMessage == 0 {
		c.MaxMessage = wire.MaxAPDU
	}
	if c.WindowPackets == 0 {
		c.WindowPackets = defaultWindowPackets
	}
	if c.WindowBytes == 0 {
		c.WindowBytes = defaultWindowBytes
	}
	if c.WindowTime == 0 {
		c.WindowTime = defaultWindowTime
	}
	if c.Rate > 0 && c.Burst == 0 {
		c.Burst = int(max(c.Rate/100, int64(4*(c.MaxTPDU+c.IPOverhead))))
	}
	if c.AmbientSPM == 0 {
		c.AmbientSPM = defaultAmbientSPM
	}
	if c.Heartbeat == nil {
		c.Heartbeat = defaultHeartbeat
	}
	c.Heartbeat = slices.Clone(c.Heartbeat)
	if c.NAKElim == 0 {
		c.NAKElim = defaultNAKElim
	}
	if c.MaxQueued == 0 {
		c.MaxQueued = defaultMaxQueued
	}
	if c.NCFRate == 0 {
		c.NCFRate = 10_000_000
		if c.Rate > 0 {
			c.NCFRate = max(c.Rate/10, 64<<10)
		}
	}
	if c.FEC.GroupSize > 0 {
		c.SYN = false // parity covers OPT_FRAGMENT only
	}
}

func (c *SenderConfig) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("session: SenderConfig."+format, a...)
	}
	switch {
	case c.TSI.Port == 0:
		return bad("TSI.Port is 0")
	case c.DPort == 0:
		return bad("DPort is 0")
	case !c.Group.IsValid() || !c.Group.Unmap().IsMulticast():
		return bad("Group %v is not a multicast address", c.Group)
	case !c.NLA.IsValid() || c.NLA.IsUnspecified() || c.NLA.IsMulticast():
		return bad("NLA %v is not a unicast address", c.NLA)
	case c.MaxTPDU < minTPDU || c.MaxTPDU > maxTPDU:
		return bad("MaxTPDU %d is outside %d..%d", c.MaxTPDU, minTPDU, maxTPDU)
	case c.IPOverhead < 0:
		return bad("IPOverhead %d is negative", c.IPOverhead)
	case c.MaxMessage < 0 || c.MaxMessage > wire.MaxAPDU:
		return bad("MaxMessage %d is outside 1..%d", c.MaxMessage, wire.MaxAPDU)
	case c.WindowPackets < 1 || c.WindowPackets > maxWindowPackets:
		return bad("WindowPackets %d is outside 1..%d", c.WindowPackets, maxWindowPackets)
	case c.WindowBytes < c.MaxTPDU-wire.HeaderLen-wire.DataHeaderLen:
		return bad("WindowBytes %d is less than one TPDU payload (%d)",
			c.WindowBytes, c.MaxTPDU-wire.HeaderLen-wire.DataHeaderLen)
	case c.WindowTime < 0:
		return bad("WindowTime %v is negative", c.WindowTime)
	case c.Rate < 0:
		return bad("Rate %d is negative", c.Rate)
	case c.Burst < 0:
		return bad("Burst %d is negative", c.Burst)
	case c.Rate > 0 && c.Burst < c.MaxTPDU+c.IPOverhead:
		return bad("Burst %d is less than one packet (%d)", c.Burst, c.MaxTPDU+c.IPOverhead)
	case c.AmbientSPM < 0:
		return bad("AmbientSPM %v is negative", c.AmbientSPM)
	case c.MaxQueued < 1 || c.MaxQueued > maxMaxQueued:
		return bad("MaxQueued %d is outside 1..%d", c.MaxQueued, maxMaxQueued)
	}
	for i, h := range c.Heartbeat {
		if h <= 0 {
			return bad("Heartbeat[%d] %v is not positive", i, h)
		}
	}
	if err := c.FEC.validate(c); err != nil {
		return err
	}
	if err := c.Batch.validate(c); err != nil {
		return err
	}
	maxTSDU := c.maxTSDU()
	if n := txTPDUs(c.MaxMessage, maxTSDU, maxTSDU-wire.FragmentOverhead); n > c.MaxQueued {
		return bad("MaxQueued %d cannot hold a MaxMessage (%d bytes = %d TPDUs)",
			c.MaxQueued, c.MaxMessage, n)
	}
	return nil
}

// txTPDUs is the number of TPDUs a message of n bytes takes.
func txTPDUs(n, maxTSDU, maxFrag int) int {
	if n <= maxTSDU {
		return 1
	}
	return (n + maxFrag - 1) / maxFrag
}

// SenderStats are a Sender's counters and gauges.
type SenderStats struct {
	Messages     uint64 // messages whose last TPDU has been sent as ODATA
	MessageBytes uint64 // their payload bytes

	ODATA, RDATA, SPM, NCF uint64 // packets returned by Poll
	ODATABytes, RDATABytes uint64 // PGM bytes (UDP payload) of ODATA and RDATA

	NAKs              uint64         // valid selective NAK packets received
	NAKSeqs           uint64         // sequence numbers named by them
	BadNAKs           uint64         // NAKs dropped: wrong TSI/ports, source NLA, group NLA or list
	ParityNAKs        uint64         // valid parity NAK packets received (see FECConfig)
	ParityNAKsIgnored uint64         // parity requests not answered: on-demand parity off, or group no longer whole
	ParityEliminated  uint64         // parity requests covered by parity already queued or just sent
	ParityProactive   uint64         // pro-active parity packets sent (counted in RDATA too)
	ParityOnDemand    uint64         // on-demand parity packets sent (counted in RDATA too)
	Padding           uint64         // empty padding TPDUs queued at Close to complete the last group
	NNAKs             uint64         // NNAKs (counted only)
	NAKsEliminated    uint64         // sqns already queued for repair or repaired within NAKElim
	NAKsOutsideWindow uint64         // sqns not in the window (gone already, or not yet sent)
	LastOutsideNAKer  netip.AddrPort // sender of the last such NAK
	SPMRs             uint64         // valid SPMRs received
	NCFsDropped       uint64         // NCFs not queued because the NCF queue was full
	NCFsEliminated    uint64         // sqns not confirmed again: NCF'd less than NAKElim ago
	Ignored           uint64         // other types, or packets for another session

	// LateNAKers are the receivers whose NAKs named sqns outside the
	// window, the heaviest and the latest (see LateNAKer); entries with
	// NAKs 0 are empty.
	LateNAKers [MaxLateNAKers]LateNAKer

	WindowPackets int // sent TPDUs held for repair
	WindowBytes   int // their payload bytes
	Queued        int // TPDUs accepted by Send, not yet sent as ODATA
	RepairsQueued int // sqns waiting for RDATA

	// WindowMaxPackets and WindowMaxBytes bound WindowPackets and
	// WindowBytes (SenderConfig.WindowPackets and WindowBytes).
	WindowMaxPackets, WindowMaxBytes int
	// Trail and Lead are the window's first and last sequence numbers
	// (Lead = Trail-1 when it is empty).
	Trail, Lead uint32
}

// Slot flags.
const (
	txLast     uint8 = 1 << iota // last TPDU of its message
	txQueued                     // queued for repair
	txRepaired                   // repairedAt is valid
	txFrag                       // carries OPT_FRAGMENT
	txNCFd                       // ncfAt is valid
)

// txSlot holds one TPDU of the window ring: the encoded ODATA (its trail
// and checksum are filled in on the copy made at Poll time).
type txSlot struct {
	buf        []byte // encoded ODATA; capacity MaxTPDU, reused
	sentAt     int64  // first transmission, ns since base
	repairedAt int64  // last RDATA, ns since base
	ncfAt      int64  // last NCF naming it, ns since base
	tsdu       int32  // payload length
	flags      uint8
	batchN     uint16 // messages in a batch (sender_batch.go); 0: not a batch

	// FEC state of the transmission group that starts at this slot
	// (meaningful on a group's first slot only; see sender_fec.go).
	parNext  uint16 // next fresh parity index h to send (mod MaxParity)
	parPend  uint16 // parity packets of the group queued, not yet sent
	parRound uint16 // parity packets queued in the current elimination round
	parAt    int64  // when the group's last parity packet was sent
}

// txNCF is a pending NCF: the sqn and list of the NAK it answers.
type txNCF struct {
	seq  uint32
	opts uint8 // wire.OptParity for an NCF answering a parity NAK
	n    uint8
	list [wire.MaxNAKList]uint32
}

// Sender is the sans-IO core of a PGM source: the transmit window,
// fragmentation, rate limiting, the SPM schedule and NAK/NCF/RDATA
// handling. It does no I/O and reads no clock: every method takes the
// current time, and the owner sends what Poll returns (to Group:DPort) and
// calls Poll again no later than NextDeadline. Not safe for concurrent use.
//
// Sequence numbers: [trail, nextSend) are sent and held for repair (the
// window), [nextSend, nextSeq) are accepted but not yet sent. The
// advertised lead is nextSend-1: receivers cannot NAK what has not been
// sent. The trail moves only when sent data really leaves the window.
type Sender struct {
	cfg        SenderConfig // defaults applied
	nla, group netip.Addr   // unmapped, without zone, for comparing with NAKs
	maxTSDU    int
	maxFrag    int
	windowTime int64
	nakElim    int64
	ambient    int64

	base time.Time // time 0 of the ns clocks below
	now  int64     // latest time seen, ns since base (never goes back)

	slots []txSlot // power-of-two ring indexed by sqn & (len-1)
	// freeBufs are TPDU buffers of evicted slots, for the next ones
	// queued: only the slots in use hold one. The ring is a power of two
	// (32768 slots for the default 16384+4096), and every slot would
	// otherwise keep a MaxTPDU buffer once the numbers have gone round
	// it: 48 MB where at most 30 MB are in use.
	freeBufs [][]byte
	maxSlots int
	trail    uint32
	nextSend uint32
	nextSeq  uint32
	sentSize int // payload bytes in [trail, nextSend)

	// Repair FIFO: a power-of-two ring of sqns. Entries whose slot lost
	// its txQueued flag (evicted) are stale and skipped.
	rq      []uint32
	rqHead  int
	rqLen   int
	repairs int // live entries

	ncf     [txNCFQueue]txNCF
	ncfHead int
	ncfLen  int

	bucket    txBucket
	ncfBucket txBucket                // NCFRate
	ncfSize   int                     // encoded size of the NCF at the head of the queue (0: unknown)
	synDone   bool                    // the first TPDU (OPT_SYN) has been queued
	ncfKeep   [wire.MaxNAKSeqs]uint32 // sqns of the NAK being NCF'd

	odataTurn bool // after an RDATA, waiting ODATA goes next (Poll)

	spmSeq      uint32
	startLeft   int
	finLeft     int
	finStarted  bool
	closed      bool
	spmrPending bool
	spmrAt      int64
	lastSPMR    int64 // when the last pending SPMR was answered
	hbIdx       int   // next Heartbeat index; 0 = heartbeat idle
	hbAt        int64
	ambientAt   int64

	fec *txFEC // nil: FEC off

	batch txBatch // small-message batching (sender_batch.go)

	stats SenderStats
}

// NewSender returns a source for cfg, created at now, with the 3 start SPMs
// queued (OpenPGM sends 3 at connect, without options).
func NewSender(cfg SenderConfig, now time.Time) (*Sender, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	maxTSDU := cfg.maxTSDU()
	s := &Sender{
		cfg:        cfg,
		nla:        cfg.NLA.Unmap().WithZone(""),
		group:      cfg.Group.Unmap().WithZone(""),
		maxTSDU:    maxTSDU,
		maxFrag:    maxTSDU - wire.FragmentOverhead,
		windowTime: int64(cfg.WindowTime),
		nakElim:    max(int64(cfg.NAKElim), 0),
		ambient:    int64(cfg.AmbientSPM),
		base:       now,
		maxSlots:   txPow2(cfg.WindowPackets + cfg.MaxQueued + cfg.FEC.GroupSize),
		trail:      cfg.FirstSeq,
		nextSend:   cfg.FirstSeq,
		nextSeq:    cfg.FirstSeq,
		bucket:     newTxBucket(cfg.Rate, cfg.Burst),
		ncfBucket:  newTxBucket(max(cfg.NCFRate, 0), int(max(cfg.NCFRate/50, 16*txNCFMax))),
		synDone:    !cfg.SYN,
		startLeft:  txStartSPMs,
		lastSPMR:   math.MinInt64 / 4,
		ambientAt:  int64(cfg.AmbientSPM),
	}
	s.slots = make([]txSlot, min(64, s.maxSlots))
	if cfg.FEC.GroupSize > 0 {
		s.fec = newTxFEC(&cfg)
	}
	s.initBatch()
	return s, nil
}

// txAddSat is a+b for b >= 0, saturating at math.MaxInt64 (durations in
// the config may be huge).
func txAddSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// txPow2 is the smallest power of two >= n.
func txPow2(n int) int {
	p := 1
	for p < n {
		p <<= 1
	}
	return p
}

// MaxTSDU is the largest payload of a single-TPDU message (no options):
// MaxTPDU-16-8, and 22 bytes less with FEC on (see FECConfig). Longer
// messages are fragmented.
func (s *Sender) MaxTSDU() int { return s.maxTSDU }

// MaxFragment is the payload of each fragment but the last of a
// fragmented message: MaxTSDU-20 (room for OPT_LENGTH and OPT_FRAGMENT).
func (s *Sender) MaxFragment() int { return s.maxFrag }

// Config returns the configuration in use, defaults filled in.
func (s *Sender) Config() SenderConfig {
	c := s.cfg
	c.Heartbeat = slices.Clone(c.Heartbeat)
	return c
}

// tick converts now to ns since base, never going back in time.
func (s *Sender) tick(now time.Time) int64 {
	if d := int64(now.Sub(s.base)); d > s.now {
		s.now = d
	}
	return s.now
}

func (s *Sender) slot(q uint32) *txSlot { return &s.slots[q&uint32(len(s.slots)-1)] }

func (s *Sender) unsent() int { return int(s.nextSeq - s.nextSend) }

// inWindow reports whether q has been sent and is still held.
func (s *Sender) inWindow(q uint32) bool { return q-s.trail < s.nextSend-s.trail }

// Writable reports whether Send would accept a message of n bytes now.
func (s *Sender) Writable(n int) bool {
	if s.batchable(n) {
		return !s.closed && s.writableBatched(n)
	}
	return !s.closed && n >= 0 && n <= s.cfg.MaxMessage &&
		s.reserved()+txTPDUs(n, s.maxTSDU, s.maxFrag) <= s.cfg.MaxQueued
}

// Send queues one message. A message of at most MaxTSDU bytes (zero
// included) becomes one ODATA without options; a longer one is cut into
// TPDUs of MaxFragment bytes (the last shorter), each carrying
// OPT_FRAGMENT. OpenPGM receivers crash on OPT_FRAGMENT in a single-TPDU
// message, so that is never sent. msg is copied.
//
// Send fails with ErrClosed after Close, ErrMessageTooLarge above
// MaxMessage and ErrWouldBlock (nothing queued) when the message's TPDUs
// do not fit under MaxQueued.
func (s *Sender) Send(now time.Time, msg []byte) error {
	t := s.tick(now)
	switch {
	case s.closed:
		return ErrClosed
	case len(msg) > s.cfg.MaxMessage:
		return ErrMessageTooLarge
	case s.batchable(len(msg)):
		return s.sendBatched(t, msg)
	}
	s.closeBatch() // a message that is not batched goes after the open batch
	n := txTPDUs(len(msg), s.maxTSDU, s.maxFrag)
	syn := !s.synDone && s.unsent() == 0
	first := s.maxFrag // payload of the first fragment
	if syn {
		// The first TPDU carries OPT_SYN: 8 bytes more without
		// OPT_FRAGMENT, 4 with it (the first fragment is 4 bytes
		// shorter). Only where that costs no TPDU more: a message that
		// fits one TPDU is never fragmented for it (ZeroMQ receivers
		// take no fragmented message, see mcast/zmqpgm).
		switch {
		case n == 1:
			syn = len(msg) <= s.maxTSDU-8
		default:
			first -= 4
			syn = 1+(len(msg)-first+s.maxFrag-1)/s.maxFrag == n
		}
		if !syn {
			first = s.maxFrag
		}
	}
	if s.unsent()+n > s.cfg.MaxQueued {
		return ErrWouldBlock
	}
	s.expire(t)
	s.reserve(n)
	if syn {
		s.synDone = true
	}
	if n == 1 {
		s.enqueue(msg, false, wire.Fragment{}, true, syn)
		return nil
	}
	f := wire.Fragment{First: s.nextSeq, Length: uint32(len(msg))}
	for off, size := 0, first; off < len(msg); off, size = off+size, s.maxFrag {
		end := min(off+size, len(msg))
		f.Offset = uint32(off)
		s.enqueue(msg[off:end], true, f, end == len(msg), syn && off == 0)
	}
	return nil
}

// reserve grows the ring, if needed, to hold n more TPDUs. The ring only
// grows while the Sender warms up: it is bounded by WindowPackets (sent)
// plus MaxQueued (unsent).
func (s *Sender) reserve(n int) {
	need := int(s.nextSeq-s.trail) + n
	if need <= len(s.slots) {
		return
	}
	size := len(s.slots)
	for size < need {
		size *= 2
	}
	size = min(size, s.maxSlots)
	slots := make([]txSlot, size)
	nm := uint32(size - 1)
	for q := s.trail; q != s.nextSeq; q++ {
		slots[q&nm] = *s.slot(q)
	}
	s.slots = slots
}

// enqueue encodes one TPDU into the next slot, with OPT_SYN if syn.
func (s *Sender) enqueue(payload []byte, frag bool, f wire.Fragment, last, syn bool) {
	sl := s.slot(s.nextSeq)
	sl.buf = txAppendODATA(s.slotBuf(sl), &s.cfg, s.nextSeq, frag, f, payload, syn)
	sl.tsdu = int32(len(payload))
	sl.flags = 0
	sl.batchN = 0
	sl.parNext, sl.parPend, sl.parRound = 0, 0, 0
	if last {
		sl.flags = txLast
	}
	if frag {
		sl.flags |= txFrag
	}
	s.nextSeq++
}

// slotBuf returns sl's TPDU buffer, empty, taking one of an evicted slot
// (or a new one) if sl has none: buffers live only on slots in use.
func (s *Sender) slotBuf(sl *txSlot) []byte {
	if cap(sl.buf) >= s.cfg.MaxTPDU {
		return sl.buf[:0]
	}
	if n := len(s.freeBufs); n > 0 {
		buf := s.freeBufs[n-1][:0]
		s.freeBufs = s.freeBufs[:n-1]
		return buf
	}
	return make([]byte, 0, s.cfg.MaxTPDU)
}

// txAppendODATA encodes an ODATA TPDU with a zero trail and checksum (both
// are written at Poll time, on the copy that is sent). It produces what
// wire.Packet.Append produces (the tests check this) but skips Append's
// checksum, which would be computed twice per packet otherwise.
//
// With syn, OPT_SYN follows (last, after OPT_FRAGMENT if any, so that
// OPT_FRAGMENT stays where messageLen and slotOriginal read it).
func txAppendODATA(b []byte, c *SenderConfig, seq uint32, frag bool, f wire.Fragment, payload []byte, syn bool) []byte {
	var opts byte
	if frag || syn {
		opts = wire.OptPresent // neither option is network-significant
	}
	b = binary.BigEndian.AppendUint16(b, c.TSI.Port)
	b = binary.BigEndian.AppendUint16(b, c.DPort)
	b = append(b, byte(wire.TypeODATA), opts, 0, 0) // type, options, checksum
	b = append(b, c.TSI.GSI[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	b = binary.BigEndian.AppendUint32(b, seq)
	b = append(b, 0, 0, 0, 0) // TXW_TRAIL
	const optEnd, optSyn = 0x80, 0x0D
	switch {
	case frag:
		// OPT_LENGTH (type 0x00, length 4, total 20 or 24), then
		// OPT_FRAGMENT (type 0x01, | OPT_END 0x80 when last, length
		// 16, 2 reserved bytes, first sqn, offset, APDU length).
		total, end := byte(4+wire.FragmentOptLen), byte(optEnd)
		if syn {
			total, end = total+4, 0
		}
		b = append(b, 0x00, 4, 0, total, 0x01|end, wire.FragmentOptLen, 0, 0)
		b = binary.BigEndian.AppendUint32(b, f.First)
		b = binary.BigEndian.AppendUint32(b, f.Offset)
		b = binary.BigEndian.AppendUint32(b, f.Length)
		if syn {
			b = append(b, optSyn|optEnd, 4, 0, 0)
		}
	case syn:
		b = append(b, 0x00, 4, 0, 8, optSyn|optEnd, 4, 0, 0)
	}
	return append(b, payload...)
}

// evictOne drops the trail TPDU from the window (it has been sent).
func (s *Sender) evictOne() {
	sl := s.slot(s.trail)
	if sl.flags&txQueued != 0 {
		s.repairs--
	}
	sl.flags = 0
	s.sentSize -= int(sl.tsdu)
	s.trail++
	if sl.buf != nil {
		s.freeBufs = append(s.freeBufs, sl.buf)
		sl.buf = nil
	}
}

// expire evicts sent TPDUs older than WindowTime.
func (s *Sender) expire(t int64) {
	for s.trail != s.nextSend && t-s.slot(s.trail).sentAt >= s.windowTime {
		s.evictOne()
	}
}

// HandlePacket processes a packet addressed to the source: a selective NAK
// (answered by one NCF, and RDATA for what the window still holds), an
// NNAK (counted) or an SPMR (answered by an SPM, coalesced). Parity NAKs
// are answered with fresh parity when on-demand parity is on, and counted
// and ignored otherwise, as OpenPGM does (see FECConfig). from is only
// kept for statistics.
//
// Validation follows OpenPGM: the GSI must be ours, p.DPort our TSI port
// and p.SPort our DPort; a NAK must name NLA as source and Group as group.
func (s *Sender) HandlePacket(now time.Time, p *wire.Packet, from netip.AddrPort) {
	t := s.tick(now)
	s.expire(t)
	switch p.Type {
	case wire.TypeNAK, wire.TypeNNAK, wire.TypeSPMR:
	default:
		s.stats.Ignored++
		return
	}
	if p.GSI != s.cfg.TSI.GSI || p.DPort != s.cfg.TSI.Port || p.SPort != s.cfg.DPort {
		if p.Type == wire.TypeNAK {
			s.stats.BadNAKs++
		} else {
			s.stats.Ignored++
		}
		return
	}
	switch p.Type {
	case wire.TypeNNAK:
		s.stats.NNAKs++
	case wire.TypeSPMR:
		s.stats.SPMRs++
		s.onSPMR(t)
	case wire.TypeNAK:
		s.onNAK(t, p, from)
	}
}

func (s *Sender) onSPMR(t int64) {
	if s.spmrPending {
		return // one SPM will answer them all
	}
	// Answer at once unless an SPMR was answered less than
	// txSPMRInterval ago; then answer at the end of that interval, rather
	// than drop it (its sender may have joined after the last SPM left).
	// OpenPGM answers every SPMR at once.
	s.spmrPending = true
	s.spmrAt = max(t, s.lastSPMR+int64(txSPMRInterval))
}

func (s *Sender) onNAK(t int64, p *wire.Packet, from netip.AddrPort) {
	if p.SourceNLA.Unmap() != s.nla || p.GroupNLA.Unmap() != s.group ||
		p.NAKListLen < 0 || p.NAKListLen > wire.MaxNAKList {
		s.stats.BadNAKs++
		return
	}
	if p.Options&wire.OptParity != 0 {
		s.onParityNAK(t, p)
		return
	}
	s.stats.NAKs++
	// One NCF per NAK packet, for sqns outside the window and duplicates
	// too (as OpenPGM does), except that a sqn of the window is confirmed
	// at most once per NAKElim interval: a NAK flood cannot make us
	// multicast more NCFs than there are sqns (and NCFRate bounds them
	// all). Duplicates are routine with OpenPGM receivers: after each NAK
	// list they send a single NAK for the list's first sqn as well (a
	// slip in its nak_rb_state, not RFC 3208 behaviour), which nakSeq
	// eliminates, and which needs no second NCF.
	s.queueNCFFor(t, p)
	s.nakSeq(t, p.Seq, from)
	for _, q := range p.NAKList[:p.NAKListLen] {
		s.nakSeq(t, q, from)
	}
}

// queueNCFFor queues the NCF that answers the selective NAK p, naming its
// sqns but those of the window confirmed less than NAKElim ago (none at
// all if that leaves none).
func (s *Sender) queueNCFFor(t int64, p *wire.Packet) {
	if s.ncfLen == len(s.ncf) {
		s.stats.NCFsDropped++ // before marking its sqns confirmed
		return
	}
	keep := s.ncfKeep[:0]
	for i := -1; i < p.NAKListLen; i++ {
		q := p.Seq
		if i >= 0 {
			q = p.NAKList[i]
		}
		if s.inWindow(q) && s.nakElim > 0 {
			sl := s.slot(q)
			if sl.flags&txNCFd != 0 && t-sl.ncfAt < s.nakElim {
				s.stats.NCFsEliminated++
				continue
			}
			sl.flags |= txNCFd
			sl.ncfAt = t
		}
		keep = append(keep, q)
	}
	if len(keep) > 0 {
		s.queueNCFList(keep[0], keep[1:], 0)
	}
}

// queueNCF queues the NCF that answers the NAK p, with options opts.
func (s *Sender) queueNCF(p *wire.Packet, opts uint8) {
	s.queueNCFList(p.Seq, p.NAKList[:p.NAKListLen], opts)
}

// queueNCFList queues an NCF for seq and list, with options opts.
func (s *Sender) queueNCFList(seq uint32, list []uint32, opts uint8) {
	if s.ncfLen == len(s.ncf) {
		s.stats.NCFsDropped++
		return
	}
	e := &s.ncf[(s.ncfHead+s.ncfLen)%len(s.ncf)]
	s.ncfLen++
	e.seq = seq
	e.opts = opts
	e.n = uint8(copy(e.list[:], list))
}

// nakSeq queues a repair of q unless it is outside the window, already
// queued, or was repaired less than NAKElim ago.
func (s *Sender) nakSeq(t int64, q uint32, from netip.AddrPort) {
	s.stats.NAKSeqs++
	if !s.inWindow(q) {
		s.stats.NAKsOutsideWindow++
		s.stats.LastOutsideNAKer = from
		lateNAKer(&s.stats.LateNAKers, from, s.base.Add(time.Duration(t)))
		return
	}
	sl := s.slot(q)
	if sl.flags&txQueued != 0 || sl.flags&txRepaired != 0 && t-sl.repairedAt < s.nakElim {
		s.stats.NAKsEliminated++
		return
	}
	sl.flags |= txQueued
	s.repairs++
	if s.rqLen == len(s.rq) {
		s.compactRepairs()
		if s.rqLen == len(s.rq) {
			s.growRepairs(max(2*len(s.rq), 16))
		}
	}
	s.rq[(s.rqHead+s.rqLen)&(len(s.rq)-1)] = q
	s.rqLen++
}

// repairLive reports whether a repair FIFO entry still stands.
func (s *Sender) repairLive(q uint32) bool {
	return s.inWindow(q) && s.slot(q).flags&txQueued != 0
}

// compactRepairs removes stale entries (evicted while queued), keeping
// the order of the others. The FIFO only grows when every entry is live,
// and live entries are at most WindowPackets, so it stays below
// 2*WindowPackets entries.
func (s *Sender) compactRepairs() {
	m := len(s.rq) - 1
	w := 0
	for r := range s.rqLen {
		q := s.rq[(s.rqHead+r)&m]
		if s.repairLive(q) {
			s.rq[(s.rqHead+w)&m] = q
			w++
		}
	}
	s.rqLen = w
}

func (s *Sender) growRepairs(size int) {
	size = txPow2(size)
	rq := make([]uint32, size)
	for i := range s.rqLen {
		rq[i] = s.rq[(s.rqHead+i)&(len(s.rq)-1)]
	}
	s.rq, s.rqHead = rq, 0
}

// peekRepair drops stale entries at the head of the repair FIFO and
// returns the first live one.
func (s *Sender) peekRepair() (uint32, bool) {
	for s.rqLen > 0 {
		q := s.rq[s.rqHead]
		if s.repairLive(q) {
			return q, true
		}
		s.rqHead = (s.rqHead + 1) & (len(s.rq) - 1)
		s.rqLen--
	}
	return 0, false
}

// Close stops Sends. Once all queued ODATA has been sent, Poll sends 3
// SPMs with OPT_FIN (OpenPGM pgm_close(sock, TRUE)) and Done turns true.
// NAKs are still answered with NCF and RDATA, and SPMRs with (FIN) SPMs,
// while the owner lingers; and SPMs with OPT_FIN keep following the
// heartbeat schedule, then the ambient interval, so that a receiver that
// missed the three FIN SPMs (a burst of loss, an overrun socket) still
// learns the final lead and NAKs the tail. OpenPGM sends only the three.
func (s *Sender) Close(now time.Time) {
	s.tick(now)
	if !s.closed {
		s.closeBatch()
	}
	if !s.closed && s.fec != nil {
		s.padGroup()
	}
	s.closed = true
}

// Done reports that Close was called and all ODATA and the FIN SPMs have
// been sent.
func (s *Sender) Done() bool { return s.finStarted && s.finLeft == 0 }

// Window returns the advertised trail and lead: the oldest sqn still held
// for repair and the last sqn sent. Before any data both are empty:
// trail = FirstSeq, lead = FirstSeq-1 (OpenPGM: 0 and 0xFFFFFFFF).
func (s *Sender) Window() (trail, lead uint32) { return s.trail, s.nextSend - 1 }

// Stats returns the counters and current gauges.
func (s *Sender) Stats() SenderStats {
	st := s.stats
	st.WindowPackets = int(s.nextSend - s.trail)
	st.WindowBytes = s.sentSize
	st.Queued = s.unsent()
	st.RepairsQueued = s.repairs
	st.WindowMaxPackets, st.WindowMaxBytes = s.cfg.WindowPackets, s.cfg.WindowBytes
	st.Trail, st.Lead = s.Window()
	return st
}

// finDue reports that the FIN SPMs may start: closed and all ODATA sent.
func (s *Sender) finDue() bool {
	return s.closed && !s.finStarted && s.nextSend == s.nextSeq && (s.fec == nil || s.fec.qLen == 0)
}

// spmAt is when the next SPM is due (math.MinInt64: now; math.MaxInt64:
// none).
func (s *Sender) spmAt() int64 {
	if s.startLeft > 0 || s.finLeft > 0 || s.finDue() {
		return math.MinInt64
	}
	at := int64(math.MaxInt64)
	if s.spmrPending {
		at = s.spmrAt
	}
	if s.hbIdx > 0 {
		at = min(at, s.hbAt)
	}
	return min(at, s.ambientAt)
}

// restartHeartbeat restarts the heartbeat after data sent at t.
func (s *Sender) restartHeartbeat(t int64) {
	if len(s.cfg.Heartbeat) == 0 || s.finStarted {
		return
	}
	s.hbIdx = 1
	s.hbAt = txAddSat(t, int64(s.cfg.Heartbeat[0]))
}

// Poll appends the next datagram due at now to buf and returns the
// extended slice (pass buf[:0] to get the datagram alone); ok is false,
// and buf is returned unchanged, when nothing is due (see NextDeadline).
// Every datagram goes to Group:DPort.
//
// Priority: NCFs (never rate limited); SPMs (start, FIN, SPMR answers,
// heartbeat and ambient; never rate limited); RDATA (rate limited, and
// before new data, so new data cannot starve repairs; OpenPGM does not
// prioritise them), but taking turns with ODATA when both wait, so that
// repairs cannot starve new data either (odataFirst); then ODATA in
// sequence order (rate limited). Each
// ODATA and RDATA carries the current trail, and its checksum is computed
// here, once.
func (s *Sender) Poll(now time.Time, buf []byte) (pkt []byte, ok bool) {
	return s.poll(now, buf, false)
}

// PollRef is Poll without copying new data: an ODATA packet is returned as
// the transmit window's own buffer, its trail and checksum written in
// place; it is valid until the next call on s and must not be modified.
// Other packets are appended to buf, as Poll does. A sender loop that
// writes each batch before calling s again saves a copy of every packet.
func (s *Sender) PollRef(now time.Time, buf []byte) (pkt []byte, ok bool) {
	return s.poll(now, buf, true)
}

func (s *Sender) poll(now time.Time, buf []byte, ref bool) (pkt []byte, ok bool) {
	t := s.tick(now)
	s.expire(t)
	s.pollBatch(t)
	if s.ncfLen > 0 {
		if out, ok := s.pollNCF(t, buf); ok {
			return out, true
		}
	}
	if s.spmAt() <= t {
		return s.pollSPM(t, buf), true
	}
	if q, ok := s.peekRepair(); ok && !s.odataFirst() {
		sl := s.slot(q)
		if !s.bucket.take(t, len(sl.buf)+s.cfg.IPOverhead) {
			return buf, false // ODATA waits behind the repair
		}
		s.odataTurn = true
		s.rqHead = (s.rqHead + 1) & (len(s.rq) - 1)
		s.rqLen--
		s.repairs--
		sl.flags = sl.flags&^txQueued | txRepaired
		sl.repairedAt = t
		start := len(buf)
		buf = append(buf, sl.buf...)
		wire.RewriteAsRDATA(buf[start:], s.trail)
		s.stats.RDATA++
		s.stats.RDATABytes += uint64(len(sl.buf))
		s.restartHeartbeat(t)
		return buf, true
	}
	if s.fec != nil {
		if out, ok, blocked := s.pollParity(t, buf); ok || blocked {
			return out, ok
		}
	}
	if s.nextSend != s.nextSeq {
		sl := s.slot(s.nextSend)
		if !s.bucket.take(t, len(sl.buf)+s.cfg.IPOverhead) {
			return buf, false
		}
		// Make room first, so the ODATA advertises the trail of the
		// window it enters (as OpenPGM's pgm_txw_add does).
		for s.trail != s.nextSend && (int(s.nextSend-s.trail) >= s.cfg.WindowPackets ||
			s.sentSize+int(sl.tsdu) > s.cfg.WindowBytes) {
			s.evictOne()
		}
		sl.sentAt = t
		s.sentSize += int(sl.tsdu)
		s.nextSend++
		s.odataTurn = false
		if ref {
			// The window's copy keeps its trail and checksum: RDATA
			// rewrites both, on a copy, and FEC reads only the payload.
			wire.SetTrail(sl.buf, s.trail)
			pkt = sl.buf
		} else {
			start := len(buf)
			buf = append(buf, sl.buf...)
			wire.SetTrail(buf[start:], s.trail)
			pkt = buf
		}
		s.stats.ODATA++
		s.stats.ODATABytes += uint64(len(sl.buf))
		if s.fec != nil {
			s.fecSent(s.nextSend-1, sl)
		}
		if sl.flags&txLast != 0 {
			s.stats.Messages += uint64(max(1, sl.batchN))
			s.stats.MessageBytes += uint64(s.messageLen(sl))
			s.restartHeartbeat(t)
		}
		return pkt, true
	}
	return buf, false
}

// odataFirst reports that ODATA waits and it is its turn: after an RDATA,
// the next rate-limited packet is ODATA if there is one, so repairs and
// new data share the rate when both wait. Repairs cannot be starved by
// new data, nor new data by repairs: a flood of NAKs, spoofed or from a
// receiver that lost everything, takes at most every other packet.
func (s *Sender) odataFirst() bool { return s.odataTurn && s.nextSend != s.nextSeq }

// messageLen is the length of the message whose last TPDU is sl.
func (s *Sender) messageLen(sl *txSlot) int {
	b := sl.buf
	if sl.batchN > 0 {
		return int(sl.tsdu) - wire.BatchFrameLen*int(sl.batchN)
	}
	if sl.flags&txFrag != 0 {
		// OPT_FRAGMENT's APDU length: the last 4 bytes of the options.
		off := wire.HeaderLen + wire.DataHeaderLen + wire.FragmentOverhead - 4
		return int(binary.BigEndian.Uint32(b[off:]))
	}
	return int(sl.tsdu)
}

// pollNCF appends the NCF at the head of the queue, if NCFRate lets it
// go at t.
func (s *Sender) pollNCF(t int64, buf []byte) ([]byte, bool) {
	start := len(buf)
	out := s.appendNCF(buf, &s.ncf[s.ncfHead])
	if !s.ncfBucket.take(t, len(out)-start+s.cfg.IPOverhead) {
		s.ncfSize = len(out) - start
		return out[:start], false
	}
	s.ncfSize = 0
	s.ncfHead = (s.ncfHead + 1) % len(s.ncf)
	s.ncfLen--
	s.stats.NCF++
	return out, true
}

func (s *Sender) appendNCF(buf []byte, e *txNCF) []byte {
	p := wire.Packet{
		SPort:      s.cfg.TSI.Port,
		DPort:      s.cfg.DPort,
		Type:       wire.TypeNCF,
		GSI:        s.cfg.TSI.GSI,
		Options:    e.opts,
		Seq:        e.seq,
		SourceNLA:  s.nla,
		GroupNLA:   s.group,
		NAKListLen: int(e.n),
	}
	copy(p.NAKList[:], e.list[:e.n])
	return s.appendPacket(buf, &p)
}

func (s *Sender) pollSPM(t int64, buf []byte) []byte {
	fin := s.finStarted // after the FIN SPMs, SPMR answers keep OPT_FIN
	switch {
	case s.startLeft > 0:
		s.startLeft--
	case s.finLeft > 0 || s.finDue():
		if !s.finStarted {
			s.finStarted, s.finLeft = true, txFinSPMs
			// The heartbeat restarts after the FIN SPMs (see Close).
			s.hbIdx = 0
			if len(s.cfg.Heartbeat) > 0 {
				s.hbIdx, s.hbAt = 1, txAddSat(t, int64(s.cfg.Heartbeat[0]))
			}
		}
		s.finLeft--
		fin = true
	}
	// Whatever made this SPM due, it also serves every other reason.
	if s.hbIdx > 0 && s.hbAt <= t {
		if s.hbIdx < len(s.cfg.Heartbeat) {
			s.hbAt = txAddSat(t, int64(s.cfg.Heartbeat[s.hbIdx]))
			s.hbIdx++
		} else {
			s.hbIdx = 0 // then ambient
		}
	}
	if s.spmrPending {
		s.spmrPending = false
		s.lastSPMR = t
	}
	s.ambientAt = txAddSat(t, s.ambient)
	p := wire.Packet{
		SPort:   s.cfg.TSI.Port,
		DPort:   s.cfg.DPort,
		Type:    wire.TypeSPM,
		GSI:     s.cfg.TSI.GSI,
		Seq:     s.spmSeq,
		Trail:   s.trail,
		Lead:    s.nextSend - 1,
		PathNLA: s.nla,
		FIN:     fin,
	}
	if s.fec != nil {
		p.HasParityPrm = true
		p.ParityPrm = wire.ParityPrm{
			Proactive: s.cfg.FEC.Proactive > 0,
			OnDemand:  s.cfg.FEC.OnDemand,
			GroupSize: uint32(s.cfg.FEC.GroupSize),
		}
	}
	s.spmSeq++
	s.stats.SPM++
	return s.appendPacket(buf, &p)
}

func (s *Sender) appendPacket(buf []byte, p *wire.Packet) []byte {
	out, err := p.Append(buf)
	if err != nil {
		// Unreachable: NewSender validated the NLAs and the NAK list
		// length is checked on receipt.
		panic("session: encoding " + p.Type.String() + ": " + err.Error())
	}
	return out
}

// NextDeadline is the earliest time at which Poll may have something to
// send or a timer is due: a queued NCF or SPM, the rate limiter letting
// the next RDATA or ODATA go, the heartbeat or ambient SPM, or the oldest
// TPDU's window time running out. If Poll would return ok now, the result
// is not after now. After Close the FIN SPMs keep it from ever being zero:
// the owner decides when lingering ends.
func (s *Sender) NextDeadline() time.Time {
	at := int64(math.MaxInt64)
	if s.ncfLen > 0 {
		// ncfSize is known once Poll found the bucket short; until then
		// the NCF is due now.
		at = math.MinInt64
		if s.ncfSize > 0 {
			at = s.ncfBucket.readyAt(s.now, s.ncfSize+s.cfg.IPOverhead)
		}
	}
	at = min(at, s.spmAt())
	if q, ok := s.peekRepair(); ok && !s.odataFirst() {
		at = min(at, s.bucket.readyAt(s.now, len(s.slot(q).buf)+s.cfg.IPOverhead))
	} else if n, ok := s.parityNext(); ok {
		at = min(at, s.bucket.readyAt(s.now, n+s.cfg.IPOverhead))
	} else if s.nextSend != s.nextSeq {
		at = min(at, s.bucket.readyAt(s.now, len(s.slot(s.nextSend).buf)+s.cfg.IPOverhead))
	}
	if s.batch.open {
		at = min(at, s.batch.at)
	}
	if !s.Done() && s.trail != s.nextSend {
		at = min(at, txAddSat(s.slot(s.trail).sentAt, s.windowTime))
	}
	if at == math.MaxInt64 {
		return time.Time{}
	}
	return s.base.Add(time.Duration(max(at, s.now)))
}
