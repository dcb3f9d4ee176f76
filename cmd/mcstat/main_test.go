package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/monitor"
	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/mcast"
)

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

func TestParseArgs(t *testing.T) {
	for _, args := range [][]string{
		{"239.192.0.9:7600"},
		{"--json", "239.192.0.9:7600", "--interval", "2s"},
		{"239.192.0.9:7600", "--count", "3"},
		{"--group", "239.192.0.9:7600"},
	} {
		o, err := parseArgs(args, nil)
		if err != nil || o.group != netip.MustParseAddrPort("239.192.0.9:7600") {
			t.Errorf("%q: %v, %v", args, o, err)
		}
	}
	o, _ := parseArgs([]string{"--json", "239.192.0.9:7600", "--interval", "2s", "--count", "3"}, nil)
	if !o.json || o.interval != 2*time.Second || o.count != 3 {
		t.Errorf("flags after the group: %+v", o)
	}
	for args, want := range map[string]string{
		"":                                  "no group",
		"10.0.0.1:7500":                     "not a multicast address",
		"239.192.0.1:7500 239.192.0.2:7500": "give one group",
		"--interval 0s 239.192.0.1":         "--interval",
		"--count -1 239.192.0.1":            "--count",
		"--duration x 239.192.0.1":          "--duration",
		"--group 239.192.0.1 239.192.0.2":   "twice",
	} {
		var errb strings.Builder
		if code := run(strings.Fields(args), env{stdout: new(strings.Builder), stderr: &errb}); code != 2 || !strings.Contains(errb.String(), want) {
			t.Errorf("%q: exit %d, %q; want 2 and %q", args, code, errb.String(), want)
		}
	}
	var out strings.Builder
	if code := run([]string{"--help"}, env{stdout: &out, stderr: new(strings.Builder)}); code != 0 || !strings.Contains(out.String(), "passive") {
		t.Errorf("help: %d %q", code, out.String())
	}
}

// TestOutput: the piped lines and the terminal table show each source
// with its counts.
func TestOutput(t *testing.T) {
	m := monitor.New(monitor.Config{})
	t0 := time.Unix(1_700_000_000, 0)
	for q := uint32(0); q < 10; q++ {
		if q == 4 {
			continue
		}
		b, _ := (&wire.Packet{Type: wire.TypeODATA, SPort: 1000, DPort: 7500, GSI: wire.GSI{1, 2, 3, 4, 5, 6}, Seq: q, Payload: []byte("hello")}).Append(nil)
		m.HandleDatagram(t0, b, netip.MustParseAddr("10.0.0.1"))
	}
	reps := m.Snapshot(t0.Add(time.Second), nil)
	var lines, table strings.Builder
	writeLines(&lines, t0, reps)
	want := "2023-11-14T22:13:20Z 1.2.3.4.5.6.1000 addr=10.0.0.1 up msgs/s=9.00 MB/s=0.00 window=0..9 odata=9 rdata=0 spm=0 ncf=0 nak=0 spmr=0 gaps=1 loss=10.00%\n"
	if lines.String() != want {
		t.Errorf("line\n%q; want\n%q", lines.String(), want)
	}
	writeTable(&table, t0, &options{group: mcast.DefaultGroup, interval: time.Second}, reps, m.Stats())
	for _, s := range []string{"\x1b[H\x1b[2J", "1 sources", "1.2.3.4.5.6.1000", "10.0.0.1", "0..9", "10.00%"} {
		if !strings.Contains(table.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, table.String())
		}
	}
}

// TestWatch runs mcstat against a real Sender on lo: the source is shown
// with its counts, and mcstat sent nothing (the sender got no NAK or
// SPMR). A batching Sender (on the batch dport) is shown too, with its
// messages counted one by one. It opens sockets, so it runs only inside
// scripts/netns.
func TestWatch(t *testing.T) {
	if os.Getenv("RELMCAST_NETNS") != "1" {
		t.Skip("opens sockets: run inside scripts/netns (RELMCAST_NETNS=1)")
	}
	t.Run("plain", func(t *testing.T) { testWatch(t, 0) })
	t.Run("batch", func(t *testing.T) { testWatch(t, 5*time.Millisecond) })
}

func testWatch(t *testing.T, batch time.Duration) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip(err)
	}
	group := netip.MustParseAddrPort(fmt.Sprintf("239.192.0.%d:%d", 2+rand.IntN(200), 20000+rand.IntN(20000)))
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run([]string{"--iface", "lo", "--json", "--interval", "200ms", "--duration", "3s", group.String()},
			env{stdout: &stdout, stderr: &stderr})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(stderr.String(), "watching") {
		if time.Now().After(deadline) {
			t.Fatalf("mcstat did not start: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	const n = 100
	s, err := mcast.NewSender(group, &mcast.Config{Interface: lo, Rate: 10_000_000, Linger: 100 * time.Millisecond, Batch: batch})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range n {
		if err := s.Send(ctx, []byte(fmt.Sprintf("message %03d", i))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	st := s.Stats()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("mcstat did not exit")
	}
	var last *jsonReport
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(stdout.String()))
	for sc.Scan() {
		var j jsonReport
		if err := json.Unmarshal(sc.Bytes(), &j); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if j.Source != s.Source().String() {
			t.Errorf("unknown source %s", j.Source)
			continue
		}
		lines++
		last = &j
	}
	if last == nil {
		t.Fatalf("source never shown; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	if batch > 0 && last.ODATA == n {
		t.Errorf("batching sender: %d ODATA for %d messages", last.ODATA, n)
	}
	if last.ODATA != st.ODATA || last.Messages != n || last.ByteCount != n*11 || last.Addr != s.Addr().String() ||
		last.SPM < 1 || last.SPM != st.SPM || !last.FIN || last.Lead == nil || last.Trail == nil || uint64(*last.Lead-*last.Trail) != st.ODATA-1 || last.Gaps != 0 || last.RDATA != 0 {
		t.Errorf("last report %+v; sender sent %d ODATA, %d SPMs", *last, st.ODATA, st.SPM)
	}
	if st.NAKs != 0 || st.SPMRs != 0 || st.BadNAKs != 0 || st.Ignored != 0 {
		t.Errorf("the sender got packets: NAKs %d, SPMRs %d, bad %d, ignored %d", st.NAKs, st.SPMRs, st.BadNAKs, st.Ignored)
	}
	t.Logf("%d report lines; last %+v", lines, *last)
}
