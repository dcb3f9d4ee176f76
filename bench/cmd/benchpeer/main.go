// Command benchpeer is one end of a bench/ measurement: a relmcast sender
// or receiver (through the mcast API), or a plain UDP multicast blaster or
// sink with no reliability (through internal/udp, with or without GSO and
// GRO), the raw ceiling. The harness (bench/cmd/harness) starts it as a
// child process inside the private network namespace and reads the one
// JSON line it prints on stdout at the end.
//
//	benchpeer relm-send|relm-recv|raw-send|raw-recv [flags]
//
// Every message has the same layout, shared with the OpenPGM peer
// (bench/openpgm/pgmbench.c): bytes 0-7 the message number (big-endian),
// 8-15 the send time (Unix ns, CLOCK_REALTIME: one host, one clock), then
// a pattern that depends on the number. Receivers check every message:
// number in order from 0, content byte for byte. The last message is an
// end marker (number 2^64-1); receivers stop on it.
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relmcast/relmcast/internal/lossy"
	"github.com/relmcast/relmcast/internal/udp"
	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/mcast"
)

const (
	header    = 16
	endMarker = ^uint64(0)
	maxSize   = 65535
)

// pattern is what follows the header: message n carries
// pattern[n%251 : n%251+size-16].
var pattern = func() []byte {
	b := make([]byte, 256+maxSize)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}()

func fill(b []byte, n uint64, now int64) {
	binary.BigEndian.PutUint64(b, n)
	binary.BigEndian.PutUint64(b[8:], uint64(now))
	off := int(n % 251)
	copy(b[header:], pattern[off:off+len(b)-header])
}

// check returns the number and send time of a message, and whether its
// content is right.
func check(b []byte) (n uint64, sent int64, ok bool) {
	if len(b) < header {
		return 0, 0, false
	}
	n = binary.BigEndian.Uint64(b)
	sent = int64(binary.BigEndian.Uint64(b[8:]))
	if n == endMarker {
		return n, sent, true
	}
	off := int(n % 251)
	return n, sent, bytes.Equal(b[header:], pattern[off:off+len(b)-header])
}

type common struct {
	group    netip.AddrPort
	ifname   string
	size     int
	count    uint64
	duration time.Duration
	rate     float64 // messages/s; 0: as fast as possible
	offload  bool
	timeout  time.Duration
	latency  bool
	loss     lossy.Config
	window   int
	batch    time.Duration // relm-send: mcast.Config.Batch
	fecK     int           // relm-send: FEC group size (0: off)
	fecH     int           // relm-send: pro-active parity packets per group
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchpeer relm-send|relm-recv|raw-send|raw-recv [flags]")
		os.Exit(2)
	}
	mode := os.Args[1]
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	var c common
	group := fs.String("group", "239.192.0.1:7500", "group `ADDR:PORT`")
	fs.StringVar(&c.ifname, "iface", "lo", "interface")
	fs.IntVar(&c.size, "size", 1000, "message size in bytes (at least 16)")
	fs.Uint64Var(&c.count, "count", 0, "messages to send (0: --duration)")
	fs.DurationVar(&c.duration, "duration", 2*time.Second, "how long to send, when --count is 0")
	fs.Float64Var(&c.rate, "rate", 0, "messages per second (0: as fast as possible)")
	fs.BoolVar(&c.offload, "offload", true, "UDP GSO on send and GRO on receive")
	fs.DurationVar(&c.timeout, "timeout", 60*time.Second, "give up after this long")
	fs.BoolVar(&c.latency, "latency", false, "receivers: record one-way latency per message")
	fs.Var(&c.loss, "loss", "receivers: seeded loss SPEC (internal/lossy)")
	fs.IntVar(&c.window, "window", 1<<18, "relm sender and receiver windows in packets (both also bounded by 256 MiB)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
	fs.DurationVar(&c.batch, "batch", 0, "relm-send: pack small messages into packets, sent when full or after this long (mcast.Config.Batch; 0: off)")
	fec := fs.String("fec", "", "relm-send: Reed-Solomon parity, groups of `K:H` (H pro-active parity packets per K), parity on demand too")
	fs.Parse(os.Args[2:])
	if *fec != "" {
		if _, err := fmt.Sscanf(*fec, "%d:%d", &c.fecK, &c.fecH); err != nil {
			fmt.Fprintf(os.Stderr, "benchpeer: --fec %q: want K:H\n", *fec)
			os.Exit(2)
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchpeer: %v\n", err)
			os.Exit(2)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if os.Getenv("RELMCAST_NETNS") != "1" {
		fmt.Fprintln(os.Stderr, "benchpeer: refusing to open sockets outside scripts/netns (RELMCAST_NETNS=1)")
		os.Exit(2)
	}
	g, err := netip.ParseAddrPort(*group)
	if err != nil || c.size < header || c.size > maxSize {
		fmt.Fprintln(os.Stderr, "benchpeer: bad --group or --size")
		os.Exit(2)
	}
	c.group = g
	var res any
	switch mode {
	case "relm-send":
		res, err = relmSend(&c)
	case "relm-recv":
		res, err = relmRecv(&c)
	case "raw-send":
		res, err = rawSend(&c)
	case "raw-recv":
		res, err = rawRecv(&c)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintf(os.Stderr, "benchpeer %s: %v\n", mode, err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

// SendResult is a sender's JSON line.
type SendResult struct {
	Msgs      uint64 `json:"msgs"` // data messages, without the end marker
	Bytes     uint64 `json:"bytes"`
	StartNS   int64  `json:"start_ns"`
	EndNS     int64  `json:"end_ns"` // last message handed to the socket layer
	RDATA     uint64 `json:"rdata,omitempty"`
	NAKs      uint64 `json:"naks,omitempty"`
	GSOWrites uint64 `json:"gso_writes,omitempty"`
	GSO       bool   `json:"gso"`
}

// RecvResult is a receiver's JSON line.
type RecvResult struct {
	Msgs       uint64 `json:"msgs"` // data messages delivered, checked or not
	Bytes      uint64 `json:"bytes"`
	FirstNS    int64  `json:"first_ns"`
	LastNS     int64  `json:"last_ns"`
	OK         uint64 `json:"ok"`      // in order with the right content
	Bad        uint64 `json:"bad"`     // wrong content
	Missing    uint64 `json:"missing"` // numbers skipped
	OutOfOrder uint64 `json:"out_of_order"`
	End        bool   `json:"end"` // the end marker arrived
	LossEvents uint64 `json:"loss_events,omitempty"`
	Lost       uint64 `json:"lost,omitempty"`
	// LossReasons counts the loss events by reason.
	LossReasons map[string]uint64 `json:"loss_reasons,omitempty"`
	NAKs        uint64            `json:"naks,omitempty"`
	Repairs     uint64            `json:"repairs,omitempty"`
	Latency     *Summary          `json:"latency,omitempty"` // one-way, ns
	Repair      *Summary          `json:"repair,omitempty"`  // gap seen → hole filled, ns
	GRO         bool              `json:"gro"`
	GROReads    uint64            `json:"gro_reads,omitempty"`
	Dropped     uint64            `json:"dropped,omitempty"` // injected loss
}

// Summary is a distribution of durations in ns.
type Summary struct {
	N    int   `json:"n"`
	P50  int64 `json:"p50"`
	P99  int64 `json:"p99"`
	P999 int64 `json:"p999"`
	Max  int64 `json:"max"`
}

func summarize(s []int64) *Summary {
	if len(s) == 0 {
		return nil
	}
	slices.Sort(s)
	q := func(p float64) int64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return &Summary{N: len(s), P50: q(0.5), P99: q(0.99), P999: q(0.999), Max: s[len(s)-1]}
}

// verifier checks messages as they come.
type verifier struct {
	r       RecvResult
	next    uint64
	lat     []int64
	latency bool
}

const maxSamples = 4 << 20

// idleStop ends a receiver that got nothing for this long after its first
// message.
const idleStop = 2 * time.Second

func (v *verifier) message(b []byte, now int64) (end bool) {
	n, sent, ok := check(b)
	if n == endMarker && ok {
		v.r.End = true
		return true
	}
	if v.r.Msgs == 0 {
		v.r.FirstNS = now
	}
	v.r.LastNS = now
	v.r.Msgs++
	v.r.Bytes += uint64(len(b))
	switch {
	case !ok:
		v.r.Bad++
	case n == v.next:
		v.r.OK++
		v.next++
	case n > v.next:
		v.r.OK++
		v.r.Missing += n - v.next
		v.next = n + 1
	default:
		v.r.OutOfOrder++
	}
	if v.latency && ok && len(v.lat) < maxSamples {
		v.lat = append(v.lat, now-sent)
	}
	return false
}

// pacer spaces sends to rate messages/s: wait returns how many may go now.
type pacer struct {
	start time.Time
	rate  float64
	done  uint64
}

func (p *pacer) wait(max int) int {
	if p.rate <= 0 {
		return max
	}
	for {
		due := uint64(time.Since(p.start).Seconds() * p.rate)
		if due > p.done {
			return int(min(due-p.done, uint64(max)))
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// sendMore reports whether message i (from 0) should still be sent.
func (c *common) sendMore(i uint64, start time.Time) bool {
	if c.count > 0 {
		return i < c.count
	}
	return i&63 != 0 || time.Since(start) < c.duration
}

func iface(name string) (*net.Interface, error) { return net.InterfaceByName(name) }

func openConn(c *common, source bool) (*udp.Conn, error) {
	ifi, err := iface(c.ifname)
	if err != nil {
		return nil, err
	}
	cfg := udp.Config{Group: c.group, Interface: ifi, Loopback: true, NoGSO: !c.offload, NoGRO: !c.offload,
		ReadBuffer: 64 << 20, WriteBuffer: 16 << 20}
	if source {
		return udp.OpenSource(cfg)
	}
	return udp.OpenReceiver(cfg)
}

// sigs gets SIGTERM and SIGINT from the start: the harness sends SIGTERM
// to a sender when every receiver is done, which may be before the sender
// has finished its own bookkeeping; it must still print its result.
var sigs = make(chan os.Signal, 1)

// waitSignal waits (bounded by d) for the harness's SIGTERM: a sender
// serves repairs until then.
func waitSignal(d time.Duration) {
	select {
	case <-sigs:
	case <-time.After(d):
	}
}

func relmSend(c *common) (*SendResult, error) {
	conn, err := openConn(c, true)
	if err != nil {
		return nil, err
	}
	gso, _ := conn.Offload()
	cfg := &mcast.Config{Transport: conn, Rate: -1, Linger: -1, WindowPackets: c.window, WindowBytes: 256 << 20, Batch: c.batch,
		FECGroupSize: c.fecK, FECProactive: c.fecH, FECOnDemand: c.fecK > 0}
	s, err := mcast.NewSender(c.group, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	ready()
	ctx := context.Background()
	buf := make([]byte, c.size)
	res := &SendResult{GSO: gso}
	start := time.Now()
	res.StartNS = start.UnixNano()
	p := pacer{start: start, rate: c.rate}
	var i uint64
	for c.sendMore(i, start) {
		k := p.wait(64)
		for range k {
			if !c.sendMore(i, start) {
				break
			}
			fill(buf, i, time.Now().UnixNano())
			if err := s.Send(ctx, buf); err != nil {
				return nil, err
			}
			i++
			p.done++
		}
	}
	fill(buf, endMarker, time.Now().UnixNano())
	if err := s.Send(ctx, buf); err != nil {
		return nil, err
	}
	// Wait (bounded) until everything is on the wire.
	for t := time.Now(); s.Stats().Messages < i+1 && time.Since(t) < c.timeout; {
		time.Sleep(200 * time.Microsecond)
	}
	res.EndNS = time.Now().UnixNano()
	res.Msgs, res.Bytes = i, i*uint64(c.size)
	waitSignal(c.timeout)
	st := s.Stats()
	res.RDATA, res.NAKs = st.RDATA, st.NAKs
	res.GSOWrites = conn.Stats().GSOWrites
	s.Close()
	return res, nil
}

// ready tells the harness the endpoint is open.
func ready() { fmt.Fprintln(os.Stderr, "ready") }

func relmRecv(c *common) (*RecvResult, error) {
	conn, err := openConn(c, false)
	if err != nil {
		return nil, err
	}
	_, gro := conn.Offload()
	t := &tap{}
	var lc *lossy.Conn
	cfg := &mcast.Config{Transport: conn, ReceiveWindow: c.window, ReceiveWindowBytes: 256 << 20, Queue: 16384,
		WrapTransport: func(tr mcast.Transport) mcast.Transport {
			if c.loss.Active() {
				lc = lossy.Wrap(tr, c.loss)
				tr = lc
			}
			t.Transport = tr
			return t
		}}
	r, err := mcast.Listen(c.group, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	ready()
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	v := verifier{latency: c.latency}
	if c.latency {
		v.lat = make([]int64, 0, 1<<16)
	}
	// Stop also when nothing was delivered for 2 s after the first
	// message: the end marker is not coming.
	var last atomic.Int64
	go func() {
		for ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			if l := last.Load(); l != 0 && time.Now().UnixNano()-l > int64(idleStop) {
				cancel()
			}
		}
	}()
	var ev mcast.Event
	for {
		if err := r.Read(ctx, &ev); err != nil {
			break
		}
		switch ev.Kind {
		case mcast.EventData:
			now := time.Now().UnixNano()
			if v.r.Msgs&255 == 0 {
				last.Store(now)
			}
			if v.message(ev.Data, now) {
				goto done
			}
		case mcast.EventLoss:
			v.r.LossEvents++
			v.r.Lost += ev.Lost
			if v.r.LossReasons == nil {
				v.r.LossReasons = map[string]uint64{}
			}
			v.r.LossReasons[ev.LossReason.String()]++
		}
	}
done:
	st := r.Stats()
	r.Close()
	v.r.NAKs, v.r.Repairs = st.NAKs, st.Repairs
	v.r.Latency = summarize(v.lat)
	v.r.Repair = summarize(t.samples)
	v.r.GRO = gro
	v.r.GROReads = conn.Stats().GROReads
	if lc != nil {
		v.r.Dropped = lc.Stats().Dropped
	}
	return &v.r, nil
}

// tap sits above the loss injector and measures repair latency: from the
// moment a gap in the data sequence numbers is seen (a later ODATA or
// RDATA arrives) to the moment the missing packet arrives (as RDATA, or as
// a late ODATA). One source.
type tap struct {
	mcast.Transport
	lead    uint32
	started bool
	gapAt   [1 << 16]int64 // by seq mod 2^16; 0: not missing
	gapSeq  [1 << 16]uint32
	samples []int64
}

func (t *tap) ReadBatch(ds []udp.Datagram) (int, error) {
	n, err := t.Transport.ReadBatch(ds)
	if n == 0 {
		return n, err
	}
	now := time.Now().UnixNano()
	for _, d := range ds[:n] {
		b := d.Buf[:d.N]
		if len(b) < 20 || (wire.Type(b[4]) != wire.TypeODATA && wire.Type(b[4]) != wire.TypeRDATA) {
			continue
		}
		seq := binary.BigEndian.Uint32(b[16:20])
		switch {
		case !t.started:
			t.started, t.lead = true, seq
		case int32(seq-t.lead) > 0:
			from := t.lead + 1
			if seq-from > 1<<15 {
				from = seq - 1<<15 // a huge jump: track the last 32768 only
			}
			for q := from; q != seq; q++ {
				t.gapAt[q&0xffff], t.gapSeq[q&0xffff] = now, q
			}
			t.lead = seq
		default:
			i := seq & 0xffff
			if t.gapAt[i] != 0 && t.gapSeq[i] == seq {
				if len(t.samples) < maxSamples {
					t.samples = append(t.samples, now-t.gapAt[i])
				}
				t.gapAt[i] = 0
			}
		}
	}
	return n, err
}

func rawSend(c *common) (*SendResult, error) {
	conn, err := openConn(c, true)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	gso, _ := conn.Offload()
	ready()
	ds := make([]udp.Datagram, 64)
	for i := range ds {
		ds[i] = udp.Datagram{Buf: make([]byte, c.size), N: c.size, Addr: c.group}
	}
	res := &SendResult{GSO: gso}
	start := time.Now()
	res.StartNS = start.UnixNano()
	p := pacer{start: start, rate: c.rate}
	var i uint64
	for c.sendMore(i, start) {
		k := p.wait(64)
		m := 0
		now := time.Now().UnixNano()
		for ; m < k && c.sendMore(i+uint64(m), start); m++ {
			fill(ds[m].Buf, i+uint64(m), now)
		}
		if m == 0 {
			break
		}
		sent, err := conn.WriteBatch(ds[:m])
		if err != nil && !errors.Is(err, syscall.ENOBUFS) {
			return nil, err
		}
		i += uint64(sent)
		p.done += uint64(sent)
	}
	res.EndNS = time.Now().UnixNano()
	res.Msgs, res.Bytes = i, i*uint64(c.size)
	// The end marker, several times: nothing repairs it.
	for range 20 {
		fill(ds[0].Buf, endMarker, time.Now().UnixNano())
		conn.WriteBatch(ds[:1])
		time.Sleep(2 * time.Millisecond)
	}
	res.GSOWrites = conn.Stats().GSOWrites
	return res, nil
}

func rawRecv(c *common) (*RecvResult, error) {
	conn, err := openConn(c, false)
	if err != nil {
		return nil, err
	}
	_, gro := conn.Offload()
	ready()
	v := verifier{latency: c.latency}
	// Stop at the end marker, after --timeout, or when nothing came for
	// idleStop after the first datagram (all the end markers were lost).
	var last atomic.Int64
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		deadline := time.Now().Add(c.timeout)
		for {
			select {
			case <-quit:
				return
			case <-time.After(100 * time.Millisecond):
			}
			l := last.Load()
			if time.Now().After(deadline) || l != 0 && time.Now().UnixNano()-l > int64(idleStop) {
				conn.Close()
				return
			}
		}
	}()
	ds := make([]udp.Datagram, 64)
	for i := range ds {
		ds[i].Buf = make([]byte, maxSize)
	}
loop:
	for {
		n, err := conn.ReadBatch(ds)
		if err != nil {
			break
		}
		now := time.Now().UnixNano()
		last.Store(now)
		for _, d := range ds[:n] {
			if d.N != c.size {
				continue
			}
			if v.message(d.Buf[:d.N], now) {
				break loop
			}
		}
	}
	conn.Close()
	v.r.Latency = summarize(v.lat)
	v.r.GRO = gro
	v.r.GROReads = conn.Stats().GROReads
	return &v.r, nil
}
