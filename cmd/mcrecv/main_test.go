package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/cli"
	"github.com/relmcast/relmcast/mcast"
	"github.com/relmcast/relmcast/mcast/mcasttest"
	"github.com/relmcast/relmcast/mcast/zmqpgm"
)

func TestParseArgs(t *testing.T) {
	o, err := parseArgs(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.group != mcast.DefaultGroup || o.mode != modeText || o.count != 0 || o.idle != 0 || o.timeout != 0 || o.cfg.WrapTransport != nil || o.cfg.Interface != nil {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseArgs(strings.Fields("--group [ff02::1:3]:7501 --count 5 --idle 2s --timeout 1m --quiet --verify --expiry 90s --loss loss=0.05,seed=7"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.group != netip.MustParseAddrPort("[ff02::1:3]:7501") || o.count != 5 || o.idle != 2*time.Second || o.timeout != time.Minute ||
		o.mode != modeQuiet || !o.verify || o.cfg.SourceExpiry != 90*time.Second || o.cfg.WrapTransport == nil {
		t.Errorf("parsed: %+v", o)
	}
	if o, err = parseArgs([]string{"--json"}, io.Discard); err != nil || o.mode != modeJSON {
		t.Errorf("--json: %+v, %v", o, err)
	}
	if o, err = parseArgs([]string{"--loss", "0"}, io.Discard); err != nil || o.cfg.WrapTransport != nil {
		t.Errorf("--loss 0 should not wrap: %v", err)
	}

	for _, tc := range []struct{ args, hint string }{
		{"--json --quiet", "choose one"},
		{"--count 0", "at least 1"},
		{"--count -1", "--count: want a whole number"},
		{"--idle 0s", "positive duration"},
		{"--idle 3", "no unit"},
		{"--timeout -1s", "negative"},
		{"--expiry 0s", "positive duration"},
		{"--group 10.1.2.3:7500", "not a multicast address"},
		{"--group [ff02::1%nosuch9]:7500", "not an interface"},
		{"--iface nosuch9", "no such interface"},
		{"--loss 5", "5%"},
		{"--loss bogus=1", "unknown key"},
		{"--bogus", "unknown flag --bogus"},
		{"extra", "unexpected argument"},
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
	for _, want := range []string{"--count N", "--json", "--verify", "--loss SPEC", "for testing", "Loopback demo", "Exit status", "listening on"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("help lacks %q", want)
		}
	}
}

func TestUsageExit(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--count", "x"}, env{stdout: &out, stderr: &errb}); code != 2 {
		t.Errorf("bad usage: exit %d; want 2", code)
	}
	if !strings.Contains(errb.String(), "--help") {
		t.Errorf("stderr %q", errb.String())
	}
	if code := run([]string{"-h"}, env{stdout: &out, stderr: &errb}); code != 0 || !strings.Contains(out.String(), "Usage: mcrecv") {
		t.Errorf("help: exit %d, stdout %q", code, out.String())
	}
}

var testSource = mcast.SourceID{GSI: [6]byte{1, 2, 3, 4, 5, 6}, Port: 4242}

func TestJSON(t *testing.T) {
	var j jsonWriter
	j.init()
	addr := netip.MustParseAddr("198.18.0.1")
	texts := []string{"hello", "", `quote " back \ slash`, "tab\tnl\ncr\r\x00\x1f\x7f", "héllo wörld ✓ 😀", "line\u2028sep\u2029"}
	for _, s := range texts {
		ev := mcast.Event{Kind: mcast.EventData, Source: testSource, Addr: addr, Data: []byte(s), Seq: 7, LastSeq: 8}
		var got map[string]any
		line := j.append(&ev)
		if !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
			t.Errorf("%q: not one line: %q", s, line)
		}
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatalf("%q: %v in %s", s, err, line)
		}
		want := map[string]any{"type": "data", "source": testSource.String(), "addr": "198.18.0.1", "seq": 7.0, "last_seq": 8.0, "len": float64(len(s)), "data": s}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%q:\n got %v\nwant %v", s, got, want)
		}
	}
	bin := []byte{0xff, 0xfe, 'a', 0}
	var got map[string]any
	ev := mcast.Event{Kind: mcast.EventData, Source: testSource, Data: bin}
	if err := json.Unmarshal(j.append(&ev), &got); err != nil {
		t.Fatal(err)
	}
	if got["data_b64"] != base64.StdEncoding.EncodeToString(bin) || got["data"] != nil || got["len"] != 4.0 {
		t.Errorf("binary: %v", got)
	}

	prev := mcast.SourceID{GSI: [6]byte{9}, Port: 1}
	for _, tc := range []struct {
		ev   mcast.Event
		want string
	}{
		{mcast.Event{Kind: mcast.EventLoss, Source: testSource, Addr: addr, Seq: 10, LastSeq: 12, Lost: 3, LossReason: mcast.LossRetriesExhausted},
			`{"type":"loss","source":"1.2.3.4.5.6.4242","addr":"198.18.0.1","seq":10,"last_seq":12,"lost":3,"reason":"retries-exhausted"}`},
		{mcast.Event{Kind: mcast.EventSourceNew, Source: testSource, Addr: addr},
			`{"type":"source-new","source":"1.2.3.4.5.6.4242","addr":"198.18.0.1"}`},
		{mcast.Event{Kind: mcast.EventSourceGone, Source: testSource, Addr: addr, GoneReason: mcast.GoneFIN},
			`{"type":"source-gone","source":"1.2.3.4.5.6.4242","addr":"198.18.0.1","reason":"fin"}`},
		{mcast.Event{Kind: mcast.EventSourceRestart, Source: testSource, Addr: addr, Prev: prev},
			`{"type":"source-restart","source":"1.2.3.4.5.6.4242","addr":"198.18.0.1","prev":"` + prev.String() + `"}`},
	} {
		if got := string(j.append(&tc.ev)); got != tc.want+"\n" {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

func TestVerifier(t *testing.T) {
	var errb bytes.Buffer
	var v verifier
	v.init(&errb)
	msg := func(n uint64) *mcast.Event {
		b := make([]byte, 100)
		cli.FillNumbered(b, n)
		return &mcast.Event{Kind: mcast.EventData, Source: testSource, Data: b}
	}
	v.event(&mcast.Event{Kind: mcast.EventSourceNew, Source: testSource})
	for _, n := range []uint64{0, 1, 2, 5, 6, 4} { // 3 and 4 missing, then 4 late
		v.check(msg(n))
	}
	bad := msg(7)
	bad.Data[50]++
	v.check(bad)
	v.check(&mcast.Event{Kind: mcast.EventData, Source: testSource, Data: []byte("short")})
	if v.ok != 5 || v.missing != 2 || v.outOfOrder != 1 || v.bad != 2 {
		t.Errorf("ok %d missing %d outOfOrder %d bad %d", v.ok, v.missing, v.outOfOrder, v.bad)
	}
	// A restart starts over at 0.
	v.event(&mcast.Event{Kind: mcast.EventSourceRestart, Source: testSource})
	v.check(msg(0))
	if v.ok != 6 || v.problems() != 5 {
		t.Errorf("after restart: ok %d problems %d", v.ok, v.problems())
	}
	if !strings.Contains(errb.String(), "2 missing") {
		t.Errorf("reports: %s", errb.String())
	}
}

// TestHandleAllocs: a message costs no allocation in any output mode
// once the buffers are warm.
func TestHandleAllocs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mode   int
		verify bool
	}{{"quiet", modeQuiet, false}, {"quiet-verify", modeQuiet, true}, {"text", modeText, false}, {"json-verify", modeJSON, true}} {
		o := &options{mode: tc.mode, verify: tc.verify}
		a := newApp(o, io.Discard, io.Discard, time.Now())
		a.handle(&mcast.Event{Kind: mcast.EventSourceNew, Source: testSource})
		ev := mcast.Event{Kind: mcast.EventData, Source: testSource, Data: make([]byte, 1000)}
		n := uint64(0)
		allocs := testing.AllocsPerRun(1000, func() {
			cli.FillNumbered(ev.Data, n)
			n++
			a.handle(&ev)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per message", tc.name, allocs)
		}
		if tc.verify && a.v.problems() != 0 {
			t.Errorf("%s: verify problems %d", tc.name, a.v.problems())
		}
	}
}

type fakeSignal struct{}

func (fakeSignal) String() string { return "fake" }
func (fakeSignal) Signal()        {}

// syncBuffer is a bytes.Buffer safe for concurrent use, which can wait
// for a string to appear.
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

// waitFor waits, at most d, until s contains want.
func (s *syncBuffer) waitFor(want string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(s.String(), want) {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

// memRun runs mcrecv with args over an in-memory network, with a sender
// that sends msgs, and returns the exit code, stdout and stderr.
func memRun(t *testing.T, args []string, rxLoss string, msgs [][]byte) (int, string, string) {
	t.Helper()
	nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Seed: 1})
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

	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(args, env{stdout: &stdout, stderr: &stderr, configure: func(c *mcast.Config) { c.Transport = rx }})
	}()
	if !stderr.waitFor("listening on "+group.String(), 5*time.Second) {
		t.Fatalf("no 'listening on' in 5s; stderr: %s", stderr.String())
	}
	// A modest rate: these tests are about mcrecv, not about how fast the
	// library repairs on a loaded machine (or under -race).
	s, err := mcast.NewSender(group, &mcast.Config{Transport: tx, Linger: 500 * time.Millisecond, Rate: 20e6})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, m := range msgs {
		if err := s.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	select {
	case code := <-done:
		return code, stdout.String(), stderr.String()
	case <-time.After(30 * time.Second):
		t.Fatalf("mcrecv did not exit in 30s; stderr: %s", stderr.String())
	}
	return 0, "", ""
}

func TestRunLines(t *testing.T) {
	lines := []string{"one", "two", "", "four with spaces", "fünf"}
	var msgs [][]byte
	for _, l := range lines {
		msgs = append(msgs, []byte(l))
	}
	code, out, errs := memRun(t, []string{"--count", "5", "--timeout", "20s"}, "", msgs)
	if code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
	if want := strings.Join(lines, "\n") + "\n"; out != want {
		t.Errorf("stdout %q; want %q", out, want)
	}
	for _, want := range []string{"source new", "5 messages, 27 bytes", "0 loss events", "1 sources"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}

func TestRunJSON(t *testing.T) {
	msgs := [][]byte{[]byte("hello"), {0xff, 0x00}, []byte(`{"nested": "json"}`)}
	code, out, errs := memRun(t, []string{"--json", "--idle", "1s", "--timeout", "20s"}, "", msgs)
	if code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
	var types []string
	var data []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		types = append(types, m["type"].(string))
		if m["type"] == "data" {
			if s, ok := m["data"].(string); ok {
				data = append(data, s)
			} else {
				data = append(data, "b64:"+m["data_b64"].(string))
			}
		}
	}
	// The source's FIN may be seen before --idle ends it (source-gone) or not.
	if got := strings.Join(types, " "); !strings.HasPrefix(got, "source-new data data data") {
		t.Errorf("types: %s", got)
	}
	if got, want := strings.Join(data, "|"), `hello|b64:/wA=|{"nested": "json"}`; got != want {
		t.Errorf("data %s; want %s", got, want)
	}
	if !strings.Contains(errs, "--idle reached") {
		t.Errorf("stderr:\n%s", errs)
	}
}

func TestRunVerifyUnderLoss(t *testing.T) {
	const n = 2000
	var msgs [][]byte
	for i := range uint64(n) {
		b := make([]byte, 500)
		cli.FillNumbered(b, i)
		msgs = append(msgs, b)
	}
	code, _, errs := memRun(t, []string{"--count", fmt.Sprint(n), "--verify", "--quiet", "--timeout", "20s"}, "loss=0.05,seed=3", msgs)
	if code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
	for _, want := range []string{fmt.Sprintf("%d messages", n), "verify ok", "0 loss events"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}

// TestRunCountNotReached: --idle before --count is exit 3.
func TestRunCountNotReached(t *testing.T) {
	code, _, errs := memRun(t, []string{"--count", "10", "--idle", "300ms", "--quiet", "--timeout", "20s"}, "", [][]byte{[]byte("a"), []byte("b")})
	if code != 3 || !strings.Contains(errs, "--idle reached after 2 of 10 messages") {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
}

// TestRunVerifyMismatch: a message that is not numbered is exit 3.
func TestRunVerifyMismatch(t *testing.T) {
	code, _, errs := memRun(t, []string{"--count", "1", "--verify", "--timeout", "20s"}, "", [][]byte{[]byte("not numbered")})
	if code != 3 || !strings.Contains(errs, "verify FAILED") {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
}

// TestRunInterrupt: a signal ends mcrecv with its summary.
func TestRunInterrupt(t *testing.T) {
	nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Seed: 1})
	defer nw.Close()
	rx := nw.Endpoint(netip.MustParseAddr("198.18.0.2"), mcast.DefaultGroup.Port())
	rx.Join(mcast.DefaultGroup)
	sig := make(chan os.Signal, 1)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"--timeout", "20s"}, env{stdout: &stdout, stderr: &stderr, signals: sig,
			configure: func(c *mcast.Config) { c.Transport = rx }})
	}()
	if !stderr.waitFor("listening on", 5*time.Second) {
		t.Fatal("not listening")
	}
	sig <- fakeSignal{}
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(stderr.String(), "0 messages") || !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("exit %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10s after the signal")
	}
}

// TestFlushLatency: a message reaches stdout promptly although the source
// is still there and no more data comes.
func TestFlushLatency(t *testing.T) {
	nw := mcasttest.NewNetwork(mcasttest.NetworkConfig{Seed: 1})
	defer nw.Close()
	group := mcast.DefaultGroup
	rx := nw.Endpoint(netip.MustParseAddr("198.18.0.2"), group.Port())
	rx.Join(group)
	tx := nw.Endpoint(netip.MustParseAddr("198.18.0.1"), group.Port())
	sig := make(chan os.Signal, 1)
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"--timeout", "20s"}, env{stdout: &stdout, stderr: &stderr, signals: sig,
			configure: func(c *mcast.Config) { c.Transport = rx }})
	}()
	if !stderr.waitFor("listening on", 5*time.Second) {
		t.Fatal("not listening")
	}
	s, err := mcast.NewSender(group, &mcast.Config{Transport: tx, Linger: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 3 {
		line := fmt.Sprintf("ping %d", i)
		start := time.Now()
		if _, err := s.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		if !stdout.waitFor(line+"\n", time.Second) {
			t.Fatalf("%q not on stdout after 1s", line)
		}
		t.Logf("%q on stdout after %v", line, time.Since(start))
	}
	sig <- fakeSignal{}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit")
	}
}

func TestParseZMQ(t *testing.T) {
	if o, err := parseArgs([]string{"--zmq", "--json"}, io.Discard); err != nil || !o.zmq || o.mode != modeJSON {
		t.Errorf("--zmq --json: %+v, %v", o, err)
	}
	_, err := parseArgs([]string{"--zmq", "--verify"}, io.Discard)
	var ue *cli.UsageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "exclude each other") {
		t.Errorf("--zmq --verify: %v", err)
	}
}

// zmqAPDU builds a ZeroMQ APDU: offset, then raw frame bytes.
func zmqAPDU(off uint16, parts ...[]byte) []byte {
	b := []byte{byte(off >> 8), byte(off)}
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func zframe(s string, more bool) []byte { return zmqpgm.AppendFrame(nil, []byte(s), more) }

// TestZMQResync: after a loss event the partial message is dropped, the
// APDU that continues it is skipped, and output resumes where the next
// message begins; each source has its own decoder.
func TestZMQResync(t *testing.T) {
	var out, errb bytes.Buffer
	o := &options{mode: modeText, zmq: true}
	a := newApp(o, &out, &errb, time.Now())
	other := mcast.SourceID{GSI: [6]byte{7}, Port: 7}
	long := zframe(strings.Repeat("L", 300), false)
	tail := zframe("tail-of-lost", false)
	for _, ev := range []mcast.Event{
		{Kind: mcast.EventSourceNew, Source: testSource},
		{Kind: mcast.EventSourceNew, Source: other},
		{Kind: mcast.EventData, Source: testSource, Data: zmqAPDU(0, zframe("topic", true), zframe("a", false), long[:100])},
		{Kind: mcast.EventData, Source: other, Data: zmqAPDU(0, zframe("other", false))},
		{Kind: mcast.EventLoss, Source: testSource, Lost: 1}, // long[100:200] lost
		{Kind: mcast.EventData, Source: testSource, Data: zmqAPDU(zmqpgm.NoOffset, long[200:])},
		{Kind: mcast.EventData, Source: testSource, Data: zmqAPDU(uint16(len(tail)), tail, zframe("b", true), zframe("c", false))},
		{Kind: mcast.EventData, Source: testSource, Data: zmqAPDU(0, zframe("", false))},
		{Kind: mcast.EventData, Source: other, Data: zmqAPDU(9, []byte{1})}, // offset beyond the data
		{Kind: mcast.EventSourceGone, Source: other},
	} {
		a.handle(&ev)
	}
	a.flush()
	if want := "topic a\nother\nb c\n\n"; out.String() != want {
		t.Errorf("stdout %q, want %q", out.String(), want)
	}
	if a.msgs != 4 || a.z.dropped != 1 || a.z.malformed != 1 || a.z.apdus != 6 || len(a.z.decs) != 1 {
		t.Errorf("msgs %d dropped %d malformed %d apdus %d decoders %d", a.msgs, a.z.dropped, a.z.malformed, a.z.apdus, len(a.z.decs))
	}
	if !strings.Contains(errb.String(), "zmq: "+other.String()+" seq 0: zmqpgm: malformed APDU: offset 9 beyond the 1 bytes of data") {
		t.Errorf("stderr:\n%s", errb.String())
	}
	// No allocation per message once warm.
	ev := mcast.Event{Kind: mcast.EventData, Source: testSource, Data: zmqAPDU(0, zframe("topic", true), zframe("body", false))}
	if n := testing.AllocsPerRun(100, func() { a.handle(&ev) }); n != 0 {
		t.Errorf("%v allocations per ZeroMQ message", n)
	}
	// A restart forgets the session it replaces.
	a.handle(&mcast.Event{Kind: mcast.EventSourceRestart, Source: other, Prev: testSource})
	if len(a.z.decs) != 0 {
		t.Errorf("%d decoders after the restart", len(a.z.decs))
	}
}

// TestRunZMQ: mcrecv --zmq over an in-memory network with loss prints a
// ZeroMQ publisher's messages, several to a PGM message and one across
// several, frames joined by a space; --json gives the frames.
func TestRunZMQ(t *testing.T) {
	big := strings.Repeat("B", 3000)
	stream := append(append(zframe("t1", true), zframe("one", false)...), zframe("two", false)...)
	msgs := [][]byte{
		zmqAPDU(0, stream),                    // two messages in one APDU
		zmqAPDU(0, zframe(big, false)[:1000]), // a message begins
		zmqAPDU(zmqpgm.NoOffset, zframe(big, false)[1000:2000]),
		zmqAPDU(uint16(1010-1000), zframe(big, false)[2000:], zframe("three", false)), // it ends, another begins and ends
	}
	code, out, errs := memRun(t, []string{"--zmq", "--count", "4", "--timeout", "20s"}, "loss=0.1,seed=5", msgs)
	if code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
	if want := "t1 one\ntwo\n" + big + "\nthree\n"; out != want {
		t.Errorf("stdout %.200q, want %.200q", out, want)
	}
	if !strings.Contains(errs, "4 messages, 3013 bytes") || !strings.Contains(errs, "zmq: 4 PGM messages decoded, 0 partial ZeroMQ messages dropped after loss, 0 malformed") {
		t.Errorf("stderr:\n%s", errs)
	}
	code, out, errs = memRun(t, []string{"--zmq", "--json", "--count", "2", "--timeout", "20s"}, "", msgs[:1])
	if code != 0 {
		t.Errorf("exit %d; stderr:\n%s", code, errs)
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 || fmt.Sprint(lines[1]["frames"]) != "[t1 one]" || fmt.Sprint(lines[2]["frames"]) != "[two]" || lines[1]["len"] != 5.0 {
		t.Errorf("json: %v", lines)
	}
}

// TestRunLog: with --log-format json the events go to a structured log on
// stderr, one JSON object per line, instead of mcrecv's own event lines;
// --metrics serves while mcrecv runs.
func TestRunLog(t *testing.T) {
	msgs := [][]byte{[]byte("a"), []byte("b")}
	code, out, errs := memRun(t, []string{"--count", "2", "--timeout", "20s", "--log-format", "json", "--metrics", "127.0.0.1:0"}, "", msgs)
	if code != 0 || out != "a\nb\n" {
		t.Errorf("exit %d, stdout %q; stderr:\n%s", code, out, errs)
	}
	if strings.Contains(errs, "mcrecv: source new") {
		t.Errorf("event line printed besides the log:\n%s", errs)
	}
	var logged int
	for _, line := range strings.Split(errs, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Errorf("log line %q: %v", line, err)
			continue
		}
		if m["msg"] == "mcast: source new" && m["level"] == "INFO" && m["addr"] == "198.18.0.1" {
			logged++
		}
	}
	if logged != 1 {
		t.Errorf("%d source new log lines; want 1:\n%s", logged, errs)
	}
	if !strings.Contains(errs, "mcrecv: metrics on http://127.0.0.1:") {
		t.Errorf("no metrics line:\n%s", errs)
	}
}

func TestObservabilityFlags(t *testing.T) {
	for args, want := range map[string]string{
		"--log-level loud":     `"loud" is not a log level`,
		"--log-format xml":     `"xml" is not a log format`,
		"--metrics 9464":       "not HOST:PORT",
		"--metrics host:port1": "not HOST:PORT",
	} {
		var out, errb strings.Builder
		if code := run(strings.Fields(args), env{stdout: &out, stderr: &errb}); code != 2 || !strings.Contains(errb.String(), want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", args, code, errb.String(), want)
		}
	}
}
