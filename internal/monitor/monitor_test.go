package monitor

import (
	"net/netip"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
)

const port = 7500

var (
	gsiA = wire.GSI{1, 2, 3, 4, 5, 6}
	gsiB = wire.GSI{9, 9, 9, 9, 9, 9}
	addA = netip.MustParseAddr("10.0.0.1")
	addB = netip.MustParseAddr("10.0.0.2")
	t0   = time.Unix(1_700_000_000, 0)
)

// enc encodes p with the wire codec, as a source would send it.
func enc(t testing.TB, p wire.Packet) []byte {
	t.Helper()
	b, err := p.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func odata(gsi wire.GSI, sport uint16, seq, trail uint32, payload string) wire.Packet {
	return wire.Packet{Type: wire.TypeODATA, SPort: sport, DPort: port, GSI: gsi, Seq: seq, Trail: trail, Payload: []byte(payload)}
}

// TestMonitor feeds the encoded packets of two sources, with gaps, a
// late packet, repairs, SPMs, NCFs and SPMRs, and checks every count,
// the window, the rates and the loss estimate.
func TestMonitor(t *testing.T) {
	m := New(Config{DPort: port})
	feed := func(at time.Duration, p wire.Packet, from netip.Addr) {
		m.HandleDatagram(t0.Add(at), enc(t, p), from)
	}
	// Source A: ODATA 0..99 but 10, 11 and 50 missing; 50 comes late;
	// 10 and 11 come as RDATA after an NCF.
	for q := uint32(0); q < 100; q++ {
		if q == 10 || q == 11 || q == 50 {
			continue
		}
		feed(time.Duration(q)*10*time.Millisecond, odata(gsiA, 1000, q, 0, "0123456789"), addA)
		if q == 60 {
			feed(605*time.Millisecond, odata(gsiA, 1000, 50, 0, "0123456789"), addA)
		}
	}
	ncf := wire.Packet{Type: wire.TypeNCF, SPort: 1000, DPort: port, GSI: gsiA, Seq: 10, SourceNLA: addA, GroupNLA: netip.MustParseAddr("239.192.0.1")}
	ncf.NAKList[0], ncf.NAKListLen = 11, 1
	feed(200*time.Millisecond, ncf, addA)
	for _, q := range []uint32{10, 11} {
		r := odata(gsiA, 1000, q, 0, "0123456789")
		r.Type = wire.TypeRDATA
		feed(210*time.Millisecond, r, addA)
	}
	feed(990*time.Millisecond, wire.Packet{Type: wire.TypeSPM, SPort: 1000, DPort: port, GSI: gsiA, Seq: 7, Trail: 5, Lead: 99,
		PathNLA: netip.MustParseAddr("192.0.2.1")}, addA)
	// A receiver's SPMR to the group, for A (upstream: ports swapped).
	feed(995*time.Millisecond, wire.Packet{Type: wire.TypeSPMR, SPort: port, DPort: 1000, GSI: gsiA}, addB)
	// Source B: one message in 3 fragments, then FIN.
	for i, off := range []uint32{0, 4, 8} {
		p := odata(gsiB, 2000, uint32(500+i), 500, "abcd")
		p.HasFragment, p.Fragment = true, wire.Fragment{First: 500, Offset: off, Length: 12}
		feed(500*time.Millisecond, p, addB)
	}
	feed(600*time.Millisecond, wire.Packet{Type: wire.TypeSPM, SPort: 2000, DPort: port, GSI: gsiB, Seq: 1, Trail: 500, Lead: 502, FIN: true, PathNLA: addB}, addB)
	// Noise: another port, a malformed datagram.
	feed(0, odata(gsiA, 1000, 1, 0, "x"), addA)
	m.HandleDatagram(t0, []byte{1, 2, 3}, addA)
	other := odata(gsiA, 1000, 1, 0, "x")
	other.DPort = 7600
	feed(0, other, addA)

	reps := m.Snapshot(t0.Add(time.Second), nil)
	if len(reps) != 2 {
		t.Fatalf("%d sources", len(reps))
	}
	a, b := reps[0], reps[1]
	if a.TSI != (wire.TSI{GSI: gsiA, Port: 1000}) || b.TSI != (wire.TSI{GSI: gsiB, Port: 2000}) {
		t.Fatalf("order %v, %v", a.TSI, b.TSI)
	}
	// 97 in order, 50 late, and the duplicate of 1 (on our port), which is
	// late too as far as a monitor can tell.
	wantA := Counts{ODATA: 99, RDATA: 2, SPM: 1, NCF: 1, SPMR: 1, Messages: 99, Bytes: 98*10 + 1, Sequenced: 99, Gaps: 3, Late: 2}
	if a.Counts != wantA {
		t.Errorf("A counts\n%+v; want\n%+v", a.Counts, wantA)
	}
	if a.Addr != netip.MustParseAddr("192.0.2.1") || a.Trail != 5 || a.Lead != 99 || !a.HaveWindow || a.FIN {
		t.Errorf("A addr %v window %d..%d fin %v", a.Addr, a.Trail, a.Lead, a.FIN)
	}
	if a.Interval != time.Second || a.MsgsPerSec != 99 || a.BytesPerSec != 981 {
		t.Errorf("A rates over %v: %v msgs/s %v B/s", a.Interval, a.MsgsPerSec, a.BytesPerSec)
	}
	if got := a.LossRatio(); got < 0.0099 || got > 0.0101 { // 1 of 100
		t.Errorf("A loss %v", got)
	}
	wantB := Counts{ODATA: 3, SPM: 1, Messages: 1, Bytes: 12, Sequenced: 3}
	if b.Counts != wantB || !b.FIN || b.Trail != 500 || b.Lead != 502 || b.Addr != addB {
		t.Errorf("B %+v fin %v window %d..%d addr %v", b.Counts, b.FIN, b.Trail, b.Lead, b.Addr)
	}
	if b.Interval != 500*time.Millisecond || b.MsgsPerSec != 2 {
		t.Errorf("B: %v msgs/s over %v", b.MsgsPerSec, b.Interval)
	}
	if st := m.Stats(); st.Packets != 99+1+2+1+1+3+1+1+1 || st.Malformed != 1 || st.Other != 1 {
		t.Errorf("stats %+v", st)
	}

	// The next interval: A sends 10 more, B nothing; rates are of the
	// interval only.
	for q := uint32(100); q < 110; q++ {
		feed(1500*time.Millisecond, odata(gsiA, 1000, q, 10, "0123456789"), addA)
	}
	reps = m.Snapshot(t0.Add(2*time.Second), reps[:0])
	if a := reps[0]; a.Delta.ODATA != 10 || a.MsgsPerSec != 10 || a.Lead != 109 || a.Trail != 10 || a.LossRatio() != 0 {
		t.Errorf("second interval A: %+v, %v msgs/s, window %d..%d", a.Delta, a.MsgsPerSec, a.Trail, a.Lead)
	}
	if b := reps[1]; b.Delta != (Counts{}) || b.MsgsPerSec != 0 {
		t.Errorf("second interval B: %+v", b.Delta)
	}
	// A minute of silence: both expire.
	if reps = m.Snapshot(t0.Add(2*time.Minute), reps[:0]); len(reps) != 0 || m.Stats().Expired != 2 {
		t.Errorf("after expiry: %d sources, %d expired", len(reps), m.Stats().Expired)
	}
}

// TestMonitorBounded: a flood of sources keeps MaxSources, evicting the
// least recently heard.
func TestMonitorBounded(t *testing.T) {
	m := New(Config{MaxSources: 4})
	for i := range 100 {
		p := odata(gsiA, uint16(i+1), 0, 0, "x")
		m.HandleDatagram(t0.Add(time.Duration(i)*time.Millisecond), enc(t, p), addA)
	}
	reps := m.Snapshot(t0.Add(time.Second), nil)
	if len(reps) != 4 || m.Stats().Evicted != 96 || reps[0].TSI.Port != 97 || reps[3].TSI.Port != 100 {
		t.Errorf("%d sources (%v..), %d evicted", len(reps), reps[0].TSI, m.Stats().Evicted)
	}
	// A big jump in sequence numbers is a restart, not a gap.
	m.HandleDatagram(t0, enc(t, odata(gsiA, 100, 1<<30, 0, "x")), addA)
	if r := m.Snapshot(t0.Add(2*time.Second), nil); r[3].Gaps != 0 {
		t.Errorf("a jump counted as %d gaps", r[3].Gaps)
	}
}

// FuzzMonitor: any datagrams are counted, never panic, and the sources
// stay bounded.
func FuzzMonitor(f *testing.F) {
	f.Add(enc(f, odata(gsiA, 1000, 5, 0, "hello")), uint16(0))
	f.Add(enc(f, wire.Packet{Type: wire.TypeSPM, SPort: 1000, DPort: port, GSI: gsiA, Seq: 1, Trail: 0, Lead: 9, PathNLA: addA}), uint16(1))
	f.Add(enc(f, wire.Packet{Type: wire.TypeNAK, SPort: port, DPort: 1000, GSI: gsiA, Seq: 3, SourceNLA: addA, GroupNLA: netip.MustParseAddr("239.192.0.1")}), uint16(2))
	f.Add([]byte{0, 0, 0, 0}, uint16(3))
	f.Fuzz(func(t *testing.T, b []byte, jitter uint16) {
		m := New(Config{MaxSources: 2})
		for i := range 3 {
			// The same datagram from three ports: three sources at most.
			c := append([]byte(nil), b...)
			if len(c) >= 2 {
				c[0] ^= byte(i)
			}
			m.HandleDatagram(t0.Add(time.Duration(jitter)*time.Millisecond), c, addA)
		}
		reps := m.Snapshot(t0.Add(time.Hour/2), nil)
		if len(reps) > 2 || m.Stats().Packets != 3 {
			t.Fatalf("%d sources, %+v", len(reps), m.Stats())
		}
		for _, r := range reps {
			if r.LossRatio() < 0 || r.LossRatio() > 1 {
				t.Fatalf("loss ratio %v", r.LossRatio())
			}
		}
	})
}

// TestMonitorBatch: a batching source sends its session on the batch
// port; its batched ODATA count one message per frame and the message
// bytes without the framing, and its SPM and NCF count too. Without
// BatchDPort the same packets are another port's.
func TestMonitorBatch(t *testing.T) {
	const batchPort = port ^ 0x8000 // session.BatchDPort(port)
	var tsdu []byte
	for _, msg := range []string{"a", "bcd", "", "efgh"} {
		tsdu = wire.AppendBatched(tsdu, []byte(msg))
	}
	pkts := []wire.Packet{
		{Type: wire.TypeODATA, SPort: 1000, DPort: batchPort, GSI: gsiA, Seq: 0, Batch: true, Payload: tsdu},
		{Type: wire.TypeODATA, SPort: 1000, DPort: batchPort, GSI: gsiA, Seq: 1, Batch: true, Payload: wire.AppendBatched(nil, []byte("xy"))},
		{Type: wire.TypeODATA, SPort: 1000, DPort: batchPort, GSI: gsiA, Seq: 2, Payload: []byte("large")}, // a message sent on its own
		{Type: wire.TypeSPM, SPort: 1000, DPort: batchPort, GSI: gsiA, Seq: 1, Lead: 2, PathNLA: addA},
		{Type: wire.TypeNCF, SPort: 1000, DPort: batchPort, GSI: gsiA, Seq: 1, SourceNLA: addA, GroupNLA: netip.MustParseAddr("239.192.0.1")},
	}
	m := New(Config{DPort: port, BatchDPort: batchPort})
	plain := New(Config{DPort: port})
	for _, p := range pkts {
		m.HandleDatagram(t0, enc(t, p), addA)
		plain.HandleDatagram(t0, enc(t, p), addA)
	}
	reps := m.Snapshot(t0.Add(time.Second), nil)
	if len(reps) != 1 {
		t.Fatalf("%d sources", len(reps))
	}
	want := Counts{ODATA: 3, SPM: 1, NCF: 1, Messages: 4 + 1 + 1, Bytes: 8 + 2 + 5, Sequenced: 3}
	if reps[0].Counts != want || reps[0].MsgsPerSec != 6 {
		t.Errorf("counts\n%+v; want\n%+v (%v msgs/s)", reps[0].Counts, want, reps[0].MsgsPerSec)
	}
	if st := m.Stats(); st.Other != 0 {
		t.Errorf("stats %+v", st)
	}
	if st := plain.Stats(); st.Other != uint64(len(pkts)) || len(plain.Snapshot(t0, nil)) != 0 {
		t.Errorf("without BatchDPort: stats %+v", st)
	}
}
