package mcast

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/relmcast/relmcast/internal/udp"
)

// Defaults for the zero Config.
const (
	// DefaultRate is the sender's rate limit: 100 Mbit/s on the wire,
	// IP and UDP headers included. It is safe on any wired LAN; raise it
	// (or set a negative Rate for none) on a dedicated 1 or 10 GbE link.
	DefaultRate = 100_000_000
	// DefaultPort is the UDP port P used for multicast and unicast.
	DefaultPort = 7500
	// DefaultLinger is how long Sender.Close keeps serving repairs after
	// the last data and FIN went out.
	DefaultLinger = 2 * time.Second
	// DefaultSourceExpiry is how long a silent source lives on.
	DefaultSourceExpiry = 10 * time.Second
	// DefaultQueue is the number of events a Receiver buffers for Read.
	DefaultQueue = 4096
	// DefaultNAKDataWait is the longest a receiver waits for a repair
	// after the sender confirmed its NAK (NCF) before NAKing again. The
	// first wait for a packet is an eighth of it (25ms), doubling with
	// each repair that does not come: on a LAN a lost repair is asked for
	// again quickly, while a busy sender still has as much time in all.
	DefaultNAKDataWait = 200 * time.Millisecond
)

// Window defaults of a sender without a rate limit (Config.Rate < 0).
// Such a sender may go as fast as the machine: 16384 packets last 25ms at
// 650k packets/s, less than a repair takes, and holes would pass out of
// the window (window-passed loss). These hold some 200ms at that rate; the
// memory (up to 131072 buffers of MTU size) is only taken as packets are
// sent, and freed with the Sender.
const (
	unlimitedWindowPackets = 131072
	unlimitedWindowBytes   = 128 << 20
)

// DefaultGroup is the multicast group OpenPGM and ZeroMQ default to.
var DefaultGroup = netip.AddrPortFrom(netip.AddrFrom4([4]byte{239, 192, 0, 1}), DefaultPort)

// Transport carries PGM datagrams for one endpoint. By default a Sender
// or Receiver opens real multicast sockets; Config.Transport replaces them
// (mcasttest.Network provides an in-memory one).
type Transport = udp.Transport

// Datagram is one datagram read from or written to a Transport.
type Datagram = udp.Datagram

// Config configures a Sender or a Receiver. A nil or zero Config is ready
// for a LAN; each field documents its default. A Config must not be
// changed after it has been passed to NewSender or Listen.
type Config struct {
	// Interface to send and join on. Nil picks the first up,
	// multicast-capable, non-loopback interface with an address of the
	// group's family, or loopback when there is none.
	Interface *net.Interface
	// Addr is the sender's unicast address: it is advertised in SPMs and
	// receives NAKs on the group's port. Zero: the interface's first
	// address of the group's family. Two senders on one host and port need
	// two addresses (for example 127.0.0.1 and 127.0.0.2 on loopback).
	Addr netip.Addr
	// TTL is the multicast TTL (hop limit). Zero means 1: the local link.
	TTL int
	// NoLoopback turns off the delivery of our own multicast to receivers
	// on this host (on by default, so one machine can run both ends).
	NoLoopback bool
	// MTU is the IP MTU of the path. Zero means 1500.
	MTU int
	// ReadBuffer and WriteBuffer size the socket buffers. Zero means 4 MiB.
	ReadBuffer, WriteBuffer int
	// NoGSO and NoGRO turn off UDP segmentation offload on send and UDP
	// receive offload on read (Linux), which are used where the kernel
	// has them; Stats tell which are in use. Without them every datagram
	// takes its own trip through the kernel: for tests and comparisons.
	NoGSO, NoGRO bool

	// Rate limits what a Sender puts on the wire, in bits per second,
	// IP and UDP headers included, data and repairs together. Zero means
	// DefaultRate; negative means unlimited.
	Rate int64
	// Window bounds the sender's retransmit window: packets, bytes and age
	// kept for repair. Zero means 16384 packets, 32 MiB and 10 s (131072
	// packets and 128 MiB without a rate limit, Rate < 0, so that the
	// window holds enough time at LAN speeds); the first bound reached
	// applies.
	WindowPackets int
	WindowBytes   int
	WindowTime    time.Duration
	// Linger is how long Sender.Close keeps answering NAKs after the
	// last data and its FIN. Zero means DefaultLinger; negative means none.
	Linger time.Duration
	// SPMInterval is the sender's ambient SPM interval when idle. Zero
	// means 1s. Receivers detect a dead source from missing SPMs.
	SPMInterval time.Duration
	// GSI and SourcePort form the sender's TSI. A zero GSI is derived
	// from the host name (as OpenPGM does); a zero port is random. A
	// sender restarted with the same GSI on the same address is reported
	// to receivers as a restart of the old session, its unrepaired holes
	// as loss.
	GSI        [6]byte
	SourcePort uint16

	// ReceiveWindow bounds the packets a Receiver holds per source. Zero
	// means 32768. ReceiveWindowBytes bounds their payload buffers. Zero
	// means 64 MiB. Data waiting for a repair, or for Read, takes room:
	// the window must hold what a source sends while a hole is repaired
	// (some 30ms on a LAN, a multiple when a repair is lost too), else the
	// oldest is given up (LossOverrun). At 900 MB/s 64 MiB is 70ms.
	ReceiveWindow      int
	ReceiveWindowBytes int
	// Queue is how many events a Receiver buffers for Read, with at most
	// 4 MiB of message data (a batch from a batching sender takes one
	// entry for all its messages). When it is full, data waits in the
	// receive window; when that overflows, the oldest becomes an
	// EventLoss (LossOverrun). Zero means DefaultQueue.
	Queue int
	// SourceExpiry is how long a source may be silent before EventSourceGone.
	// Zero means DefaultSourceExpiry. OpenPGM and ZeroMQ senders send an
	// SPM only every 30 s when idle: use at least a minute with them.
	SourceExpiry time.Duration
	// MaxSources bounds the sources a Receiver tracks. Zero means 1024.
	// When it is reached, a new source evicts the oldest one that has not
	// yet sent an SPM and a second packet (EventSourceGone, GoneEvicted);
	// if every source has, the new one is refused and counted in
	// ReceiverStats.SourcesDropped.
	MaxSources int
	// NAKBackoff is the longest random wait before a NAK (so that one
	// receiver's NAK, confirmed by the sender's multicast NCF, spares the
	// others theirs). Zero means 10ms: a LAN. Raise it with the round
	// trip time and the number of receivers.
	NAKBackoff time.Duration
	// NAKRepeat is how long to wait for an NCF before NAKing again, and
	// NAKDataWait the longest wait after an NCF for the repair (the first
	// wait for a packet is NAKDataWait/8, doubling with each repair that
	// does not come). Zero means 100ms and DefaultNAKDataWait (200ms).
	NAKRepeat, NAKDataWait time.Duration
	// NAKRetries is how many NAKs without NCF, and how many NCF'd waits,
	// before a hole is reported lost. Zero means 10.
	NAKRetries int
	// NAKRate bounds the NAK packets a Receiver sends, all sources
	// together, per second; one over it is not sent and its sequence
	// numbers are NAKed again at the next retry (counted in
	// ReceiverStats.NAKsLimited). It bounds what spoofed packets can make
	// a receiver send to an address of their choosing. Zero means 5000
	// (bursts of 1000); negative means unlimited.
	NAKRate int
	// Passive receivers never NAK: they take what comes.
	Passive bool

	// FEC (forward error correction: Reed–Solomon parity packets) is a
	// sender setting, off by default: OpenPGM and ZeroMQ peers do not use
	// it (theirs is broken on the wire). Receivers need no setting: they
	// decode whatever parity a sender announces. FECGroupSize is the
	// transmission group size k, a power of two in 2..128 (0: off);
	// FECProactive the number of parity packets sent after every k data
	// packets, repairing up to that many losses per group without a NAK
	// (at most min(k, 255-k)); FECOnDemand answers receivers' parity NAKs
	// with fresh parity packets, each repairing a different loss at each
	// receiver, instead of one retransmission per lost packet. With FEC
	// on, packets carry 22 bytes less data (MaxPacketPayload), and Close
	// completes the last group with empty padding packets that receivers
	// drop. See session.FECConfig.
	FECGroupSize int
	FECProactive int
	FECOnDemand  bool

	// Batch turns on small-message batching in a Sender, off by default:
	// consecutive messages that fit are packed into one packet, sent when
	// it is full or Batch after its first message, whichever comes first;
	// Close sends the last one. Batching pays when messages are much
	// smaller than a packet and come fast (64-byte messages: some 20 per
	// packet), at the price of up to Batch of added latency. A message
	// too large for a batch is sent on its own, in order. The batched
	// session uses another PGM data-destination port than plain PGM
	// (session.BatchDPort of the group's port, on the same UDP port), so
	// OpenPGM and ZeroMQ receivers never see it; relmcast Receivers need
	// no setting: they unpack batches and deliver each message as its own
	// EventData (all with the batch's Seq). A lost batch is one lost
	// sequence number: an EventLoss counts packets, and here a packet may
	// hold several messages. BatchSize bounds a batch's payload in bytes
	// (2 bytes of framing per message included); 0 means a full packet.
	// Batching and FEC cannot be combined.
	Batch     time.Duration
	BatchSize int

	// Transport, if set, replaces the UDP sockets. WrapTransport, if set,
	// wraps whatever transport is used (for example with a loss injector
	// for testing).
	Transport     Transport
	WrapTransport func(Transport) Transport
	// Logger receives diagnostics: socket errors (the first, then one in
	// a thousand) at Warn; on a Receiver, each source new, gone or
	// restarted at Info and each loss at Warn (as they are queued for
	// Read: they are also events in the stream), and each NAK and SPMR
	// sent at Debug; on a Sender, each NAK received at Debug, and at most
	// every 10 s at Warn that receivers NAK data no longer in the window,
	// with the last one's address. Nil means silent.
	Logger *slog.Logger
	// Seed seeds the randomness (NAK back-off, TSI), for reproducible
	// tests. Zero means random.
	Seed uint64
}

func (c *Config) validate() error {
	switch {
	case c.TTL < 0 || c.TTL > 255:
		return fmt.Errorf("mcast: TTL %d: want 0..255", c.TTL)
	case c.MTU != 0 && (c.MTU < 576 || c.MTU > 65535):
		return fmt.Errorf("mcast: MTU %d: want 576..65535", c.MTU)
	case c.WindowTime < 0:
		return fmt.Errorf("mcast: Config.WindowTime %v is negative: want 0 (the default, 10s) or more", c.WindowTime)
	case c.NAKRetries > 255:
		return fmt.Errorf("mcast: NAKRetries %d: want at most 255", c.NAKRetries)
	case c.Batch < 0:
		return fmt.Errorf("mcast: Config.Batch %v is negative: want 0 (off) or more", c.Batch)
	case c.Batch == 0 && c.BatchSize != 0:
		return fmt.Errorf("mcast: Config.BatchSize %d without Config.Batch: set Batch to turn batching on", c.BatchSize)
	case c.Batch > 0 && c.FECGroupSize > 0:
		return fmt.Errorf("mcast: Config.Batch and Config.FECGroupSize: batching and FEC cannot be combined")
	}
	for _, f := range [...]struct {
		name string
		v    int
	}{
		{"WindowPackets", c.WindowPackets}, {"WindowBytes", c.WindowBytes}, {"ReceiveWindow", c.ReceiveWindow},
		{"ReceiveWindowBytes", c.ReceiveWindowBytes},
		{"Queue", c.Queue}, {"MaxSources", c.MaxSources}, {"NAKRetries", c.NAKRetries},
	} {
		if f.v < 0 {
			return fmt.Errorf("mcast: Config.%s %d is negative: want 0 (the default) or more", f.name, f.v)
		}
	}
	return nil
}

func (c *Config) mtu() int {
	if c.MTU == 0 {
		return 1500
	}
	return c.MTU
}

// ipOverhead is the IP+UDP header size charged per packet.
func ipOverhead(group netip.Addr) int {
	if group.Is4() {
		return 20 + 8
	}
	return 40 + 8
}

func (c *Config) udpConfig(group netip.AddrPort) udp.Config {
	return udp.Config{
		Group:       group,
		Interface:   c.Interface,
		Addr:        c.Addr,
		TTL:         c.TTL,
		Loopback:    !c.NoLoopback,
		ReadBuffer:  c.ReadBuffer,
		WriteBuffer: c.WriteBuffer,
		NoGSO:       c.NoGSO,
		NoGRO:       c.NoGRO,
	}
}

func checkGroup(group netip.AddrPort) error {
	if !group.Addr().IsMulticast() {
		return fmt.Errorf("mcast: %v is not a multicast group (IPv4 224.0.0.0/4, IPv6 ff00::/8)", group.Addr())
	}
	if group.Port() == 0 {
		return fmt.Errorf("mcast: group %v has no port", group)
	}
	return nil
}
