// Command mcrecv joins a multicast group and prints, counts or verifies
// the messages of every PGM source (RFC 3208 over UDP multicast) sending
// to it, repairing what the network loses. Run mcrecv --help for the flags
// and examples.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relmcast/relmcast/internal/cli"
	"github.com/relmcast/relmcast/internal/lossy"
	"github.com/relmcast/relmcast/internal/metrics"
	"github.com/relmcast/relmcast/mcast"
)

const usageHead = `Usage: mcrecv [flags]

mcrecv joins a multicast group and receives the messages of every PGM
source (RFC 3208 over UDP multicast) sending to it. It asks for what it
misses (NAK) and gets it repaired; what cannot be repaired is reported.

Output:
  (default)    each message on stdout as its bytes and a newline; each event
               (source new, gone or restarted, loss) as one line on stderr
  --json       every message and event as one JSON object per line on
               stdout, with the fields type (data, loss, source-new,
               source-gone, source-restart), source, addr, seq, last_seq,
               len, data (the message if it is valid UTF-8; otherwise
               data_b64, in base64), lost, reason, prev
  --quiet      nothing per message (for benchmarks); events still on stderr
  --log-level, --log-format
               a structured log (log/slog) on stderr instead of the event
               lines: sources new, gone and restarted (info), losses
               (warn), each NAK sent (debug), socket errors (warn)
  --metrics    Prometheus metrics at http://HOST:PORT/metrics: totals and
               per source (label source="GSI.port"), read at each scrape
  --zmq        the sources are ZeroMQ epgm publishers (PUB sockets): decode
               ZeroMQ's framing and print each ZeroMQ message as its frames
               joined by one space (a topic frame first, as published) and
               a newline; with --json, data objects carry "frames" (or
               "frames_b64" when a frame is not UTF-8) instead of "data",
               "len" is the sum of the frames' lengths, and seq/last_seq
               are those of the PGM messages from its first to its last
               frame; --count counts ZeroMQ messages. After a loss event a
               source's partial message is dropped and decoding resumes
               where its next message begins, as ZeroMQ subscribers do
  --out DIR    receive the files of mcsend --file into DIR instead of
               printing messages: each is written to a hidden temporary
               file in DIR while it is hashed, and renamed to its name
               (linked, so that nothing is ever overwritten: when the name
               is taken, NAME.1, NAME.2, ... up to NAME.999) only once its
               size is reached and its SHA-256 matches. A file hit by a loss
               event, by the end or restart of its source, or by a hash
               mismatch is reported FAILED and its temporary file removed.
               Names with a path separator, "..", or empty are refused. A
               receiver that joins in the middle of a file skips to the
               next one. Files are reported on stderr, or with --json as
               objects of type file-start, file and file-failed (fields
               name, size, sha256, received, path or error) among the
               events, without the data messages

Once the group is joined, mcrecv prints "listening on GROUP" on stderr:
scripts wait for that line before they start a sender. On exit it prints a
summary on stderr: messages, bytes, elapsed time (first to last message),
msgs/s, MB/s, loss events, lost packets, NAKs sent, repairs received and
sources seen.

mcrecv runs until --count messages or --files files arrived, no message
arrived for --idle (counted from the first message: use --timeout to bound
the wait for it), --timeout passed, or SIGINT/SIGTERM, after which it prints
its summary (a second signal exits at once, with status 130).

When stderr is a terminal, a status line on it is redrawn every second:
msgs/s, MB/s, messages, NAKs sent and repairs received, lost packets,
sources, and files with --out. Nothing of the kind when stderr is not a
terminal.

Exit status: 0 all went well; 1 error; 2 bad usage; 3 data was lost: a loss
event, a --verify mismatch or gap, ZeroMQ framing that could not be decoded
(--zmq), a file that failed (--out), or --count or --files not reached
before --idle, --timeout or a signal stopped mcrecv; 130 a second signal.

Examples:
  mcrecv
  mcrecv --group 239.192.0.9:7600 --count 10 > messages.txt
  mcrecv --json --idle 5s | jq .
  mcrecv --out incoming --files 1           (the file of mcsend --file PATH)
  mcrecv --group '[ff02::1:3%eth0]:7500'      (IPv6: the zone names the interface)
  mcrecv --zmq --iface eth0 --group 239.192.0.1:5555 --expiry 2m
                  (the messages of zmq PUB sockets on epgm://eth0;239.192.0.1:5555)

Loopback demo (one host, two terminals; receiver first):
  mcrecv --iface lo --count 100000 --verify --quiet
  mcsend --iface lo --count 100000 --size 1000

Flags:
`

// env is what run needs from the process, replaced by tests.
type env struct {
	stdout, stderr io.Writer
	signals        <-chan os.Signal // SIGINT, SIGTERM; nil: none
	exit           func(code int)   // exits at once on a second signal
	// configure, if not nil, adjusts the Config before Listen (tests use
	// it to run over an in-memory network).
	configure func(*mcast.Config)
	// tty: stderr is a terminal of width columns; a status line is
	// drawn on it.
	tty   bool
	width int
}

// exitSignal is the exit status after a second signal: 128+SIGINT, as
// shells report a process killed by Ctrl-C.
const exitSignal = 130

func main() {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	tty, width := cli.Terminal(os.Stderr)
	os.Exit(run(os.Args[1:], env{
		stdout:  os.Stdout,
		stderr:  os.Stderr,
		signals: sig,
		exit:    os.Exit,
		tty:     tty,
		width:   width,
	}))
}

// Output modes.
const (
	modeText = iota
	modeJSON
	modeQuiet
)

// options are the parsed command line.
type options struct {
	group   netip.AddrPort
	ifname  string
	cfg     mcast.Config
	count   uint64 // 0: no limit
	idle    time.Duration
	timeout time.Duration
	mode    int
	verify  bool
	obs     cli.Observability
	zmq     bool   // ZeroMQ epgm framing
	out     string // --out DIR: receive files
	files   uint64 // --files: exit after N files; 0: no limit
}

// parseArgs parses the command line. Its errors are *cli.UsageError, or
// flag.ErrHelp after printing the help to out.
func parseArgs(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("mcrecv", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	group := cli.GroupFlag{AddrPort: mcast.DefaultGroup}
	var (
		loss    lossy.Config
		json    = fs.Bool("json", false, "write every message and event as one JSON object per line on stdout")
		quiet   = fs.Bool("quiet", false, "print nothing per message (for benchmarks)")
		expiry  = cli.DurationFlag{D: mcast.DefaultSourceExpiry}
		idle    cli.DurationFlag
		timeout cli.DurationFlag
	)
	fs.Var(&group, "group", "multicast group `ADDR:PORT`, IPv4 or IPv6 ([ff02::1:3%v0]:7500: the zone names the interface)")
	fs.StringVar(&o.ifname, "iface", "", "`NAME` of the interface to join on, e.g. lo or eth0 (default: the first up multicast interface)")
	fs.Uint64Var(&o.count, "count", 0, "exit after `N` messages")
	fs.Var(&idle, "idle", "exit when no message arrived for `DURATION`, counted from the first message")
	fs.Var(&timeout, "timeout", "exit after `DURATION` in all (0: no limit)")
	fs.Var(&expiry, "expiry", "a source silent for `DURATION` is gone (use 1m or more with OpenPGM and ZeroMQ senders)")
	fs.BoolVar(&o.verify, "verify", false, "check that the numbered messages of mcsend --count arrive in order, from 0, with the right content")
	fs.BoolVar(&o.zmq, "zmq", false, "decode ZeroMQ epgm framing: print ZeroMQ messages, frames joined by a space")
	fs.StringVar(&o.out, "out", "", "receive the files of mcsend --file into directory `DIR` (written whole, SHA-256 checked, or reported failed)")
	fs.Uint64Var(&o.files, "files", 0, "with --out: exit after `N` files, written or failed")
	fs.Var(&loss, "loss", "for testing: drop received packets (data, SPM, NCF, RDATA) per `SPEC`: 0.05, or loss=0.05,burst=0.01,seed=7")
	o.obs.Register(fs)
	fs.Usage = func() {} // errors are reported by run, help below
	set, err := cli.Parse(fs, args, out, usageHead, "give the group with --group ADDR:PORT")
	if err != nil {
		return nil, err
	}
	o.group = group.AddrPort
	o.idle, o.timeout = idle.D, timeout.D
	switch {
	case *json && *quiet:
		return nil, cli.Usagef("--json and --quiet exclude each other: choose one")
	case *json:
		o.mode = modeJSON
	case *quiet:
		o.mode = modeQuiet
	}
	if o.zmq && o.verify {
		return nil, cli.Usagef("--zmq and --verify exclude each other: --verify checks mcsend --count's messages, which are not ZeroMQ messages")
	}
	if o.out != "" && (o.zmq || o.verify) {
		return nil, cli.Usagef("--out excludes --zmq and --verify: it receives the files of mcsend --file")
	}
	if set["files"] && (o.files == 0 || o.out == "") {
		return nil, cli.Usagef("--files %d: want at least 1 file, with --out DIR", o.files)
	}
	if set["out"] {
		if fi, err := os.Stat(o.out); err != nil || !fi.IsDir() {
			return nil, cli.Usagef("--out %q: not a directory", o.out)
		}
	}
	if set["count"] && o.count == 0 {
		return nil, cli.Usagef("--count 0: want at least 1 message (leave --count out for no limit)")
	}
	if o.idle < 0 || set["idle"] && o.idle == 0 {
		return nil, cli.Usagef("--idle %v: want a positive duration such as 2s (leave --idle out for no limit)", o.idle)
	}
	if o.timeout < 0 {
		return nil, cli.Usagef("--timeout %v is negative: want a duration such as 60s, or 0 for no limit", o.timeout)
	}
	if expiry.D <= 0 {
		return nil, cli.Usagef("--expiry %v: want a positive duration such as 10s", expiry.D)
	}
	o.cfg.SourceExpiry = expiry.D
	if loss.Active() {
		o.cfg.WrapTransport = func(t mcast.Transport) mcast.Transport { return lossy.Wrap(t, loss) }
	}
	ifi, err := cli.Interface(o.ifname, o.group)
	if err != nil {
		return nil, &cli.UsageError{Err: err}
	}
	o.cfg.Interface = ifi
	return o, nil
}

// Why the receive loop stopped, as context causes.
var (
	errTimeout     = errors.New("--timeout reached")
	errIdle        = errors.New("--idle reached")
	errInterrupted = errors.New("interrupted")
)

func run(args []string, e env) int {
	o, err := parseArgs(args, e.stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(e.stderr, "mcrecv: %v\nRun 'mcrecv --help' for usage.\n", err)
		return 2
	}
	cfg := o.cfg
	cfg.Logger = o.obs.Logger(e.stderr)
	if e.configure != nil {
		e.configure(&cfg)
	}
	start := time.Now()
	r, err := mcast.Listen(o.group, &cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "mcrecv: %v\n", err)
		return 1
	}
	if o.obs.Metrics != "" {
		srv, err := metrics.Serve(o.obs.Metrics, metrics.NewReceiverCollector(r))
		if err != nil {
			r.Close()
			fmt.Fprintf(e.stderr, "mcrecv: --metrics %s: %v\n", o.obs.Metrics, err)
			return 1
		}
		defer srv.Close()
		fmt.Fprintf(e.stderr, "mcrecv: metrics on http://%v/metrics\n", srv.Addr())
	}
	if o.ifname != "" {
		fmt.Fprintf(e.stderr, "mcrecv: listening on %v on %s\n", o.group, o.ifname)
	} else {
		fmt.Fprintf(e.stderr, "mcrecv: listening on %v\n", o.group)
	}

	var status *cli.Status
	if e.tty {
		status = cli.NewStatus(e.stderr, e.width)
		defer status.Stop()
		e.stderr = status // other output erases the status line first
	}
	a := newApp(o, e.stdout, e.stderr, start)
	if status != nil {
		status.Start(time.Second, statusLine(r, a))
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := make(chan struct{}) // closed when the loop is over
	defer close(stop)
	go func() {
		select {
		case <-e.signals:
		case <-stop:
			return
		}
		cancel(errInterrupted)
		select {
		case <-e.signals:
			fmt.Fprintln(e.stderr, "mcrecv: interrupted again: exiting")
			a.f.rx.RemoveTemps() // no partial file left behind
			e.exit(exitSignal)
		case <-stop:
		}
	}()
	if o.timeout > 0 {
		t := time.AfterFunc(o.timeout, func() { cancel(errTimeout) })
		defer t.Stop()
	}
	if o.idle > 0 {
		go a.watchIdle(ctx, cancel, stop)
	}

	readErr := a.loop(ctx, r)
	if o.out != "" {
		a.f.rx.Close() // files in progress fail
	}
	a.flush()
	r.Close()
	if status != nil {
		status.Stop()
	}
	st := r.Stats()
	a.summary(st)

	code := 0
	var why error
	switch {
	case readErr != nil:
		fmt.Fprintf(e.stderr, "mcrecv: %v\n", readErr)
		return 1
	case a.werr != nil:
		fmt.Fprintf(e.stderr, "mcrecv: writing stdout: %v\n", a.werr)
		return 1
	case ctx.Err() != nil:
		why = context.Cause(ctx)
	}
	if a.lossEvents > 0 {
		code = 3
	}
	if o.verify && a.v.problems() > 0 {
		code = 3
	}
	if a.z.malformed > 0 {
		code = 3
	}
	if a.f.failed.Load() > 0 {
		code = 3
	}
	if o.count > 0 && a.msgs < o.count {
		fmt.Fprintf(e.stderr, "mcrecv: %v after %d of %d messages\n", why, a.msgs, o.count)
		code = 3
	} else if o.files > 0 && a.f.handled() < o.files {
		fmt.Fprintf(e.stderr, "mcrecv: %v after %d of %d files\n", why, a.f.handled(), o.files)
		code = 3
	} else if why != nil {
		fmt.Fprintf(e.stderr, "mcrecv: %v\n", why)
	}
	return code
}

// app is the receive loop's state. Only the loop goroutine touches it,
// except lastMsg, which watchIdle reads.
type app struct {
	o      *options
	out    *bufio.Writer
	stderr io.Writer
	werr   error // first error writing stdout
	start  time.Time

	msgs, bytes      uint64
	first, last      time.Time // first and last message
	lastFlush        time.Time
	lossEvents, lost uint64
	sources          uint64

	lastMsg atomic.Int64 // last message, ns since start; 0: none yet

	v    verifier
	json jsonWriter
	z    zmqDecoders // --zmq
	f    files       // --out
}

// flushEvery bounds how long a line waits in the stdout buffer while
// messages keep coming; when none is waiting to be read the buffer is
// flushed at once.
const flushEvery = 50 * time.Millisecond

func newApp(o *options, stdout, stderr io.Writer, start time.Time) *app {
	a := &app{
		o:      o,
		out:    bufio.NewWriterSize(stdout, 64<<10),
		stderr: stderr,
		start:  start,
	}
	a.v.init(stderr)
	a.json.init()
	if o.zmq {
		a.z.init(a.zmqMessage)
	}
	if o.out != "" {
		a.f.init(a, o.out)
	}
	return a
}

// loop reads events until --count, ctx or an error. It returns the error
// of Read, or nil when it stopped for --count or ctx.
func (a *app) loop(ctx context.Context, r *mcast.Receiver) error {
	// A Read with a done context returns a queued event if there is one,
	// and ctx's error otherwise: that tells when the queue is empty, the
	// moment to flush stdout before blocking.
	now, nowCancel := context.WithCancel(context.Background())
	nowCancel()
	var ev mcast.Event // reused: Read allocates nothing per message into it
	done := ctx.Done()
	for (a.o.count == 0 || a.msgs < a.o.count) && (a.o.files == 0 || a.f.handled() < a.o.files) {
		select {
		case <-done: // stop even if the queue never runs dry
			return nil
		default:
		}
		err := r.Read(now, &ev)
		if err == context.Canceled {
			a.flush()
			err = r.Read(ctx, &ev)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		a.handle(&ev)
	}
	return nil
}

// handle processes one event. For a message in --quiet mode it allocates
// nothing.
func (a *app) handle(ev *mcast.Event) {
	if ev.Kind != mcast.EventData {
		a.event(ev)
		return
	}
	if a.o.zmq {
		if err := a.z.feed(ev); err != nil {
			a.flush()
			fmt.Fprintf(a.stderr, "mcrecv: zmq: %v seq %d: %v; skipping to where its next message begins\n", ev.Source, ev.Seq, err)
		}
		return
	}
	now := a.counted(len(ev.Data))
	if a.o.out != "" {
		a.f.rx.Handle(ev)
		return
	}
	if a.o.verify {
		a.v.check(ev)
	}
	switch a.o.mode {
	case modeText:
		a.out.Write(ev.Data)
		a.out.WriteByte('\n')
	case modeJSON:
		a.out.Write(a.json.append(ev))
	case modeQuiet:
		return
	}
	if now.Sub(a.lastFlush) >= flushEvery {
		a.flush()
	}
}

// counted counts one message of n bytes and returns the time.
func (a *app) counted(n int) time.Time {
	now := time.Now()
	if a.msgs == 0 {
		a.first = now
		a.lastFlush = now
	}
	a.last = now
	a.lastMsg.Store(int64(max(now.Sub(a.start), 1)))
	a.msgs++
	a.bytes += uint64(n)
	return now
}

// zmqMessage handles one ZeroMQ message (--zmq), decoded from the PGM
// messages of a.z.ev's source.
func (a *app) zmqMessage(frames [][]byte) {
	n := 0
	for _, f := range frames {
		n += len(f)
	}
	now := a.counted(n)
	switch a.o.mode {
	case modeText:
		for i, f := range frames {
			if i > 0 {
				a.out.WriteByte(' ')
			}
			a.out.Write(f)
		}
		a.out.WriteByte('\n')
	case modeJSON:
		a.out.Write(a.json.appendFrames(a.z.ev, a.z.first, frames, n))
	case modeQuiet:
		return
	}
	if now.Sub(a.lastFlush) >= flushEvery {
		a.flush()
	}
}

// event reports an event that is not a message.
func (a *app) event(ev *mcast.Event) {
	switch ev.Kind {
	case mcast.EventLoss:
		a.lossEvents++
		a.lost += ev.Lost
	case mcast.EventSourceNew, mcast.EventSourceRestart:
		a.sources++
	}
	if a.o.verify {
		a.v.event(ev)
	}
	if a.o.zmq {
		a.z.event(ev)
	}
	switch {
	case a.o.mode == modeJSON:
		a.out.Write(a.json.append(ev))
	case a.o.obs.Logging():
		// the structured log has it (mcast.Config.Logger)
	default:
		a.flush() // keep stdout and stderr in order on a terminal
		fmt.Fprintf(a.stderr, "mcrecv: %v\n", ev)
	}
	if a.o.out != "" {
		a.f.rx.Handle(ev) // after the event that fails a file
	}
}

func (a *app) flush() {
	a.lastFlush = time.Now()
	if a.out.Buffered() == 0 {
		return
	}
	if err := a.out.Flush(); err != nil && a.werr == nil {
		a.werr = err
	}
}

// watchIdle cancels ctx with errIdle once no message arrived for
// --idle, counted from the first message. It returns when stop is closed.
func (a *app) watchIdle(ctx context.Context, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	tick := time.NewTicker(min(max(a.o.idle/4, time.Millisecond), 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case t := <-tick.C:
			last := a.lastMsg.Load()
			if last != 0 && t.Sub(a.start)-time.Duration(last) >= a.o.idle {
				cancel(errIdle)
				return
			}
		}
	}
}

func (a *app) summary(st mcast.ReceiverStats) {
	elapsed := a.last.Sub(a.first)
	secs := elapsed.Seconds()
	fmt.Fprintf(a.stderr, "mcrecv: %d messages, %d bytes in %v: %s msgs/s, %s MB/s; %d loss events, %d lost packets; %d NAKs sent, %d repairs received; %d sources\n",
		a.msgs, a.bytes, cli.RoundDuration(elapsed),
		cli.PerSecond(float64(a.msgs), secs), cli.PerSecond(float64(a.bytes)/1e6, secs),
		a.lossEvents, a.lost, st.NAKPackets, st.Repairs, a.sources)
	if st.FECParity > 0 || st.FECRecovered > 0 {
		fmt.Fprintf(a.stderr, "mcrecv: FEC: %d packets rebuilt from %d parity packets, %d parity NAKs sent\n",
			st.FECRecovered, st.FECParity, st.ParityNAKs)
	}
	if a.o.verify {
		a.v.summary()
	}
	if a.o.out != "" {
		a.f.summary()
	}
	if a.o.zmq {
		fmt.Fprintf(a.stderr, "mcrecv: zmq: %d PGM messages decoded, %d partial ZeroMQ messages dropped after loss, %d malformed\n",
			a.z.apdus, a.z.dropped, a.z.malformed)
	}
}
