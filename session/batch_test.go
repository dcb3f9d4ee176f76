package session

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
)

// batchMsgs splits a batched payload into its messages.
func batchMsgs(t testing.TB, b []byte) []string {
	t.Helper()
	n, err := wire.CheckBatch(b)
	if err != nil {
		t.Fatalf("batch %x: %v", b, err)
	}
	var out []string
	for range n {
		var m []byte
		m, b = wire.NextBatched(b)
		out = append(out, string(m))
	}
	return out
}

// dataOf describes the data packets: "[a b]" for a batch, "m" for a plain
// message, "f" for a fragment.
func dataOf(t testing.TB, ps []*wire.Packet) string {
	var s []string
	for _, p := range ps {
		switch {
		case p.Type != wire.TypeODATA:
		case p.Batch:
			s = append(s, fmt.Sprint(batchMsgs(t, p.Payload)))
		case p.HasFragment:
			s = append(s, fmt.Sprintf("f%d", p.Fragment.Offset))
		default:
			s = append(s, string(p.Payload))
		}
	}
	return strings.Join(s, " ")
}

// TestSenderBatchFlush: a batch goes out when the next message does not
// fit, when its delay has run out (and not before: NextDeadline says
// when), and at Close; each batch is one sequence number.
func TestSenderBatchFlush(t *testing.T) {
	h := startedTx(t, SenderConfig{Batch: BatchConfig{Delay: 10 * time.Millisecond, MaxBytes: 64}})
	for _, m := range []string{"a", "bb", "ccc"} {
		h.send([]byte(m))
	}
	if ps := h.pollAll(); len(ps) != 0 {
		t.Fatalf("sent before the delay: %s", types(ps))
	}
	if d := h.s.NextDeadline(); d != txT0.Add(10*time.Millisecond) {
		t.Fatalf("NextDeadline %v, want the batch's delay", h.rel(d))
	}
	h.advance(9 * time.Millisecond)
	h.send([]byte("dddd"))
	if ps := h.pollAll(); len(ps) != 0 {
		t.Fatalf("sent before the delay: %s", types(ps))
	}
	h.advance(time.Millisecond)
	ps := h.pollAll()
	if got := dataOf(t, ps); got != "[a bb ccc dddd]" || ps[0].Seq != 0 {
		t.Fatalf("sent %q (seq %d)", got, ps[0].Seq)
	}
	// Full: 64 bytes hold 10 frames of 6; the 11th message closes the
	// batch.
	for i := range 11 {
		h.send(fmt.Appendf(nil, "m%03d", i))
	}
	ps = h.pollAll()
	if got := dataOf(t, ps); got != "[m000 m001 m002 m003 m004 m005 m006 m007 m008 m009]" || ps[0].Seq != 1 {
		t.Fatalf("sent %q (seq %d)", got, ps[0].Seq)
	}
	// m010 (6 bytes framed) and 56 bytes (58) fill the batch exactly:
	// out at once. An empty message opens the next one, sent at Close.
	h.send(make([]byte, 56))
	h.send(nil)
	if got := dataOf(t, h.pollAll()); got != "[m010 "+string(make([]byte, 56))+"]" {
		t.Fatalf("sent %q", got)
	}
	h.s.Close(h.now)
	if got := dataOf(t, h.pollAll()); got != "[]" {
		t.Fatalf("at close: %q", got)
	}
	if st := h.s.Stats(); st.Messages != 17 || st.MessageBytes != 1+2+3+4+11*4+56 {
		t.Fatalf("stats: %d messages, %d bytes", st.Messages, st.MessageBytes)
	}
}

// TestSenderBatchOrder: messages too large for a batch go on their own,
// fragmented when needed, after the open batch and before the next one.
func TestSenderBatchOrder(t *testing.T) {
	h := startedTx(t, SenderConfig{Batch: BatchConfig{Delay: time.Second}})
	room := h.s.MaxTSDU() - wire.BatchOverhead - wire.BatchFrameLen // 1438
	big := bytes.Repeat([]byte{'B'}, room+1)
	frag := bytes.Repeat([]byte{'F'}, 2*h.s.MaxTSDU())
	most := bytes.Repeat([]byte{'M'}, room)
	for _, m := range [][]byte{[]byte("a"), big, []byte("b"), []byte("c"), frag, most, []byte("d")} {
		h.send(m)
	}
	h.s.Close(h.now)
	ps := h.pollAll()
	want := "[a] " + string(big) + " [b c] f0 f1428 f2856 [" + string(most) + "] [d]"
	if got := dataOf(t, ps); got != want {
		t.Fatalf("sent %.120q...", got)
	}
	for i, p := range ps {
		if p.Type == wire.TypeODATA && p.Seq != uint32(i) {
			t.Fatalf("packet %d has seq %d", i, p.Seq)
		}
	}
}

// TestSenderBatchEncoding: a batched ODATA (and its RDATA) is exactly
// what wire.Packet.Append makes of a Packet with Batch set.
func TestSenderBatchEncoding(t *testing.T) {
	h := startedTx(t, SenderConfig{Batch: BatchConfig{Delay: time.Second}})
	h.send([]byte("hello"))
	h.send([]byte("world!"))
	h.s.Close(h.now)
	b, ok := h.s.Poll(h.now, nil)
	if !ok {
		t.Fatal("nothing sent")
	}
	payload := wire.AppendBatched(wire.AppendBatched(nil, []byte("hello")), []byte("world!"))
	want, err := (&wire.Packet{SPort: txTSI.Port, DPort: txDPort, Type: wire.TypeODATA, GSI: txTSI.GSI,
		Payload: payload, Batch: true}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("ODATA\n%x\nwant\n%x", b, want)
	}
	h.pollAll()
	h.handle(txNAK(0))
	ps := h.pollAll()
	if types(ps) != "NCF RDATA" || !ps[1].Batch || !bytes.Equal(ps[1].Payload, payload) {
		t.Fatalf("repair: %s %+v", types(ps), ps[len(ps)-1])
	}
}

// TestSenderBatchQueue: Writable and Send agree while batches fill
// MaxQueued: a message that fits the open batch is taken, one that would
// need a new batch is not, and nothing is queued when Send refuses.
func TestSenderBatchQueue(t *testing.T) {
	h := startedTx(t, SenderConfig{MaxQueued: 2, MaxMessage: 2000, Batch: BatchConfig{Delay: time.Second, MaxBytes: 64}})
	n := 0
	for h.s.Writable(4) {
		if err := h.s.Send(h.now, []byte("msg!")); err != nil {
			t.Fatalf("message %d: Writable but %v", n, err)
		}
		n++
		if n > 100 {
			t.Fatal("never full")
		}
	}
	// Nothing was polled: 2 batches of 10 (MaxQueued, the open one
	// counted).
	if n != 20 {
		t.Fatalf("took %d messages, want 20", n)
	}
	if err := h.s.Send(h.now, []byte("msg!")); err != ErrWouldBlock {
		t.Fatalf("Send after !Writable: %v", err)
	}
	if h.s.Writable(1000) || h.s.Send(h.now, make([]byte, 1000)) != ErrWouldBlock {
		t.Fatal("a large message was taken with the queue full")
	}
	h.s.Close(h.now)
	h.advance(time.Minute)
	var got int
	for _, p := range h.pollAll() {
		if p.Type == wire.TypeODATA {
			got += len(batchMsgs(t, p.Payload))
		}
	}
	if got != n {
		t.Fatalf("sent %d messages, accepted %d", got, n)
	}
}

func TestSenderBatchConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		b    BatchConfig
		fec  FECConfig
		want string
	}{
		{BatchConfig{Delay: -1}, FECConfig{}, "negative"},
		{BatchConfig{MaxBytes: 100}, FECConfig{}, "Delay is 0"},
		{BatchConfig{Delay: 1, MaxBytes: 63}, FECConfig{}, "outside 64..1440"},
		{BatchConfig{Delay: 1, MaxBytes: 1441}, FECConfig{}, "outside 64..1440"},
		{BatchConfig{Delay: 1}, FECConfig{GroupSize: 16, Proactive: 1}, "cannot be combined"},
	} {
		_, err := NewSender(txConfig(SenderConfig{Batch: tc.b, FEC: tc.fec}), txT0)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.b, err, tc.want)
		}
	}
}

// TestReceiverBatch: a receiver with BatchDPort takes a batching source's
// packets, hands each batch on as one event with its message count, NAKs
// with the batch dport as sport, and drops what a plain receiver would.
func TestReceiverBatch(t *testing.T) {
	const bport = 40268
	x := newRxTest(t, ReceiverConfig{BatchDPort: bport})
	send := func(p wire.Packet) {
		t.Helper()
		p.SPort, p.GSI = testTSI.Port, testTSI.GSI
		if p.DPort == 0 {
			p.DPort = bport
		}
		b, err := p.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		var q wire.Packet
		if err := wire.Parse(b, &q); err != nil {
			t.Fatalf("parse: %v", err)
		}
		x.r.HandlePacket(x.now, &q, testSrc)
	}
	var got []string
	deliver := func() {
		x.r.Deliver(func(e *Event) bool {
			if e.Kind == EventData && e.Batch > 0 {
				got = append(got, fmt.Sprintf("%d:%v", e.First, batchMsgs(t, e.Data)))
				if n, _ := wire.CheckBatch(e.Data); n != e.Batch {
					t.Errorf("Batch %d, %d messages", e.Batch, n)
				}
			} else {
				got = append(got, formatEvent(e))
			}
			return true
		})
	}
	batch := func(ms ...string) []byte {
		var b []byte
		for _, m := range ms {
			b = wire.AppendBatched(b, []byte(m))
		}
		return b
	}
	send(wire.Packet{Type: wire.TypeSPM, Seq: 1, Trail: 0, Lead: 0xffffffff, PathNLA: testSrc})
	send(wire.Packet{Type: wire.TypeODATA, Seq: 0, Payload: batch("a", "b"), Batch: true})
	send(wire.Packet{Type: wire.TypeODATA, Seq: 1, Payload: []byte("plain")})
	// The same session on the plain dport: not its port, dropped.
	send(wire.Packet{Type: wire.TypeODATA, Seq: 2, DPort: testPort, Payload: batch("x"), Batch: true})
	send(wire.Packet{Type: wire.TypeODATA, Seq: 3, Payload: batch("c", "", "d"), Batch: true})
	deliver()
	if s := strings.Join(got, " | "); s != `source-new | 0:[a b] | data 1-1 "plain"` {
		t.Fatalf("events: %s", s)
	}
	// The hole at 2 is NAKed with sport = the session's dport.
	x.now = x.now.Add(time.Second)
	x.r.Advance(x.now)
	pkt, dst, ok := x.r.Poll(nil)
	var nak wire.Packet
	if !ok || wire.Parse(pkt, &nak) != nil || nak.Type != wire.TypeNAK || nak.SPort != bport || nak.DPort != testTSI.Port ||
		dst.Port() != testPort || nak.Seq != 2 {
		t.Fatalf("NAK %+v to %v (%v)", nak, dst, ok)
	}
	send(wire.Packet{Type: wire.TypeRDATA, Seq: 2, Payload: batch("x", "y"), Batch: true})
	deliver()
	if s := strings.Join(got, " | "); !strings.HasSuffix(s, `"plain" | 2:[x y] | 3:[c  d]`) {
		t.Fatalf("events: %s", s)
	}
	st := x.r.Stats()
	if st.Messages != 8 || st.Bytes != 1+1+5+1+1+1+0+1 || st.Dropped != 1 {
		t.Fatalf("stats %+v", st)
	}
	if ss := x.r.Sources(nil); len(ss) != 1 || ss[0].Messages != st.Messages || ss[0].Bytes != st.Bytes || ss[0].Repairs != 1 {
		t.Fatalf("source stats %+v", ss)
	}

	// A hostile batch that gets past the codec (a caller that builds
	// Packets itself) is counted and dropped, never delivered.
	bad := wire.Packet{Type: wire.TypeODATA, SPort: testTSI.Port, DPort: bport, GSI: testTSI.GSI, Seq: 4,
		Payload: []byte{0, 9, 'a'}, Batch: true}
	x.r.HandlePacket(x.now, &bad, testSrc)
	deliver()
	if st := x.r.Stats(); st.BatchMalformed != 1 || st.Messages != 8 {
		t.Fatalf("hostile batch: %+v", st)
	}

	// A plain receiver drops the whole session.
	plain := NewReceiver(ReceiverConfig{DPort: testPort, Group: testGroup})
	for _, p := range []wire.Packet{
		{Type: wire.TypeSPM, Seq: 1, Lead: 0xffffffff, PathNLA: testSrc},
		{Type: wire.TypeODATA, Seq: 0, Payload: batch("a", "b")},
	} {
		p.SPort, p.DPort, p.GSI = testTSI.Port, bport, testTSI.GSI
		if p.Type == wire.TypeODATA {
			p.Batch = true
		}
		plain.HandlePacket(x.now, &p, testSrc)
	}
	n := 0
	plain.Deliver(func(*Event) bool { n++; return true })
	if st := plain.Stats(); n != 0 || st.Dropped != 2 {
		t.Fatalf("plain receiver: %d events, %+v", n, st)
	}
}

// BenchmarkBatch64 sends 64-byte messages through a batching sender core
// and a receiver core, through the codec, and splits the batches as
// mcast.Receiver.Read does: the protocol's CPU cost per message, without
// I/O or goroutines. One op is one message.
func BenchmarkBatch64(b *testing.B) {
	s, err := NewSender(txConfig(SenderConfig{Batch: BatchConfig{Delay: time.Millisecond}, WindowPackets: 1024}), txT0)
	if err != nil {
		b.Fatal(err)
	}
	r := NewReceiver(ReceiverConfig{DPort: txDPort, Group: txGroup, JoinBackfill: -1})
	msg := make([]byte, 64)
	buf := make([]byte, 0, 1500)
	var p wire.Packet
	from := netip.MustParseAddr("192.0.2.1")
	var got int
	out := make([]byte, 0, 64)
	split := func(e *Event) bool {
		if e.Kind != EventData {
			return true
		}
		rest := e.Data
		for range max(e.Batch, 1) {
			var m []byte
			m, rest = wire.NextBatched(rest)
			out = append(out[:0], m...)
			got++
		}
		return true
	}
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	now := txT0
	for b.Loop() {
		if err := s.Send(now, msg); err != nil {
			b.Fatal(err)
		}
		for {
			pkt, ok := s.Poll(now, buf[:0])
			if !ok {
				break
			}
			if err := wire.Parse(pkt, &p); err != nil {
				b.Fatal(err)
			}
			r.HandlePacket(now, &p, from)
			r.Deliver(split)
		}
	}
	if got < b.N/2 {
		b.Fatalf("%d of %d messages delivered", got, b.N)
	}
}

// TestSenderBatchNoLateSYN: with SYN on, a batching session's batches carry
// no OPT_SYN, and neither does a large message sent once everything before
// it has gone out: receivers take OPT_SYN past the trail for a restart.
func TestSenderBatchNoLateSYN(t *testing.T) {
	h := startedTx(t, SenderConfig{SYN: true, Batch: BatchConfig{Delay: time.Millisecond}})
	h.send([]byte("a"))
	h.now = h.now.Add(2 * time.Millisecond)
	ps := h.pollAll()
	h.send(bytes.Repeat([]byte{'B'}, 3000)) // fragmented, nothing unsent before it
	ps = append(ps, h.pollAll()...)
	n := 0
	for _, p := range ps {
		if p.Type != wire.TypeODATA {
			continue
		}
		n++
		if p.SYN {
			t.Errorf("ODATA seq %d carries OPT_SYN", p.Seq)
		}
	}
	if n != 4 {
		t.Fatalf("%d ODATA, want 1 batch and 3 fragments", n)
	}
}
