// Command mcstat watches a multicast group passively and shows every PGM
// source on it: its address, rate, advertised window, the ODATA, RDATA,
// SPM and NCF packets it sends, the SPMRs and NAKs seen for it, and an
// estimate of the loss on the path to this host. It joins the group and
// never sends anything. Run mcstat --help for the flags.
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/relmcast/relmcast/internal/cli"
	"github.com/relmcast/relmcast/internal/monitor"
	"github.com/relmcast/relmcast/internal/udp"
	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/session"
)

const usageHead = `Usage: mcstat [flags] GROUP:PORT

mcstat joins a multicast group and shows every PGM source (RFC 3208 over
UDP, OpenPGM and ZeroMQ epgm included) that sends to it, refreshed every
--interval: its TSI and address, messages/s and bytes/s of new data, the
window it advertises (trail..lead), the ODATA, RDATA, SPM and NCF packets
it sent, the SPMRs and NAKs seen for it, and the gaps in its ODATA
sequence seen here: an estimate of the loss on the path to this host.

mcstat is passive: it never sends a packet (no NAK, no SPMR), so it changes
nothing on the group. It sees only what is multicast: receivers unicast
their NAKs to the source, so NAKs show up only where they are multicast;
a source's NCFs (one per NAK it got, multicast) and RDATA show the repair
traffic instead.

Output:
  (terminal)   a table redrawn in place every interval
  (piped)      one line per source per interval
  --json       one JSON object per source per interval, with the fields
               time, source, addr, interval_s, msgs_per_s, bytes_per_s,
               trail, lead, fin, odata, rdata, spm, ncf, nak, spmr, parity,
               messages, bytes, gaps, late, loss (the counters are totals
               since the source was first seen; rates and loss are over
               the interval)

Examples:
  mcstat 239.192.0.1:7500
  mcstat --iface eth0 --interval 5s 239.192.0.1:5555 --json | jq .
  mcstat --count 10 --iface lo :7500

Flags:
`

// env is what run needs from the process, replaced by tests.
type env struct {
	stdout, stderr io.Writer
	tty            bool             // stdout is a terminal: redraw in place
	signals        <-chan os.Signal // SIGINT, SIGTERM; nil: none
}

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	tty, _ := cli.Terminal(os.Stdout) // not /dev/null, a character device too
	os.Exit(run(os.Args[1:], env{stdout: os.Stdout, stderr: os.Stderr, tty: tty, signals: sig}))
}

type options struct {
	group    netip.AddrPort
	ifname   string
	interval time.Duration
	count    int
	duration time.Duration
	json     bool
}

// parseArgs parses flags and the group, which may come before, between or
// after the flags.
func parseArgs(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("mcstat", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	interval := cli.DurationFlag{D: time.Second}
	var duration cli.DurationFlag
	group := cli.GroupFlag{}
	fs.StringVar(&o.ifname, "iface", "", "`NAME` of the interface to join on, e.g. lo or eth0 (default: the first up multicast interface)")
	fs.Var(&interval, "interval", "refresh every `DURATION`")
	fs.IntVar(&o.count, "count", 0, "exit after `N` intervals (0: no limit)")
	fs.Var(&duration, "duration", "exit after `DURATION` (0: no limit)")
	fs.BoolVar(&o.json, "json", false, "write one JSON object per source per interval")
	fs.Var(&group, "group", "the multicast group `ADDR:PORT`, instead of the argument")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				io.WriteString(out, usageHead)
				cli.PrintFlags(out, fs)
				return nil, err
			}
			return nil, cli.FlagError(fs, err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch {
	case len(pos) > 1:
		return nil, cli.Usagef("unexpected argument %q: give one group", pos[1])
	case len(pos) == 1 && group.AddrPort.IsValid():
		return nil, cli.Usagef("the group is given twice: as %q and with --group", pos[0])
	case len(pos) == 1:
		if err := group.Set(pos[0]); err != nil {
			return nil, &cli.UsageError{Err: err}
		}
	case !group.AddrPort.IsValid():
		return nil, cli.Usagef("no group: write mcstat GROUP:PORT, e.g. mcstat 239.192.0.1:7500")
	}
	o.group, o.interval, o.duration = group.AddrPort, interval.D, duration.D
	switch {
	case o.interval <= 0:
		return nil, cli.Usagef("--interval %v: want a positive duration such as 1s", o.interval)
	case o.count < 0:
		return nil, cli.Usagef("--count %d: want 1 or more intervals (or 0 for no limit)", o.count)
	case o.duration < 0:
		return nil, cli.Usagef("--duration %v is negative: want a duration such as 1m, or 0 for no limit", o.duration)
	}
	return o, nil
}

func run(args []string, e env) int {
	o, err := parseArgs(args, e.stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(e.stderr, "mcstat: %v\nRun 'mcstat --help' for usage.\n", err)
		return 2
	}
	ifi, err := cli.Interface(o.ifname, o.group)
	if err != nil {
		fmt.Fprintf(e.stderr, "mcstat: %v\n", err)
		return 2
	}
	conn, err := udp.OpenReceiver(udp.Config{Group: o.group, Interface: ifi})
	if err != nil {
		fmt.Fprintf(e.stderr, "mcstat: %v\n", err)
		return 1
	}
	name := "the default interface"
	if i := conn.Interface(); i != nil {
		name = i.Name
	}
	fmt.Fprintf(e.stderr, "mcstat: watching %v on %s (passive: sends nothing; NAKs are unicast, so mostly unseen)\n", o.group, name)

	w := &watcher{mon: monitor.New(monitor.Config{DPort: o.group.Port(), BatchDPort: session.BatchDPort(o.group.Port())})}
	readDone := make(chan error, 1)
	go func() { readDone <- w.read(conn) }()

	out := bufio.NewWriter(e.stdout)
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	var end <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		end = t.C
	}
	var reps []monitor.Report
	code := 0
	last := time.Now() // the last report (or the start)
	for n := 0; o.count == 0 || n < o.count; {
		var stop bool
		select {
		case <-tick.C:
		case <-end:
			stop = true
		case <-e.signals:
			stop = true
		case err := <-readDone:
			fmt.Fprintf(e.stderr, "mcstat: reading the group: %v\n", cmp.Or(err, errors.New("socket closed")))
			code = 1
		}
		if code != 0 {
			break
		}
		now := time.Now()
		if stop && now.Sub(last) < o.interval/2 {
			break // a report right after the last one would show rates of nothing
		}
		last = now
		w.mu.Lock()
		reps = w.mon.Snapshot(now, reps[:0])
		st := w.mon.Stats()
		w.mu.Unlock()
		switch {
		case o.json:
			writeJSON(out, now, reps)
		case e.tty:
			writeTable(out, now, o, reps, st)
		default:
			writeLines(out, now, reps)
		}
		if err := out.Flush(); err != nil {
			fmt.Fprintf(e.stderr, "mcstat: writing stdout: %v\n", err)
			code = 1
			break
		}
		n++
		if stop {
			break
		}
	}
	conn.Close()
	if code == 0 {
		<-readDone
	}
	w.mu.Lock()
	st := w.mon.Stats()
	w.mu.Unlock()
	fmt.Fprintf(e.stderr, "mcstat: %d packets, %d not PGM, %d other\n", st.Packets, st.Malformed, st.Other)
	return code
}

// watcher feeds the monitor from the socket.
type watcher struct {
	mu  sync.Mutex
	mon *monitor.Monitor
}

// read reads datagrams into the monitor until conn is closed (then it
// returns nil) or fails repeatedly.
func (w *watcher) read(conn *udp.Conn) error {
	ds := make([]udp.Datagram, udp.MaxBatch)
	for i := range ds {
		ds[i].Buf = make([]byte, 9216) // jumbo frames
	}
	var p wire.Packet
	failures := 0
	for {
		n, err := conn.ReadBatch(ds)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			if failures++; failures > 100 {
				return err
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		failures = 0
		now := time.Now()
		w.mu.Lock()
		for _, d := range ds[:n] {
			if wire.Parse(d.Buf[:d.N], &p) != nil {
				w.mon.HandleDatagram(now, d.Buf[:d.N], d.Addr.Addr()) // counts it as malformed
				continue
			}
			w.mon.Handle(now, &p, d.Addr.Addr())
		}
		w.mu.Unlock()
	}
}

// jsonReport is one line of --json.
type jsonReport struct {
	Time      time.Time `json:"time"`
	Source    string    `json:"source"`
	Addr      string    `json:"addr"`
	Interval  float64   `json:"interval_s"`
	Msgs      float64   `json:"msgs_per_s"`
	Bytes     float64   `json:"bytes_per_s"`
	Trail     *uint32   `json:"trail,omitempty"`
	Lead      *uint32   `json:"lead,omitempty"`
	FIN       bool      `json:"fin"`
	ODATA     uint64    `json:"odata"`
	RDATA     uint64    `json:"rdata"`
	SPM       uint64    `json:"spm"`
	NCF       uint64    `json:"ncf"`
	NAK       uint64    `json:"nak"`
	SPMR      uint64    `json:"spmr"`
	Parity    uint64    `json:"parity"`
	Messages  uint64    `json:"messages"`
	ByteCount uint64    `json:"bytes"`
	Gaps      uint64    `json:"gaps"`
	Late      uint64    `json:"late"`
	Loss      float64   `json:"loss"`
}

func writeJSON(w io.Writer, now time.Time, reps []monitor.Report) {
	enc := json.NewEncoder(w)
	for i := range reps {
		r := &reps[i]
		j := jsonReport{
			Time: now.UTC(), Source: r.TSI.String(), Addr: addr(r.Addr), Interval: r.Interval.Seconds(),
			Msgs: r.MsgsPerSec, Bytes: r.BytesPerSec, FIN: r.FIN,
			ODATA: r.ODATA, RDATA: r.RDATA, SPM: r.SPM, NCF: r.NCF, NAK: r.NAK + r.NNAK, SPMR: r.SPMR, Parity: r.Parity,
			Messages: r.Messages, ByteCount: r.Bytes, Gaps: r.Gaps, Late: r.Late, Loss: r.LossRatio(),
		}
		if r.HaveWindow {
			trail, lead := r.Trail, r.Lead
			j.Trail, j.Lead = &trail, &lead
		}
		enc.Encode(&j)
	}
}

func addr(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

func window(r *monitor.Report) string {
	if !r.HaveWindow {
		return "-"
	}
	return fmt.Sprintf("%d..%d", r.Trail, r.Lead)
}

func state(r *monitor.Report) string {
	if r.FIN {
		return "fin"
	}
	return "up"
}

// writeLines writes one line per source (piped output).
func writeLines(w io.Writer, now time.Time, reps []monitor.Report) {
	ts := now.UTC().Format(time.RFC3339)
	for i := range reps {
		r := &reps[i]
		fmt.Fprintf(w, "%s %s addr=%s %s msgs/s=%s MB/s=%s window=%s odata=%d rdata=%d spm=%d ncf=%d nak=%d spmr=%d gaps=%d loss=%.2f%%\n",
			ts, r.TSI, addr(r.Addr), state(r), rate(r.MsgsPerSec), rate(r.BytesPerSec/1e6), window(r),
			r.ODATA, r.RDATA, r.SPM, r.NCF, r.NAK+r.NNAK, r.SPMR, r.Gaps-min(r.Late, r.Gaps), 100*r.LossRatio())
	}
}

func rate(v float64) string { return cli.PerSecond(v, 1) }

// writeTable redraws the screen (terminal output).
func writeTable(w io.Writer, now time.Time, o *options, reps []monitor.Report, st monitor.Stats) {
	io.WriteString(w, "\x1b[H\x1b[2J") // home, clear
	fmt.Fprintf(w, "mcstat %v  every %v  %s  %d sources  %d packets (%d not PGM)\n\n",
		o.group, o.interval, now.Format("15:04:05"), len(reps), st.Packets, st.Malformed)
	fmt.Fprintf(w, "%-26s %-15s %-4s %9s %8s %-23s %9s %7s %6s %6s %5s %5s %7s\n",
		"SOURCE", "ADDR", "", "MSGS/S", "MB/S", "WINDOW", "ODATA", "RDATA", "SPM", "NCF", "NAK", "SPMR", "LOSS")
	for i := range reps {
		r := &reps[i]
		fmt.Fprintf(w, "%-26s %-15s %-4s %9s %8s %-23s %9d %7d %6d %6d %5d %5d %6.2f%%\n",
			r.TSI, addr(r.Addr), state(r), rate(r.MsgsPerSec), rate(r.BytesPerSec/1e6), window(r),
			r.ODATA, r.RDATA, r.SPM, r.NCF, r.NAK+r.NNAK, r.SPMR, 100*r.LossRatio())
	}
	if len(reps) == 0 {
		io.WriteString(w, "(no source seen yet)\n")
	}
}
