package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/cli"
	"github.com/relmcast/relmcast/internal/xfer"
	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
	"github.com/relmcast/relmcast/mcast/zmqpgm"
)

func TestParseArgs(t *testing.T) {
	o, err := parseArgs(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.group != mcast.DefaultGroup || o.cfg.Rate != 0 || o.cfg.TTL != 1 || o.cfg.Linger != mcast.DefaultLinger ||
		o.size != 0 || o.count != 0 || o.cfg.WrapTransport != nil || o.cfg.Addr.IsValid() {
		t.Errorf("defaults: %+v", o)
	}
	for _, tc := range []struct {
		args string
		rate int64
	}{{"--rate 100M", 100_000_000}, {"--rate 1.5G", 1_500_000_000}, {"--rate 0", -1}, {"--rate=250k", 250_000}} {
		o, err := parseArgs(strings.Fields(tc.args), io.Discard)
		if err != nil || o.cfg.Rate != tc.rate {
			t.Errorf("%s: Config.Rate %d, %v; want %d", tc.args, o.cfg.Rate, err, tc.rate)
		}
	}
	o, err = parseArgs(strings.Fields("--group [ff02::1:3]:7501 --addr 127.0.0.2 --ttl 8 --linger 0 --count 20 --size 100 --loss 0.1"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.group != netip.MustParseAddrPort("[ff02::1:3]:7501") || o.cfg.Addr != netip.MustParseAddr("127.0.0.2") || o.cfg.TTL != 8 ||
		o.cfg.Linger != -1 || o.count != 20 || o.size != 100 || o.cfg.WrapTransport == nil {
		t.Errorf("parsed: %+v", o)
	}
	if o, err = parseArgs([]string{"--count", "3"}, io.Discard); err != nil || o.size != defaultCountSize {
		t.Errorf("--count alone: size %d, %v", o.size, err)
	}
	if o, err = parseArgs([]string{"--size", "7"}, io.Discard); err != nil || o.size != 7 || o.count != 0 {
		t.Errorf("--size alone: %+v, %v", o, err)
	}
	if o, err = parseArgs(strings.Fields("--fec 16:2"), io.Discard); err != nil ||
		o.cfg.FECGroupSize != 16 || o.cfg.FECProactive != 2 || o.cfg.FECOnDemand {
		t.Errorf("--fec 16:2: %+v, %v", o.cfg, err)
	}
	if o, err = parseArgs(strings.Fields("--fec 32:0 --fec-ondemand"), io.Discard); err != nil ||
		o.cfg.FECGroupSize != 32 || o.cfg.FECProactive != 0 || !o.cfg.FECOnDemand {
		t.Errorf("--fec 32:0 --fec-ondemand: %+v, %v", o.cfg, err)
	}
	if o, err = parseArgs(strings.Fields("--batch 2ms --batch-size 500"), io.Discard); err != nil ||
		o.cfg.Batch != 2*time.Millisecond || o.cfg.BatchSize != 500 {
		t.Errorf("--batch 2ms --batch-size 500: %+v, %v", o.cfg, err)
	}
	if o, err = parseArgs(nil, io.Discard); err != nil || o.cfg.FECGroupSize != 0 || o.cfg.FECOnDemand || o.cfg.Batch != 0 {
		t.Errorf("FEC not off by default: %+v, %v", o.cfg, err)
	}

	for _, tc := range []struct{ args, hint string }{
		{"--rate fast", "write e.g. 100M"},
		{"--rate 10MB", "multiply by 8"},
		{"--rate -1", "positive"},
		{"--ttl 0", "1 to 255"},
		{"--ttl 256", "1 to 255"},
		{"--linger -1s", "negative"},
		{"--linger 2", "no unit"},
		{"--count 0", "at least 1"},
		{"--size 0", "1 to 65535"},
		{"--size 65536", "1 to 65535"},
		{"--count 5 --size 7", "at least 8"},
		{"--group 239.192.0.1:99999", "1 to 65535"},
		{"--group [ff02::1%nosuch9]:7500", "not an interface"},
		{"--group 192.0.2.1", "not a multicast address"},
		{"--addr 239.1.1.1", "not a unicast address"},
		{"--addr somehost", "not an IP address"},
		{"--iface nosuch9", "no such interface"},
		{"--loss 1.5", "more than 1"},
		{"file.txt", "reads messages from stdin"},
		{"--fec 16", "want K:H"},
		{"--fec 12:2", "power of two"},
		{"--fec 16:17", "0..16"},
		{"--fec 8:0", "would do nothing"},
		{"--fec-ondemand", "needs --fec"},
		{"--batch 0", "leave --batch out"},
		{"--batch -1ms", "negative"},
		{"--batch 1", "no unit"},
		{"--batch-size 100", "needs --batch"},
		{"--batch 1ms --batch-size 10", "at least 64"},
		{"--batch 1ms --zmq", "ZeroMQ"},
		{"--batch 1ms --fec 16:2", "cannot be combined"},
	} {
		_, err := parseArgs(strings.Fields(tc.args), io.Discard)
		var ue *cli.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%s: error %v; want a usage error that says %q", tc.args, err, tc.hint)
		}
	}
	var help strings.Builder
	if _, err := parseArgs([]string{"--help"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	for _, want := range []string{"--group ADDR:PORT", "--rate BITS/S", "--loss SPEC", "for testing", "--count N", "Loopback demo", "Exit status", "[ff02::1:3%v0]:7500"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestUsageExit(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--rate", "x"}, env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}); code != 2 {
		t.Errorf("bad usage: exit %d; want 2", code)
	}
	if !strings.Contains(errb.String(), "mcsend --help") || out.Len() != 0 {
		t.Errorf("stdout %q stderr %q", out.String(), errb.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// memRun runs mcsend with args and stdin over an in-memory network with
// one receiver, and returns the exit code, mcsend's stderr and the
// messages received (until the source is gone, at most 30s).
func memRun(t *testing.T, args []string, stdin io.Reader, rxLoss string) (int, string, []string) {
	t.Helper()
	nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Seed: 2})
	defer nw.Close()
	group := mcast.DefaultGroup
	rx := nw.Endpoint(netip.MustParseAddr("198.18.0.2"), group.Port())
	rx.Join(group)
	if rxLoss != "" {
		imp, err := mcasttest.ParseImpairment(rxLoss)
		if err != nil {
			t.Fatal(err)
		}
		rx.SetImpairment(imp)
	}
	tx := nw.Endpoint(netip.MustParseAddr("198.18.0.1"), group.Port())
	r, err := mcast.Listen(group, &mcast.Config{Transport: rx})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	var got []string
	rxDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var ev mcast.Event
		for {
			if err := r.Read(ctx, &ev); err != nil {
				rxDone <- err
				return
			}
			switch ev.Kind {
			case mcast.EventData:
				got = append(got, string(ev.Data))
			case mcast.EventLoss:
				rxDone <- fmt.Errorf("loss: %v", &ev)
				return
			case mcast.EventSourceGone:
				rxDone <- nil
				return
			}
		}
	}()
	var stderr syncBuffer
	code := run(args, env{stdin: stdin, stdout: io.Discard, stderr: &stderr, configure: func(c *mcast.Config) { c.Transport = tx }})
	if err := <-rxDone; err != nil {
		t.Errorf("receiver: %v", err)
	}
	return code, stderr.String(), got
}

func TestRunLines(t *testing.T) {
	in := "first line\nsecond\n\nfourth: empty third\nfifth, no newline"
	code, errs, got := memRun(t, []string{"--linger", "300ms"}, strings.NewReader(in), "")
	if code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
	if want := strings.Split(in, "\n"); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("received %q; want %q", got, want)
	}
	for _, want := range []string{"sending to 239.192.0.1:7500 from 198.18.0.1", "5 messages, 52 bytes", "0 repairs sent (RDATA), 0 NAKs received"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}

func TestRunLineTooLong(t *testing.T) {
	in := "ok\n" + strings.Repeat("x", 70000) + "\nnot sent\n"
	code, errs, got := memRun(t, []string{"--linger", "0"}, strings.NewReader(in), "")
	if code != 1 || !strings.Contains(errs, "line 2 is longer than 65535 bytes") || !strings.Contains(errs, "--size") {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
	if len(got) != 1 || got[0] != "ok" {
		t.Errorf("received %q", got)
	}
	// A line of exactly the largest message is fine.
	code, errs, got = memRun(t, []string{"--linger", "0"}, strings.NewReader(strings.Repeat("y", 65535)+"\n"), "")
	if code != 0 || len(got) != 1 || len(got[0]) != 65535 {
		t.Errorf("65535-byte line: exit %d, %d messages; stderr:\n%s", code, len(got), errs)
	}
}

func TestRunRecords(t *testing.T) {
	in := make([]byte, 2500)
	for i := range in {
		in[i] = byte(i * 7)
	}
	code, errs, got := memRun(t, []string{"--size", "1000", "--linger", "300ms"}, bytes.NewReader(in), "")
	if code != 0 || len(got) != 3 || len(got[2]) != 500 || got[0]+got[1]+got[2] != string(in) {
		t.Errorf("exit %d, %d messages; stderr:\n%s", code, len(got), errs)
	}
}

func TestRunCountUnderLoss(t *testing.T) {
	const n = 3000
	code, errs, got := memRun(t, []string{"--count", fmt.Sprint(n), "--size", "200", "--rate", "20M", "--linger", "1s"}, strings.NewReader("ignored"), "loss=0.05,seed=9")
	if code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
	if len(got) != n {
		t.Fatalf("received %d messages; want %d", len(got), n)
	}
	for i, m := range got {
		if k, ok := cli.CheckNumbered([]byte(m)); !ok || k != uint64(i) || len(m) != 200 {
			t.Fatalf("message %d: number %d ok %v len %d", i, k, ok, len(m))
		}
	}
	if !strings.Contains(errs, fmt.Sprintf("%d messages, %d bytes", n, n*200)) || strings.Contains(errs, " 0 repairs sent") {
		t.Errorf("stderr:\n%s", errs)
	}
}

// TestRunBatch: with --batch, small generated messages share packets,
// and a plain Receiver gets every one, in order, under loss.
func TestRunBatch(t *testing.T) {
	const n = 5000
	code, errs, got := memRun(t, []string{"--count", fmt.Sprint(n), "--size", "64", "--rate", "20M", "--batch", "1ms", "--linger", "1s"},
		strings.NewReader("ignored"), "loss=0.05,seed=9")
	if code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
	if len(got) != n {
		t.Fatalf("received %d messages; want %d", len(got), n)
	}
	for i, m := range got {
		if k, ok := cli.CheckNumbered([]byte(m)); !ok || k != uint64(i) || len(m) != 64 {
			t.Fatalf("message %d: number %d ok %v len %d", i, k, ok, len(m))
		}
	}
	// 21 messages of 64 bytes fill a packet.
	if !strings.Contains(errs, fmt.Sprintf("batching: %d messages in %d packets", n, (n+20)/21)) {
		t.Errorf("stderr:\n%s", errs)
	}
}

// TestRunInterrupt: a signal closes the Sender (FIN) while stdin is still
// open; --count interrupted is exit 1.
func TestRunInterrupt(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{{[]string{"--linger", "0"}, 0}, {[]string{"--linger", "0", "--count", "1000000000", "--size", "100", "--rate", "10M"}, 1}} {
		nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{})
		tx := nw.Endpoint(netip.MustParseAddr("198.18.0.1"), mcast.DefaultGroup.Port())
		pr, pw := io.Pipe() // stdin that never ends
		sig := make(chan os.Signal, 1)
		var stderr syncBuffer
		done := make(chan int, 1)
		go func() {
			done <- run(tc.args, env{stdin: pr, stdout: io.Discard, stderr: &stderr, signals: sig,
				configure: func(c *mcast.Config) { c.Transport = tx }})
		}()
		go fmt.Fprintln(pw, "hello") // blocks until read, if ever
		time.Sleep(100 * time.Millisecond)
		sig <- os.Interrupt
		select {
		case code := <-done:
			if code != tc.code || !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("%v: exit %d; stderr:\n%s", tc.args, code, stderr.String())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%v: no exit 10s after the signal", tc.args)
		}
		pw.Close()
		nw.Close()
	}
}

// TestRunSecondSignal: while the Sender lingers, a second signal exits at
// once.
func TestRunSecondSignal(t *testing.T) {
	nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{})
	defer nw.Close()
	tx := nw.Endpoint(netip.MustParseAddr("198.18.0.1"), mcast.DefaultGroup.Port())
	sig := make(chan os.Signal, 1)
	exited := make(chan int, 1)
	var stderr syncBuffer
	done := make(chan int, 1)
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() {
		done <- run([]string{"--linger", "3s"}, env{stdin: pr, stdout: io.Discard, stderr: &stderr, signals: sig,
			exit:      func(code int) { exited <- code },
			configure: func(c *mcast.Config) { c.Transport = tx }})
	}()
	time.Sleep(50 * time.Millisecond)
	sig <- os.Interrupt
	time.Sleep(300 * time.Millisecond) // now closing: lingering for 3s
	sig <- syscall.SIGTERM
	select {
	case code := <-exited:
		if code != exitSignal {
			t.Errorf("exit(%d); want exit(%d)", code, exitSignal)
		}
	case <-time.After(2 * time.Second):
		t.Fatalf("no exit 2s after the second signal; stderr:\n%s", stderr.String())
	}
	select {
	case <-done: // run ends after the linger, since exit did not exit
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return")
	}
}

// TestRunZMQ: with --zmq each line goes out as a one-frame ZeroMQ message
// in ZeroMQ's framing, a long line across several PGM messages of one
// packet each, as ZeroMQ subscribers need.
func TestRunZMQ(t *testing.T) {
	long := strings.Repeat("z", 4000)
	in := "hello\n\n" + long + "\nlast\n"
	code, errs, got := memRun(t, []string{"--zmq", "--linger", "300ms"}, strings.NewReader(in), "loss=0.05,seed=4")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errs)
	}
	var d zmqpgm.Decoder
	var msgs []string
	for i, apdu := range got {
		if len(apdu) < 3 || len(apdu) > 1448 {
			t.Errorf("PGM message %d: %d bytes, want 3..1448", i, len(apdu))
		}
		if err := d.Feed([]byte(apdu), func(frames [][]byte) {
			if len(frames) != 1 {
				t.Errorf("%d frames", len(frames))
			}
			msgs = append(msgs, string(frames[0]))
		}); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"hello", "", long, "last"}; strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Errorf("decoded %q", msgs)
	}
	if !strings.Contains(errs, fmt.Sprintf("zmq: 4 ZeroMQ messages in %d PGM messages", len(got))) {
		t.Errorf("stderr:\n%s", errs)
	}
}

// TestRunFile: --file sends a header and the content in messages of one
// packet each, under loss; the messages decode to the exact files.
func TestRunFile(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 100_000)
	for i := range big {
		big[i] = byte(i * 31 / 7)
	}
	paths := []string{filepath.Join(dir, "empty"), filepath.Join(dir, "big.bin")}
	os.WriteFile(paths[0], nil, 0o644)
	os.WriteFile(paths[1], big, 0o644)
	code, errs, got := memRun(t, []string{"--file", paths[0], "--file", paths[1], "--linger", "1s"}, strings.NewReader("ignored"), "loss=0.05,seed=3")
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, errs)
	}
	var names []string
	var content []byte
	for i, m := range got {
		switch xfer.Kind([]byte(m)) {
		case xfer.KindHeader:
			h, err := xfer.ParseHeader([]byte(m))
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			names = append(names, h.Name)
		case xfer.KindData:
			if len(m) > 1448 {
				t.Errorf("message %d: %d bytes, more than a packet", i, len(m))
			}
			content = append(content, m[1:]...)
		default:
			t.Fatalf("message %d: kind %q", i, m[0])
		}
	}
	if strings.Join(names, " ") != "empty big.bin" || !bytes.Equal(content, big) {
		t.Errorf("names %q, %d bytes of content", names, len(content))
	}
	for _, want := range []string{"file empty: 0 bytes, sha256 e3b0c442", "file big.bin: 100000 bytes", "files: 2 of 2 sent, 100000 of 100000 bytes"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
	// --size sets the content per message.
	_, _, got = memRun(t, []string{"--file", paths[1], "--size", "30000", "--linger", "300ms"}, nil, "")
	if len(got) != 5 || len(got[1]) != 30001 || len(got[4]) != 10001 {
		t.Errorf("%d messages", len(got))
	}
}

func TestFileUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ args, hint string }{
		{"--file a --count 3", "exclude each other"},
		{"--file a --zmq", "exclude each other"},
		{"--file a --size 65535", "1 to 65534"},
	} {
		_, err := parseArgs(strings.Fields(tc.args), io.Discard)
		var ue *cli.UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%s: error %v; want a usage error that says %q", tc.args, err, tc.hint)
		}
	}
	for _, tc := range []struct{ path, hint string }{
		{filepath.Join(dir, "missing"), "no such file"},
		{dir, "not a regular file"},
	} {
		var errb bytes.Buffer
		if code := run([]string{"--file", tc.path}, env{stderr: &errb}); code != 1 || !strings.Contains(errb.String(), tc.hint) {
			t.Errorf("%s: exit %d, stderr %q", tc.path, code, errb.String())
		}
	}
}
