// Command mcsend publishes messages to a multicast group with PGM
// (RFC 3208 over UDP multicast): stdin lines, binary records of stdin, or
// generated numbered messages for tests and benchmarks. Receivers that miss
// a packet ask for it again and mcsend repairs it. Run mcsend --help for
// the flags and examples.
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
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/relmcast/relmcast/internal/cli"
	"github.com/relmcast/relmcast/internal/lossy"
	"github.com/relmcast/relmcast/internal/metrics"
	"github.com/relmcast/relmcast/internal/xfer"
	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/zmqpgm"
)

// maxMessage is the largest message mcast.Sender takes
// (Sender.MaxMessageSize); flags are checked against it before a Sender
// exists, and input against the Sender's own value after.
const maxMessage = 65535

// defaultCountSize is the message size of --count without --size.
const defaultCountSize = 1000

const usageHead = `Usage: mcsend [flags] < input
       mcsend --count N [--size S] [flags]
       mcsend --file PATH [--file PATH2 ...] [flags]

mcsend publishes messages to a multicast group with PGM (RFC 3208 over UDP
multicast). Receivers that miss a packet ask for it again (NAK) and mcsend
repairs it from the messages it keeps.

Input:
  (default)    each line of stdin is one message, without its newline
               (empty lines are empty messages); a line longer than 65535
               bytes, the largest message, is an error
  --size N     stdin is cut into binary records of N bytes, one message
               each (the last one may be shorter)
  --count N    N generated messages of --size bytes (default 1000), numbered
               from 0: the first 8 bytes are the number, big-endian, the
               rest a pattern that mcrecv --verify checks; stdin is not read
  --file PATH  send the file at PATH to mcrecv --out DIR: a header message
               (the file's base name, size and SHA-256), then the content
               in messages of --size bytes (default: what fits one packet);
               the file is read twice (hash, then send), streamed, never
               held in memory; --file may be repeated; stdin is not read
  --zmq        publish to ZeroMQ epgm subscribers (SUB sockets): each message
               above (line, record or generated) goes out as a ZeroMQ
               message of one frame, in ZeroMQ's framing, cut into PGM
               messages of one packet each (ZeroMQ takes no larger ones)

At the end of the input mcsend sends FIN, keeps answering repair requests
for --linger, and prints a summary on stderr: messages, bytes, elapsed time
(first message to last one on the wire), msgs/s, MB/s, repairs sent and NAKs
received. SIGINT or SIGTERM stop the input and close the same way; a second
signal exits at once, with status 130.

Logs and metrics: --log-level and --log-format write a structured log
(log/slog) on stderr: each NAK received (debug), and receivers NAKing data
no longer in the window, with their address (warn). --metrics serves
Prometheus metrics (rate, window, NAKs, NCFs, repairs, parity, late
NAKers) at http://HOST:PORT/metrics, read at each scrape.

When stderr is a terminal, a status line on it is redrawn every second:
msgs/s, MB/s, messages and bytes on the wire, repairs sent (RDATA) and
NAKs received; with --file a progress bar, the percentage, the bytes and
the time left instead of the totals. Nothing of the kind when stderr is
not a terminal.

Exit status: 0 success; 1 error (or --count or --file interrupted before
the end); 2 bad usage; 130 a second signal.

Examples:
  echo hello | mcsend
  mcsend --group 239.192.0.9:7600 --rate 1G < messages.txt
  mcsend --size 1400 < file.bin
  mcsend --file release.tar.gz --file notes.txt      (mcrecv --out DIR writes them)
  mcsend --count 100000 --size 1000 --rate 0
  mcsend --count 1000000 --size 64 --rate 0 --batch 1ms      (small messages packed into packets)
  mcsend --group '[ff02::1:3%eth0]:7500' < messages.txt     (IPv6: the zone names the interface)
  mcsend --zmq --iface eth0 --group 239.192.0.1:5555 < lines.txt
                  (to zmq SUB sockets on epgm://eth0;239.192.0.1:5555)

Loopback demo (one host, two terminals; receiver first):
  mcrecv --iface lo --count 100000 --verify --quiet
  mcsend --iface lo --count 100000 --size 1000

Flags:
`

// env is what run needs from the process, replaced by tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	signals        <-chan os.Signal // SIGINT, SIGTERM; nil: none
	exit           func(code int)   // exits at once on a second signal
	// configure, if not nil, adjusts the Config before NewSender (tests
	// use it to run over an in-memory network).
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
		stdin:   os.Stdin,
		stdout:  os.Stdout,
		stderr:  os.Stderr,
		signals: sig,
		exit:    os.Exit,
		tty:     tty,
		width:   width,
	}))
}

// options are the parsed command line.
type options struct {
	group  netip.AddrPort
	ifname string
	cfg    mcast.Config
	rate   cli.RateFlag
	size   int    // record or generated message size; 0: lines
	count  uint64 // generated messages; 0: read stdin
	zmq    bool   // ZeroMQ epgm framing
	obs    cli.Observability
	files  []string
}

// filesFlag collects the values of a repeated --file.
type filesFlag []string

func (f *filesFlag) String() string { return strings.Join(*f, ",") }
func (f *filesFlag) Set(s string) error {
	if s == "" {
		return errors.New("empty path")
	}
	*f = append(*f, s)
	return nil
}

// parseArgs parses the command line. Its errors are *cli.UsageError, or
// flag.ErrHelp after printing the help to out.
func parseArgs(args []string, out io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("mcsend", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	group := cli.GroupFlag{AddrPort: mcast.DefaultGroup}
	var (
		addr   cli.AddrFlag
		loss   lossy.Config
		ttl    = fs.Int("ttl", 1, "multicast TTL (hop limit) `N`, 1 to 255: 1 stays on the local link")
		linger = &cli.DurationFlag{D: mcast.DefaultLinger}
		size   = fs.Int("size", 0, "cut stdin into records of `N` bytes; with --count, the size of each generated message (default 1000 with --count)")
		count  = fs.Uint64("count", 0, "send `N` generated numbered messages instead of reading stdin")
		fecArg = fs.String("fec", "", "forward error correction: groups of `K:H` (K a power of two in 2..128, H pro-active parity packets after each group, 0..min(K,255-K)); receivers need no flag; our receivers only (default off)")
		fecOD  = fs.Bool("fec-ondemand", false, "with --fec: answer receivers' parity NAKs with fresh parity packets")
		batch  = &cli.DurationFlag{}
		bsize  = fs.Int("batch-size", 0, "with --batch: at most `N` bytes of messages (2 more each for framing) per packet (default: a full packet)")
	)
	fs.Var(batch, "batch", "pack small messages into packets, each sent when full or `DURATION` after its first message (e.g. 1ms); receivers need no flag; our receivers only, OpenPGM and ZeroMQ ones never see them (default off)")
	fs.Var(&group, "group", "multicast group `ADDR:PORT`, IPv4 or IPv6 ([ff02::1:3%v0]:7500: the zone names the interface)")
	fs.StringVar(&o.ifname, "iface", "", "`NAME` of the interface to send on, e.g. lo or eth0 (default: the first up multicast interface)")
	fs.Var(&addr, "addr", "unicast source address `IP` advertised to receivers for NAKs (default: the interface's first address)")
	fs.Var(&o.rate, "rate", "rate limit in `BITS/S` on the wire, with k, M or G: 100M, 1.5G; 0 means unlimited (default 100M)")
	fs.Var(linger, "linger", "keep answering NAKs for `DURATION` after the last message and FIN (0: none)")
	fs.Var(&loss, "loss", "for testing: drop packets mcsend receives (NAKs) per `SPEC`: 0.05, or loss=0.05,burst=0.01,seed=7")
	fs.BoolVar(&o.zmq, "zmq", false, "publish to ZeroMQ epgm SUB sockets: each message a single-frame ZeroMQ message")
	o.obs.Register(fs)
	fs.Var((*filesFlag)(&o.files), "file", "send the file at `PATH` (repeat for several) to mcrecv --out; stdin is not read")
	fs.Usage = func() {} // errors are reported by run, help below
	set, err := cli.Parse(fs, args, out, usageHead, "mcsend reads messages from stdin (mcsend < file), generates them (--count N) or sends files (--file PATH)")
	if err != nil {
		return nil, err
	}

	o.group = group.AddrPort
	o.cfg.Addr = addr.Addr
	o.cfg.Rate = o.rate.ConfigRate()
	if *ttl < 1 || *ttl > 255 {
		return nil, cli.Usagef("--ttl %d: want 1 to 255 (1 is the local link)", *ttl)
	}
	o.cfg.TTL = *ttl
	switch {
	case linger.D < 0:
		return nil, cli.Usagef("--linger %v is negative: write a duration such as 2s, or 0 for none", linger.D)
	case linger.D == 0:
		o.cfg.Linger = -1
	default:
		o.cfg.Linger = linger.D
	}
	if set["count"] {
		if *count == 0 {
			return nil, cli.Usagef("--count 0: want at least 1 message (leave --count out to read stdin)")
		}
		o.count = *count
		o.size = defaultCountSize
	}
	if len(o.files) > 0 {
		switch {
		case o.count > 0:
			return nil, cli.Usagef("--file and --count exclude each other: choose one input")
		case o.zmq:
			return nil, cli.Usagef("--file and --zmq exclude each other: ZeroMQ subscribers do not take files")
		case set["size"] && *size > maxMessage-xfer.DataOverhead:
			return nil, cli.Usagef("--size %d with --file: want 1 to %d bytes of content per message", *size, maxMessage-xfer.DataOverhead)
		}
	}
	if set["size"] {
		switch {
		case *size < 1 || *size > maxMessage:
			return nil, cli.Usagef("--size %d: want 1 to %d bytes (the largest message)", *size, maxMessage)
		case o.count > 0 && *size < cli.NumberedHeader:
			return nil, cli.Usagef("--size %d with --count: want at least %d bytes (the message number)", *size, cli.NumberedHeader)
		}
		o.size = *size
	}
	if set["fec"] || *fecOD {
		k, h, err := parseFEC(*fecArg)
		switch {
		case !set["fec"]:
			return nil, cli.Usagef("--fec-ondemand needs --fec K:H (H may be 0)")
		case err != nil:
			return nil, cli.Usagef("--fec %q: %v", *fecArg, err)
		case h == 0 && !*fecOD:
			return nil, cli.Usagef("--fec %s: no pro-active parity (H is 0) and no --fec-ondemand: FEC would do nothing", *fecArg)
		}
		o.cfg.FECGroupSize, o.cfg.FECProactive, o.cfg.FECOnDemand = k, h, *fecOD
	}
	switch {
	case batch.D < 0:
		return nil, cli.Usagef("--batch %v is negative: write a duration such as 1ms", batch.D)
	case set["batch"] && batch.D == 0:
		return nil, cli.Usagef("--batch 0: leave --batch out for no batching, or write a duration such as 1ms")
	case set["batch-size"] && !set["batch"]:
		return nil, cli.Usagef("--batch-size needs --batch DURATION")
	case set["batch"] && o.zmq:
		return nil, cli.Usagef("--batch with --zmq: ZeroMQ receivers take no batches")
	case set["batch"] && o.cfg.FECGroupSize > 0:
		return nil, cli.Usagef("--batch with --fec: batching and FEC cannot be combined")
	case set["batch-size"] && *bsize < 64:
		return nil, cli.Usagef("--batch-size %d: want at least 64 bytes", *bsize)
	}
	o.cfg.Batch, o.cfg.BatchSize = batch.D, *bsize
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

// parseFEC parses --fec K:H.
func parseFEC(s string) (k, h int, err error) {
	ks, hs, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, errors.New("want K:H, e.g. 16:2")
	}
	if k, err = strconv.Atoi(ks); err != nil || k < 2 || k > 128 || k&(k-1) != 0 {
		return 0, 0, errors.New("K must be a power of two in 2..128")
	}
	if h, err = strconv.Atoi(hs); err != nil || h < 0 || h > min(k, 255-k) {
		return 0, 0, fmt.Errorf("H must be in 0..%d", min(k, 255-k))
	}
	return k, h, nil
}

// counters are shared between the input goroutine and run.
type counters struct {
	sent atomic.Uint64 // messages handed to Send
	zmq  atomic.Uint64 // ZeroMQ messages (--zmq); each is one or more sent

	fileBytes atomic.Uint64 // file content handed to Send (--file)
	files     atomic.Uint64 // files sent whole (--file)
}

func run(args []string, e env) int {
	o, err := parseArgs(args, e.stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(e.stderr, "mcsend: %v\nRun 'mcsend --help' for usage.\n", err)
		return 2
	}
	total, err := checkFiles(o.files)
	if err != nil {
		fmt.Fprintf(e.stderr, "mcsend: %v\n", err)
		return 1
	}
	cfg := o.cfg
	cfg.Logger = o.obs.Logger(e.stderr)
	if e.configure != nil {
		e.configure(&cfg)
	}
	s, err := mcast.NewSender(o.group, &cfg)
	if err != nil {
		fmt.Fprintf(e.stderr, "mcsend: %v\n", err)
		return 1
	}
	if o.obs.Metrics != "" {
		srv, err := metrics.Serve(o.obs.Metrics, metrics.NewSenderCollector(s))
		if err != nil {
			s.Close()
			fmt.Fprintf(e.stderr, "mcsend: --metrics %s: %v\n", o.obs.Metrics, err)
			return 1
		}
		defer srv.Close()
		fmt.Fprintf(e.stderr, "mcsend: metrics on http://%v/metrics\n", srv.Addr())
	}
	if o.size > s.MaxMessageSize() {
		s.Close()
		fmt.Fprintf(e.stderr, "mcsend: --size %d: want at most %d bytes (the largest message)\n", o.size, s.MaxMessageSize())
		return 2
	}
	if len(o.files) > 0 {
		switch {
		case o.size == 0:
			o.size = s.MaxPacketPayload() - xfer.DataOverhead // one message, one packet
		case o.size > s.MaxMessageSize()-xfer.DataOverhead:
			s.Close()
			fmt.Fprintf(e.stderr, "mcsend: --size %d with --file: want at most %d bytes\n", o.size, s.MaxMessageSize()-xfer.DataOverhead)
			return 2
		}
	}
	var c counters
	if e.tty {
		st := cli.StartStatus(e.stderr, e.width, time.Second, statusLine(s, total, wireTotal(o.files, total, o.size)))
		defer st.Stop()
		e.stderr = st // other output erases the status line first
	}
	rate := "100M (default)"
	if o.rate.IsSet {
		rate = cli.FormatRate(o.rate.BPS)
	}
	fmt.Fprintf(e.stderr, "mcsend: sending to %v from %v as %v, rate %s\n", o.group, s.Addr(), s.Source(), rate)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var interrupted atomic.Bool
	stopSignals := make(chan struct{})
	defer close(stopSignals)
	go func() {
		select {
		case <-e.signals:
		case <-stopSignals:
			return
		}
		interrupted.Store(true)
		fmt.Fprintln(e.stderr, "mcsend: interrupted: closing (signal again to exit at once)")
		cancel()
		select {
		case <-e.signals:
			fmt.Fprintln(e.stderr, "mcsend: interrupted again: exiting")
			e.exit(exitSignal)
		case <-stopSignals:
		}
	}()

	start := time.Now()
	inputDone := make(chan error, 1)
	if len(o.files) > 0 {
		go func() { inputDone <- sendFiles(ctx, s, o, &c, e.stderr) }()
	} else {
		go func() { inputDone <- produce(ctx, s, o, e.stdin, &c) }()
	}

	var inErr error
	select {
	case inErr = <-inputDone:
	case <-ctx.Done():
		// The input may be blocked reading stdin, which cannot be
		// interrupted: give it a moment, then close without it.
		select {
		case inErr = <-inputDone:
		case <-time.After(200 * time.Millisecond):
		}
	}
	if inErr != nil && (errors.Is(inErr, context.Canceled) || errors.Is(inErr, mcast.ErrClosed)) {
		inErr = nil // interrupted; reported below
	}
	// Elapsed is from the first message to the last one on the wire,
	// without the linger.
	elapsed := time.Since(start)
	if !interrupted.Load() {
		elapsed = waitSent(ctx, s, c.sent.Load(), start)
	}
	s.Close() // FIN, linger, release
	if st, ok := e.stderr.(*cli.Status); ok {
		st.Stop()
	}
	st := s.Stats()
	secs := elapsed.Seconds()
	fmt.Fprintf(e.stderr, "mcsend: %d messages, %d bytes in %v: %s msgs/s, %s MB/s; %d repairs sent (RDATA), %d NAKs received\n",
		st.Messages, st.MessageBytes, cli.RoundDuration(elapsed),
		cli.PerSecond(float64(st.Messages), secs), cli.PerSecond(float64(st.MessageBytes)/1e6, secs),
		st.RDATA, st.NAKs)
	if o.zmq {
		fmt.Fprintf(e.stderr, "mcsend: zmq: %d ZeroMQ messages in %d PGM messages\n", c.zmq.Load(), st.Messages)
	}
	if len(o.files) > 0 {
		fmt.Fprintf(e.stderr, "mcsend: files: %d of %d sent, %d of %d bytes\n", c.files.Load(), len(o.files), c.fileBytes.Load(), total)
	}
	if o.cfg.Batch > 0 {
		fmt.Fprintf(e.stderr, "mcsend: batching: %d messages in %d packets\n", st.Messages, st.ODATA)
	}
	if o.cfg.FECGroupSize > 0 {
		fmt.Fprintf(e.stderr, "mcsend: FEC groups of %d: %d parity packets (%d pro-active, %d on demand), %d parity NAKs received, %d padding packets\n",
			o.cfg.FECGroupSize, st.ParityProactive+st.ParityOnDemand, st.ParityProactive, st.ParityOnDemand, st.ParityNAKs, st.Padding)
	}
	switch {
	case inErr != nil:
		fmt.Fprintf(e.stderr, "mcsend: %v\n", inErr)
		return 1
	case interrupted.Load() && o.count > 0 && c.sent.Load() < o.count:
		fmt.Fprintf(e.stderr, "mcsend: interrupted after %d of %d messages\n", c.sent.Load(), o.count)
		return 1
	case interrupted.Load() && c.files.Load() < uint64(len(o.files)):
		fmt.Fprintf(e.stderr, "mcsend: interrupted after %d of %d files\n", c.files.Load(), len(o.files))
		return 1
	}
	return 0
}

// produce sends the input: generated messages, records or lines.
func produce(ctx context.Context, s *mcast.Sender, o *options, in io.Reader, c *counters) error {
	sendPGM := func(m []byte) error {
		if err := s.Send(ctx, m); err != nil {
			return err
		}
		c.sent.Add(1)
		return nil
	}
	send := sendPGM
	if o.zmq {
		enc, err := zmqpgm.NewEncoder(s.MaxPacketPayload())
		if err != nil {
			return err
		}
		frames := make([][]byte, 1)
		send = func(m []byte) error {
			frames[0] = m
			if err := enc.Encode(frames, sendPGM); err != nil {
				return err
			}
			c.zmq.Add(1)
			return nil
		}
	}
	switch {
	case o.count > 0:
		buf := make([]byte, o.size)
		for n := range o.count {
			cli.FillNumbered(buf, n)
			if err := send(buf); err != nil {
				return err
			}
		}
		return nil
	case o.size > 0:
		buf := make([]byte, o.size)
		for {
			n, err := io.ReadFull(in, buf)
			if n > 0 {
				if err := send(buf[:n]); err != nil {
					return err
				}
			}
			switch {
			case err == io.EOF || err == io.ErrUnexpectedEOF:
				return nil
			case err != nil:
				return fmt.Errorf("reading stdin: %w", err)
			}
		}
	}
	max := s.MaxMessageSize()
	br := bufio.NewReaderSize(in, max+1) // a longest line and its newline
	for line := 1; ; line++ {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull || len(b) > max && b[len(b)-1] != '\n' {
			return fmt.Errorf("line %d is longer than %d bytes, the largest message: split it, or send binary data with --size N", line, max)
		}
		if len(b) > 0 {
			if b[len(b)-1] == '\n' {
				b = b[:len(b)-1]
			}
			if err := send(b); err != nil {
				return err
			}
		}
		switch {
		case err == io.EOF:
			return nil
		case err != nil:
			return fmt.Errorf("reading stdin: %w", err)
		}
	}
}

// checkFiles checks that each path is a regular file whose base name a
// receiver takes, and returns their total size.
func checkFiles(paths []string) (uint64, error) {
	var total uint64
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return 0, err
		}
		if !fi.Mode().IsRegular() {
			return 0, fmt.Errorf("%s: not a regular file", p)
		}
		if err := xfer.CheckName(filepath.Base(p)); err != nil {
			return 0, fmt.Errorf("%s: %w", p, err)
		}
		total += uint64(fi.Size())
	}
	return total, nil
}

// sendFiles sends the files of --file, one after the other, and reports
// each on stderr.
func sendFiles(ctx context.Context, s *mcast.Sender, o *options, c *counters, stderr io.Writer) error {
	send := func(ctx context.Context, m []byte) error {
		if err := s.Send(ctx, m); err != nil {
			return err
		}
		c.sent.Add(1)
		return nil
	}
	for _, p := range o.files {
		h, err := xfer.SendFile(ctx, p, o.size, send, &c.fileBytes)
		if err != nil {
			return err
		}
		c.files.Add(1)
		fmt.Fprintf(stderr, "mcsend: file %s: %d bytes, sha256 %x\n", h.Name, h.Size, h.SHA256)
	}
	return nil
}

// wireTotal returns the message bytes that sending files of total bytes
// of content in chunks of chunk bytes puts on the wire: headers, content
// and the data messages' overhead.
func wireTotal(paths []string, total uint64, chunk int) uint64 {
	if len(paths) == 0 || chunk < 1 {
		return 0
	}
	w := total
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		w += uint64(xfer.HeaderFixed+len(filepath.Base(p))) + (uint64(fi.Size())+uint64(chunk)-1)/uint64(chunk)*xfer.DataOverhead
	}
	return w
}

// statusLine returns the status line of a terminal: rates, totals and
// repairs, or when files are sent (wire > 0 message bytes in all for
// total bytes of content) a progress bar and the time left. Progress is
// what is on the wire, not what was handed to Send, which queues.
func statusLine(s *mcast.Sender, total, wire uint64) func() string {
	var m cli.Meter
	m.Update(time.Now(), 0, 0)
	return func() string {
		st := s.Stats()
		mps, bps := m.Update(time.Now(), st.Messages, st.MessageBytes)
		repairs := fmt.Sprintf("%d RDATA, %d NAKs", st.RDATA, st.NAKs)
		if wire > 0 {
			sent := min(st.MessageBytes, wire)
			done := uint64(float64(total) * float64(sent) / float64(wire)) // content
			return fmt.Sprintf("mcsend: %s %.1f MB/s ETA %s | %s",
				cli.ProgressBar(done, total, 12), bps/1e6, cli.ETA(wire-sent, bps), repairs)
		}
		return fmt.Sprintf("mcsend: %.0f msgs/s %.1f MB/s | %d msgs %s | %s", mps, bps/1e6, st.Messages, cli.MB(st.MessageBytes), repairs)
	}
}

// waitSent waits until the Sender has put all n messages on the wire and
// returns the time from start to then. It gives up (returning the time
// so far) when ctx is done or nothing moved for 10 seconds.
func waitSent(ctx context.Context, s *mcast.Sender, n uint64, start time.Time) time.Duration {
	const stall = 10 * time.Second
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	last, lastMove := uint64(0), time.Now()
	for {
		m := s.Stats().Messages
		now := time.Now()
		if m >= n {
			return now.Sub(start)
		}
		if m != last {
			last, lastMove = m, now
		} else if now.Sub(lastMove) > stall {
			return now.Sub(start)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return time.Since(start)
		}
	}
}
