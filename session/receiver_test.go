package session

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/nak"
)

var (
	testGroup = netip.MustParseAddr("239.192.0.1")
	testSrc   = netip.MustParseAddr("127.0.0.1")
	testTSI   = wire.TSI{GSI: wire.GSI{1, 2, 3, 4, 5, 6}, Port: 4242}
)

const testPort = 7500

// rxTest drives a Receiver core with explicit time and records its events.
type rxTest struct {
	t      *testing.T
	r      *Receiver
	now    time.Time
	events []string
	buf    []byte
}

func newRxTest(t *testing.T, cfg ReceiverConfig) *rxTest {
	cfg.DPort, cfg.Group = testPort, testGroup
	if cfg.JoinBackfill == 0 {
		cfg.JoinBackfill = -1 // most tests look at the window from the first packet
	}
	if cfg.NAK == (nak.Config{}) {
		cfg.NAK = nak.Config{BackoffIvl: 10 * time.Millisecond, RepeatIvl: 50 * time.Millisecond,
			RdataIvl: 100 * time.Millisecond, NCFRetries: 3, DataRetries: 3}
	}
	return &rxTest{t: t, r: NewReceiver(cfg), now: time.Unix(1000, 0)}
}

func (x *rxTest) packet(p wire.Packet) {
	x.t.Helper()
	x.packetTo(testPort, p)
}

// packetTo is packet with dport as the data-destination port.
func (x *rxTest) packetTo(dport uint16, p wire.Packet) {
	x.t.Helper()
	if p.Type.Downstream() {
		p.SPort, p.DPort = testTSI.Port, dport
	}
	if p.GSI == (wire.GSI{}) {
		p.GSI = testTSI.GSI
	}
	b, err := p.Append(nil)
	if err != nil {
		x.t.Fatalf("encode %v: %v", p.Type, err)
	}
	var q wire.Packet
	if err := wire.Parse(b, &q); err != nil {
		x.t.Fatalf("parse %v: %v", p.Type, err)
	}
	x.r.HandlePacket(x.now, &q, testSrc)
	x.deliver()
}

func (x *rxTest) odata(seq, trail uint32, payload string) {
	x.packet(wire.Packet{Type: wire.TypeODATA, Seq: seq, Trail: trail, Payload: []byte(payload)})
}

func (x *rxTest) rdata(seq, trail uint32, payload string) {
	x.packet(wire.Packet{Type: wire.TypeRDATA, Seq: seq, Trail: trail, Payload: []byte(payload)})
}

func (x *rxTest) spm(seq, trail, lead uint32, fin bool) {
	x.packet(wire.Packet{Type: wire.TypeSPM, Seq: seq, Trail: trail, Lead: lead, PathNLA: testSrc, FIN: fin})
}

func (x *rxTest) advance(d time.Duration) {
	x.now = x.now.Add(d)
	x.r.Advance(x.now)
	x.deliver()
}

// advanceToDeadline jumps to the core's next deadline.
func (x *rxTest) advanceToDeadline() {
	x.t.Helper()
	d := x.r.NextDeadline()
	if d.IsZero() {
		x.t.Fatal("no deadline")
	}
	if d.After(x.now) {
		x.now = d
	}
	x.r.Advance(x.now)
	x.deliver()
}

func (x *rxTest) deliver() {
	x.r.Deliver(func(e *Event) bool {
		x.events = append(x.events, formatEvent(e))
		return true
	})
}

func formatEvent(e *Event) string {
	switch e.Kind {
	case EventData:
		return fmt.Sprintf("data %d-%d %q", e.First, e.Last, e.Data)
	case EventLoss:
		return fmt.Sprintf("loss %d-%d n=%d %v", e.First, e.Last, e.Lost, e.LossReason)
	case EventSourceGone:
		return fmt.Sprintf("gone %v", e.GoneReason)
	case EventSourceRestart:
		return fmt.Sprintf("restart from %v", e.Prev)
	}
	return e.Kind.String()
}

func (x *rxTest) wantEvents(want ...string) {
	x.t.Helper()
	if got := strings.Join(x.events, "\n"); got != strings.Join(want, "\n") {
		x.t.Fatalf("events:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	x.events = x.events[:0]
}

// naks returns the sequence numbers of the NAKs queued, checking their
// addressing, and empties the queue.
func (x *rxTest) naks() []uint32 {
	x.t.Helper()
	var seqs []uint32
	for {
		b, dst, ok := x.r.Poll(x.buf[:0])
		if !ok {
			return seqs
		}
		var p wire.Packet
		if err := wire.Parse(b, &p); err != nil {
			x.t.Fatalf("parse queued packet: %v", err)
		}
		if p.Type != wire.TypeNAK {
			continue
		}
		if dst != netip.AddrPortFrom(testSrc, testPort) || p.SPort != testPort || p.DPort != testTSI.Port ||
			p.GSI != testTSI.GSI || p.SourceNLA != testSrc || p.GroupNLA != testGroup {
			x.t.Fatalf("NAK misaddressed: dst %v %+v", dst, p)
		}
		seqs = p.NAKSeqs(seqs)
	}
}

func TestReceiverInOrder(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	x.odata(5, 0, "a")
	x.odata(6, 0, "b")
	x.wantEvents("source-new", `data 5-5 "a"`, `data 6-6 "b"`)
	x.odata(6, 0, "b")
	x.odata(4, 0, "before join")
	x.wantEvents()
	if s := x.r.Stats(); s.Duplicates != 2 || s.Messages != 2 || s.Bytes != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReceiverGapRepaired(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	x.spm(0, 0, 9, false)
	x.odata(10, 0, "a")
	x.odata(13, 0, "d")
	x.wantEvents("source-new", `data 10-10 "a"`)
	t.Log("# the gap 11-12 is NAKed after the back-off, in one NAK")
	if got := x.naks(); got != nil {
		t.Fatalf("NAK before back-off: %v", got)
	}
	x.advanceToDeadline()
	if got := fmt.Sprint(x.naks()); got != "[11 12]" {
		t.Fatalf("NAKs %v", got)
	}
	x.packet(wire.Packet{Type: wire.TypeNCF, Seq: 11, SourceNLA: testSrc, GroupNLA: testGroup,
		NAKListLen: 1, NAKList: [62]uint32{12}})
	x.rdata(12, 0, "c")
	x.wantEvents()
	x.rdata(11, 0, "b")
	x.wantEvents(`data 11-11 "b"`, `data 12-12 "c"`, `data 13-13 "d"`)
	if s := x.r.Stats(); s.Repairs != 2 || s.NAKs != 2 || s.NAKPackets != 1 || s.NCFs != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestReceiverTrailPassesHole(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	x.odata(1, 0, "a")
	x.odata(3, 0, "c")
	x.odata(4, 0, "d")
	x.wantEvents("source-new", `data 1-1 "a"`)
	t.Log("# the source's trail moves past 2: lost at once, no wait")
	x.spm(0, 3, 4, false)
	x.wantEvents("loss 2-2 n=1 window-passed", `data 3-3 "c"`, `data 4-4 "d"`)
	t.Log("# a trail beyond everything seen skips the unseen numbers;")
	t.Log("# the report waits for 10, still repairable, so it can grow")
	x.spm(1, 10, 12, false)
	x.wantEvents()
	x.odata(10, 10, "k")
	x.wantEvents("loss 5-9 n=5 window-passed", `data 10-10 "k"`)
}

func TestReceiverRetriesExhausted(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	x.spm(0, 0, 0, false)
	x.odata(1, 0, "a")
	x.odata(3, 0, "c")
	x.wantEvents("source-new", `data 1-1 "a"`)
	naks := 0
	for i := 0; i < 20 && len(x.events) == 0; i++ {
		x.advanceToDeadline()
		naks += len(x.naks())
	}
	x.wantEvents("loss 2-2 n=1 retries-exhausted", `data 3-3 "c"`)
	if naks != 3 {
		t.Fatalf("sent %d NAKs, want NCFRetries=3", naks)
	}
}

func TestReceiverNAKListPacking(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	x.spm(0, 0, 0, false)
	x.odata(1, 0, "a")
	x.odata(102, 0, "z")
	x.advanceToDeadline()
	var pkts, total int
	for {
		b, _, ok := x.r.Poll(nil)
		if !ok {
			break
		}
		var p wire.Packet
		if err := wire.Parse(b, &p); err != nil {
			t.Fatal(err)
		}
		pkts++
		total += 1 + p.NAKListLen
	}
	if pkts != 2 || total != 100 {
		t.Fatalf("%d NAK packets naming %d numbers, want 2 and 100", pkts, total)
	}
}

func TestReceiverFragments(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	send := func(typ wire.Type, seq, first, off, total uint32, payload string) {
		x.packet(wire.Packet{Type: typ, Seq: seq, Payload: []byte(payload), HasFragment: true,
			Fragment: wire.Fragment{First: first, Offset: off, Length: total}})
	}
	x.spm(0, 0, 9, false)
	t.Log("# a message in three fragments, the middle one repaired")
	send(wire.TypeODATA, 10, 10, 0, 9, "abc")
	send(wire.TypeODATA, 12, 10, 6, 9, "ghi")
	x.wantEvents("source-new")
	send(wire.TypeRDATA, 11, 10, 3, 9, "def")
	x.wantEvents(`data 10-12 "abcdefghi"`)
	t.Log("# a message whose middle fragment is lost is lost whole")
	send(wire.TypeODATA, 13, 13, 0, 6, "ab")
	send(wire.TypeODATA, 15, 13, 4, 6, "ef")
	x.odata(16, 0, "next")
	x.spm(1, 15, 16, false) // trail passes 14
	x.wantEvents("loss 13-15 n=3 window-passed", `data 16-16 "next"`)
	t.Log("# inconsistent offsets make the message malformed")
	send(wire.TypeODATA, 17, 17, 0, 4, "ab")
	send(wire.TypeODATA, 18, 17, 1, 4, "cd")
	x.wantEvents("loss 17-18 n=2 malformed")
}

func TestReceiverJoinBackfill(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{JoinBackfill: 64})
	t.Log("# the first packets arrive out of order: the trail says the source still holds 0")
	x.odata(3, 0, "d")
	x.odata(1, 0, "b")
	x.wantEvents("source-new")
	x.odata(0, 0, "a")
	x.odata(2, 0, "c")
	x.wantEvents(`data 0-0 "a"`, `data 1-1 "b"`, `data 2-2 "c"`, `data 3-3 "d"`)
	t.Log("# a young source (trail within 64): from its trail")
	y := newRxTest(t, ReceiverConfig{JoinBackfill: 64})
	y.odata(70, 10, "x")
	y.advanceToDeadline()
	if got := y.naks(); len(got) != 60 || got[0] != 10 || got[59] != 69 {
		t.Fatalf("NAKed %v", got)
	}
	t.Log("# a late joiner to an older source starts at the first packet seen")
	z := newRxTest(t, ReceiverConfig{JoinBackfill: 64})
	z.odata(1000, 10, "late")
	z.wantEvents("source-new", `data 1000-1000 "late"`)
}

func TestReceiverJoinMidMessage(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	x.packet(wire.Packet{Type: wire.TypeODATA, Seq: 21, Payload: []byte("tail"), HasFragment: true,
		Fragment: wire.Fragment{First: 20, Offset: 4, Length: 8}})
	x.odata(22, 0, "whole")
	x.wantEvents("source-new", `data 22-22 "whole"`)
}

func TestReceiverExpiry(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{SourceExpiry: 2 * time.Second})
	x.spm(0, 0, 0, false)
	x.odata(1, 0, "a")
	x.odata(3, 0, "c")
	x.advance(1500 * time.Millisecond)
	x.spm(1, 0, 3, false)
	x.wantEvents("source-new", `data 1-1 "a"`)
	x.naks()
	x.advance(1999 * time.Millisecond)
	x.naks()
	x.odata(2, 0, "b-too-late?") // keeps it alive: not late, a repair
	x.wantEvents(`data 2-2 "b-too-late?"`, `data 3-3 "c"`)
	x.odata(5, 0, "e")
	for i := 0; i < 100 && !strings.Contains(strings.Join(x.events, ","), "gone"); i++ {
		x.advance(100 * time.Millisecond)
		x.naks()
		// keep NAKs from exhausting first: NCF every time
		if i%2 == 0 && i < 10 {
			x.packet(wire.Packet{Type: wire.TypeNCF, Seq: 4, SourceNLA: testSrc, GroupNLA: testGroup})
		}
	}
	got := strings.Join(x.events, "\n")
	if !strings.HasSuffix(got, "gone expired") || !strings.Contains(got, "loss 4-4") || !strings.Contains(got, `data 5-5 "e"`) {
		t.Fatalf("events:\n%s", got)
	}
	if x.r.Stats().Sources != 0 {
		t.Fatal("source not removed")
	}
}

func TestReceiverExpiryWithinTime(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{SourceExpiry: 3 * time.Second})
	x.spm(0, 0, 0, false)
	x.odata(1, 0, "a")
	start := x.now
	for i := 0; i < 10 && len(x.events) < 3; i++ {
		x.advanceToDeadline()
	}
	x.wantEvents("source-new", `data 1-1 "a"`, "gone expired")
	if d := x.now.Sub(start); d != 3*time.Second {
		t.Fatalf("gone after %v, want 3s", d)
	}
}

func TestReceiverFIN(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	x.spm(0, 0, 0, false)
	x.odata(1, 0, "a")
	x.spm(1, 0, 2, true) // FIN, with 2 still missing
	x.wantEvents("source-new", `data 1-1 "a"`)
	x.advanceToDeadline()
	x.rdata(2, 0, "b")
	x.wantEvents(`data 2-2 "b"`, "gone fin")
	t.Log("# the 2nd and 3rd FIN SPMs do not resurrect it")
	x.spm(2, 0, 2, true)
	x.spm(3, 0, 2, true)
	x.wantEvents()
}

func TestReceiverRestart(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	x.spm(0, 0, 0, false)
	x.odata(1, 0, "a")
	x.odata(3, 0, "c")
	x.wantEvents("source-new", `data 1-1 "a"`)
	t.Log("# same GSI, same address, new port: a restart")
	p := wire.Packet{Type: wire.TypeODATA, SPort: 999, DPort: testPort, GSI: testTSI.GSI, Seq: 0, Payload: []byte("new")}
	b, _ := p.Append(nil)
	var q wire.Packet
	if err := wire.Parse(b, &q); err != nil {
		t.Fatal(err)
	}
	x.r.HandlePacket(x.now, &q, testSrc)
	x.deliver()
	x.wantEvents("loss 2-2 n=1 source-restart", `data 3-3 "c"`,
		fmt.Sprintf("restart from %v", testTSI), `data 0-0 "new"`)
}

func TestReceiverHugeJump(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{Window: 1024})
	x.odata(1, 0, "a")
	x.odata(1+1<<31-1, 0, "far")
	x.wantEvents("source-new", `data 1-1 "a"`)
	t.Log("# data more than a window ahead is dropped, and an SPM asked for")
	if st := x.r.Stats(); st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
	x.advance(x.r.cfg.SPMRDelay)
	if b, _, ok := x.r.Poll(nil); !ok || wire.Type(b[4]) != wire.TypeSPMR {
		t.Fatalf("no SPMR after a jump: %x", b)
	}
	x.naks()
	t.Log("# the SPM confirms the lead: the window moves there, bounded")
	x.spm(0, 0, 1<<31, false)
	x.rdata(1<<31, 0, "far")
	if n := x.r.sources[0].nak.Len(); n > 1024 {
		t.Fatalf("tracking %d numbers, window is 1024", n)
	}
	if len(x.r.sources[0].ring) > 1024 {
		t.Fatalf("ring grew to %d", len(x.r.sources[0].ring))
	}
	t.Log("# the last 1023 numbers are NAKed; given up, they join the overrun in one report")
	for i := 0; i < 100 && len(x.events) == 0; i++ {
		x.advanceToDeadline()
		x.naks()
	}
	x.wantEvents(fmt.Sprintf("loss 2-%d n=%d overrun", 1<<31-1, 1<<31-2), fmt.Sprintf(`data %d-%d "far"`, 1<<31, 1<<31))
}

func TestReceiverBackpressure(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{Window: 64})
	x.spm(0, 0, 0, false)
	for i := uint32(1); i <= 10; i++ {
		x.r.HandlePacket(x.now, mustParse(t, wire.Packet{Type: wire.TypeODATA, SPort: testTSI.Port, DPort: testPort,
			GSI: testTSI.GSI, Seq: i, Payload: []byte{byte(i)}}), testSrc)
	}
	var got []string
	take := func(n int) {
		x.r.Deliver(func(e *Event) bool {
			if n == 0 {
				return false
			}
			n--
			got = append(got, formatEvent(e))
			return true
		})
	}
	x.wantEvents("source-new")
	take(3)
	take(0)
	take(100)
	if len(got) != 10 || got[0] != `data 1-1 "\x01"` || got[9] != `data 10-10 "\n"` {
		t.Fatalf("got %q", got)
	}
	t.Log("# an application that stops reading overruns the window: loss, not silence")
	for i := uint32(11); i <= 200; i++ {
		x.r.HandlePacket(x.now, mustParse(t, wire.Packet{Type: wire.TypeODATA, SPort: testTSI.Port, DPort: testPort,
			GSI: testTSI.GSI, Seq: i, Payload: []byte{byte(i)}}), testSrc)
	}
	x.deliver()
	if x.events[0] != "loss 11-136 n=126 overrun" || len(x.events) != 65 {
		t.Fatalf("events %q", x.events[:3])
	}
}

func TestReceiverWraparound(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	x.spm(0, 0xFFFFFFFD, 0xFFFFFFFD, false)
	x.odata(0xFFFFFFFE, 0xFFFFFFFD, "a")
	x.odata(0, 0xFFFFFFFD, "c")
	x.advanceToDeadline()
	if got := fmt.Sprint(x.naks()); got != "[4294967295]" {
		t.Fatalf("NAKs %v", got)
	}
	x.rdata(0xFFFFFFFF, 0xFFFFFFFD, "b")
	x.odata(1, 0xFFFFFFFF, "d")
	x.wantEvents("source-new", `data 4294967294-4294967294 "a"`, `data 4294967295-4294967295 "b"`,
		`data 0-0 "c"`, `data 1-1 "d"`)
}

func TestReceiverSPMR(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{SPMRDelay: 25 * time.Millisecond})
	x.odata(7, 0, "a")
	x.advance(24 * time.Millisecond)
	if _, _, ok := x.r.Poll(nil); ok {
		t.Fatal("SPMR too early")
	}
	x.advance(time.Millisecond)
	var dsts []string
	for {
		b, dst, ok := x.r.Poll(nil)
		if !ok {
			break
		}
		var p wire.Packet
		if err := wire.Parse(b, &p); err != nil || p.Type != wire.TypeSPMR || p.DPort != testTSI.Port || p.SPort != testPort {
			t.Fatalf("bad SPMR %v %+v", err, p)
		}
		dsts = append(dsts, dst.String())
	}
	if got := strings.Join(dsts, " "); got != "239.192.0.1:7500 127.0.0.1:7500" {
		t.Fatalf("SPMR sent to %s", got)
	}
	x.spm(0, 0, 7, false)
	x.advance(2 * time.Second)
	if _, _, ok := x.r.Poll(nil); ok {
		t.Fatal("SPMR after the SPM came")
	}
}

func TestReceiverPassive(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{Passive: true})
	x.odata(1, 0, "a")
	x.odata(3, 0, "c")
	for i := 0; i < 20 && len(x.events) < 4; i++ {
		x.advanceToDeadline()
		if _, _, ok := x.r.Poll(nil); ok {
			t.Fatal("a passive receiver sent a packet")
		}
	}
	x.wantEvents("source-new", `data 1-1 "a"`, "loss 2-2 n=1 retries-exhausted", `data 3-3 "c"`)
}

func TestReceiverIgnoresForeignPorts(t *testing.T) {
	x := newRxTest(t, ReceiverConfig{})
	p := wire.Packet{Type: wire.TypeODATA, SPort: 1, DPort: testPort + 1, GSI: testTSI.GSI, Seq: 1}
	x.r.HandlePacket(x.now, mustParse(t, p), testSrc)
	x.deliver()
	x.wantEvents()
	if x.r.Stats().Dropped != 1 {
		t.Fatal("not counted")
	}
}

func mustParse(t testing.TB, p wire.Packet) *wire.Packet {
	b, err := p.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	var q wire.Packet
	if err := wire.Parse(b, &q); err != nil {
		t.Fatal(err)
	}
	q.Payload = bytes.Clone(q.Payload)
	return &q
}

func TestReceiverAllocs(t *testing.T) {
	r := NewReceiver(ReceiverConfig{DPort: testPort, Group: testGroup})
	now := time.Unix(1, 0)
	payload := make([]byte, 1000)
	var seq uint32
	b := make([]byte, 0, 1500)
	var p wire.Packet
	step := func() {
		seq++
		pk := wire.Packet{Type: wire.TypeODATA, SPort: testTSI.Port, DPort: testPort, GSI: testTSI.GSI, Seq: seq, Trail: seq, Payload: payload}
		b, _ = pk.Append(b[:0])
		if err := wire.Parse(b, &p); err != nil {
			t.Fatal(err)
		}
		r.HandlePacket(now, &p, testSrc)
		r.Deliver(func(*Event) bool { return true })
	}
	for range 100 {
		step()
	}
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Fatalf("%v allocations per message", n)
	}
}

func BenchmarkReceiverInOrder(b *testing.B) {
	r := NewReceiver(ReceiverConfig{DPort: testPort, Group: testGroup})
	now := time.Unix(1, 0)
	payload := make([]byte, 1000)
	pk := wire.Packet{Type: wire.TypeODATA, SPort: testTSI.Port, DPort: testPort, GSI: testTSI.GSI, Payload: payload}
	buf, _ := pk.Append(nil)
	var p wire.Packet
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		pk.Seq = uint32(i)
		buf, _ = pk.Append(buf[:0])
		if err := wire.Parse(buf, &p); err != nil {
			b.Fatal(err)
		}
		r.HandlePacket(now, &p, testSrc)
		r.Deliver(func(*Event) bool { return true })
	}
}

// TestReceiverLossAllocs: data held behind holes reuses the buffers of
// delivered data, even when the ring (4096 slots of 1000 bytes) would hold
// more than half the byte budget (4 MiB): no allocation per packet in
// steady state.
func TestReceiverLossAllocs(t *testing.T) {
	r := NewReceiver(ReceiverConfig{DPort: testPort, Group: testGroup, Window: 4096, WindowBytes: 4 << 20})
	now := time.Unix(1, 0)
	payload := make([]byte, 1000)
	var seq uint32
	b := make([]byte, 0, 1500)
	var p wire.Packet
	delivered := uint32(0)
	send := func(typ wire.Type, q uint32) {
		pk := wire.Packet{Type: typ, SPort: testTSI.Port, DPort: testPort, GSI: testTSI.GSI, Seq: q, Trail: 1, Payload: payload}
		b, _ = pk.Append(b[:0])
		if err := wire.Parse(b, &p); err != nil {
			t.Fatal(err)
		}
		r.HandlePacket(now, &p, testSrc)
	}
	step := func() {
		seq++
		if seq%64 != 0 { // every 64th is lost, and repaired 32 packets later
			send(wire.TypeODATA, seq)
		}
		if q := seq - 32; q%64 == 0 && q > 0 {
			send(wire.TypeRDATA, q)
		}
		r.Deliver(func(e *Event) bool {
			if e.Kind == EventData {
				delivered++
			}
			return true
		})
	}
	// First a hole held for 3000 packets grows the ring to 4096 slots.
	for seq < 3000 {
		seq++
		if seq != 1000 {
			send(wire.TypeODATA, seq)
		}
	}
	send(wire.TypeRDATA, 1000)
	r.Deliver(func(e *Event) bool {
		if e.Kind == EventData {
			delivered++
		}
		return true
	})
	for range 10000 {
		step()
	}
	// AllocsPerRun rounds down: count the allocations of a whole turn of
	// the ring.
	turn := func() {
		for range 4096 {
			step()
		}
	}
	if n := testing.AllocsPerRun(2, turn); n != 0 {
		t.Fatalf("%v allocations in 4096 packets", n)
	}
	want := seq
	if h := seq - seq%64; seq-h < 32 {
		want = h - 1 // that hole is not repaired yet
	}
	if delivered != want {
		t.Fatalf("delivered %d, want %d", delivered, want)
	}
	checkBounds(t, r)
}
