// Command soak is the two ends of the multi-host soak test (scripts/soak,
// issue 6): one sender and any number of receivers, each in its own
// network namespace.
//
//	soak send --iface eth0 --count 200000 --rate 60M
//	soak recv --iface eth0 --count 200000 --name h1
//
// The sender sends numbered messages of mixed sizes (soak/stream.go), a
// quarter of them fragmented, then closes. A receiver reads until the
// source is gone and checks the stream: every message in order and whole,
// or accounted for exactly by the loss events before the next one. Both
// check after Close that every goroutine they started has ended, and
// report their peak RSS. Each prints one line starting with "RESULT",
// and exits 0 if all went well, 1 if not, 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/relmcast/relmcast/internal/cli"
	"github.com/relmcast/relmcast/mcast"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	role     string
	name     string
	group    netip.AddrPort
	ifi      *net.Interface
	count    uint64
	rate     cli.RateFlag
	timeout  time.Duration
	linger   time.Duration
	allowed  map[mcast.LossReason]bool
	expected int // goroutines of the process itself, besides those of mcast
}

func parse(args []string, stderr io.Writer) (*options, error) {
	if len(args) == 0 || args[0] != "send" && args[0] != "recv" {
		return nil, errors.New("first argument: send or recv")
	}
	o := &options{role: args[0]}
	fs := flag.NewFlagSet("soak "+o.role, flag.ContinueOnError)
	fs.SetOutput(stderr)
	group := cli.GroupFlag{AddrPort: mcast.DefaultGroup}
	fs.Var(&group, "group", "multicast group `ADDR:PORT`")
	ifname := fs.String("iface", "", "interface `NAME` to send or join on")
	fs.StringVar(&o.name, "name", o.role, "`NAME` in the RESULT line")
	fs.Uint64Var(&o.count, "count", 200000, "messages sent")
	fs.Var(&o.rate, "rate", "sender rate limit in `BITS/S` (k, M, G); 0: unlimited (default 100M)")
	fs.DurationVar(&o.timeout, "timeout", 4*time.Minute, "give up after `DURATION`")
	fs.DurationVar(&o.linger, "linger", 3*time.Second, "sender: keep repairing for `DURATION` after FIN")
	allow := fs.String("allow", "window-passed", "receiver: loss reasons accepted, comma-separated (a loss is only "+
		"accepted when the source's window genuinely moved on)")
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.count == 0 {
		return nil, errors.New("--count 0: want at least 1 message")
	}
	o.group = group.AddrPort
	ifi, err := cli.Interface(*ifname, o.group)
	if err != nil {
		return nil, err
	}
	o.ifi = ifi
	o.allowed = map[mcast.LossReason]bool{}
	for _, r := range strings.Split(*allow, ",") {
		found := false
		for lr := mcast.LossReason(1); lr.String() != "unknown"; lr++ {
			if lr.String() == r {
				o.allowed[lr], found = true, true
			}
		}
		if !found && r != "" {
			return nil, fmt.Errorf("--allow: %q is not a loss reason (window-passed, retries-exhausted, source-gone, overrun, ...)", r)
		}
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "soak: %v\n", err)
		}
		return 2
	}
	if os.Getenv("RELMCAST_NETNS") != "1" {
		// It sends at tens of Mbit/s: only into the namespaces of scripts/soak.
		fmt.Fprintln(stderr, "soak: run it through scripts/soak, inside private network namespaces")
		return 2
	}
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	var r result
	if o.role == "send" {
		r = send(ctx, o, stderr)
	} else {
		r = receive(ctx, o, stderr)
	}
	cancel()
	// Everything the library started must have ended at Close.
	leaked, stacks := leakCheck(base, 2*time.Second)
	r.add("goroutines_leaked", leaked)
	if leaked > 0 {
		r.fail(fmt.Sprintf("%d goroutines left after Close:\n%s", leaked, stacks))
	}
	hwm, rss := memStatus()
	r.add("rss_peak_kib", hwm)
	r.add("rss_kib", rss)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.add("go_heap_sys_kib", ms.HeapSys>>10)
	fmt.Fprintf(stdout, "RESULT name=%s ok=%v %s\n", o.name, r.ok(), strings.Join(r.fields, " "))
	for _, e := range r.errs {
		fmt.Fprintf(stderr, "soak %s: %s\n", o.name, e)
	}
	if !r.ok() {
		return 1
	}
	return 0
}

// result is what one end reports.
type result struct {
	fields []string
	errs   []string
}

func (r *result) add(k string, v any) { r.fields = append(r.fields, fmt.Sprintf("%s=%v", k, v)) }
func (r *result) fail(e string)       { r.errs = append(r.errs, e) }
func (r *result) ok() bool            { return len(r.errs) == 0 }

func send(ctx context.Context, o *options, stderr io.Writer) result {
	var r result
	cfg := &mcast.Config{Interface: o.ifi, Rate: o.rate.ConfigRate(), Linger: o.linger}
	s, err := mcast.NewSender(o.group, cfg)
	if err != nil {
		r.fail(err.Error())
		return r
	}
	fmt.Fprintf(stderr, "soak %s: sending %d messages to %v from %v as %v\n", o.name, o.count, o.group, s.Addr(), s.Source())
	buf := make([]byte, s.MaxMessageSize())
	start := time.Now()
	var sent, bytes uint64
	for n := range o.count {
		m := buf[:msgSize(n)]
		cli.FillNumbered(m, n)
		if err := s.Send(ctx, m); err != nil {
			r.fail(fmt.Sprintf("Send #%d: %v", n, err))
			break
		}
		sent++
		bytes += uint64(len(m))
	}
	// Wait (bounded) until all is on the wire, for the rate figures.
	for ctx.Err() == nil && s.Stats().Messages < sent {
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	heapProfile(o.name, stderr)
	s.Close() // FIN, linger, release
	st := s.Stats()
	if err := s.Send(context.Background(), buf[:1]); !errors.Is(err, net.ErrClosed) {
		r.fail(fmt.Sprintf("Send after Close: %v, want net.ErrClosed", err))
	}
	r.add("sent", sent)
	r.add("bytes", bytes)
	r.add("secs", fmt.Sprintf("%.1f", elapsed.Seconds()))
	r.add("msgs_per_s", int(float64(sent)/elapsed.Seconds()))
	r.add("mbit_per_s", fmt.Sprintf("%.1f", float64(st.ODATABytes)*8/1e6/elapsed.Seconds()))
	r.add("odata", st.ODATA)
	r.add("rdata", st.RDATA)
	r.add("ncf", st.NCF)
	r.add("naks", st.NAKs)
	r.add("nak_seqs", st.NAKSeqs)
	r.add("naks_eliminated", st.NAKsEliminated)
	r.add("naks_outside_window", st.NAKsOutsideWindow)
	if sent != o.count {
		r.fail(fmt.Sprintf("sent %d of %d messages", sent, o.count))
	}
	return r
}

func receive(ctx context.Context, o *options, stderr io.Writer) result {
	var r result
	rx, err := mcast.Listen(o.group, &mcast.Config{Interface: o.ifi, NAKRetries: 50})
	if err != nil {
		r.fail(err.Error())
		return r
	}
	fmt.Fprintf(stderr, "soak %s: listening on %v\n", o.name, o.group)
	v := newVerifier(o.count)
	var ev mcast.Event
	for v.gone == 0 {
		if err := rx.Read(ctx, &ev); err != nil {
			r.fail(fmt.Sprintf("Read: %v (after %d messages)", err, v.delivered))
			break
		}
		v.event(&ev)
	}
	heapProfile(o.name, stderr)
	rx.Close()
	st := rx.Stats()
	if err := rx.Read(context.Background(), &ev); !errors.Is(err, net.ErrClosed) {
		r.fail(fmt.Sprintf("Read after Close: %v, want net.ErrClosed", err))
	}
	r.add("delivered", v.delivered)
	r.add("bytes", v.bytes)
	r.add("loss_events", v.lossEvents)
	r.add("lost_msgs", v.lostMsgs)
	r.add("lost_pkts", v.lostPkts)
	var reasons []string
	for lr, n := range v.reasons {
		reasons = append(reasons, fmt.Sprintf("%v:%d", lr, n))
		if !o.allowed[lr] {
			r.fail(fmt.Sprintf("%d loss events for %v", n, lr))
		}
	}
	sort.Strings(reasons)
	if len(reasons) == 0 {
		reasons = []string{"none"}
	}
	r.add("loss_reasons", strings.Join(reasons, ","))
	r.add("gone", v.gone)
	r.add("naks", st.NAKs)
	r.add("nak_packets", st.NAKPackets)
	r.add("repairs", st.Repairs)
	r.add("duplicates", st.Duplicates)
	r.add("malformed", st.Malformed)
	for _, e := range v.errs {
		r.fail(e)
	}
	if !v.complete() {
		r.fail(fmt.Sprintf("%d delivered + %d lost of %d messages, source gone: %v", v.delivered, v.lostMsgs, o.count, v.gone))
	}
	return r
}

// leakCheck waits up to d for the goroutines to come back to base, and
// returns how many more there are, with their stacks.
func leakCheck(base int, d time.Duration) (int, string) {
	deadline := time.Now().Add(d)
	for {
		n := runtime.NumGoroutine() - base
		if n <= 0 {
			return 0, ""
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			return n, string(buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// heapProfile writes a heap profile of what is in use now (the end of
// the run, before Close) to $SOAK_PROFILE_DIR/NAME.heap, if that is set,
// for `go tool pprof`.
func heapProfile(name string, stderr io.Writer) {
	dir := os.Getenv("SOAK_PROFILE_DIR")
	if dir == "" {
		return
	}
	f, err := os.Create(filepath.Join(dir, name+".heap"))
	if err == nil {
		runtime.GC()
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "soak %s: heap profile: %v\n", name, err)
	}
}

// memStatus returns the peak and current resident set size, in KiB, from
// /proc/self/status (0 where there is none).
func memStatus() (hwm, rss int) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		var v int
		if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &v); err == nil {
			hwm = v
		} else if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &v); err == nil {
			rss = v
		}
	}
	return hwm, rss
}
