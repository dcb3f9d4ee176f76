package session

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/relmcast/relmcast/fec"
	"github.com/relmcast/relmcast/internal/wire"
)

// desc describes a data packet for the FEC tests: "O3" is ODATA 3, "P1"
// parity index 1 (RDATA with OPT_PARITY, sqn tg|1), "R3" RDATA 3, "pad5"
// a padding TPDU, "S"/"SF" an SPM (with FIN), "N" an NCF ("NP" parity).
func desc(ps []*wire.Packet) string {
	var s []string
	for _, p := range ps {
		switch {
		case p.Type == wire.TypeSPM && p.FIN:
			s = append(s, "SF")
		case p.Type == wire.TypeSPM:
			s = append(s, "S")
		case p.Type == wire.TypeNCF && p.Options&wire.OptParity != 0:
			s = append(s, "NP"+itoa(p.Seq))
		case p.Type == wire.TypeNCF:
			s = append(s, "N")
		case p.Options&wire.OptParity != 0:
			s = append(s, "P"+itoa(p.Seq))
		case len(p.Payload) == 0 && p.HasFragment && p.Fragment.Length == 1:
			s = append(s, "pad"+itoa(p.Seq))
		case p.Type == wire.TypeODATA:
			s = append(s, "O"+itoa(p.Seq))
		default:
			s = append(s, "R"+itoa(p.Seq))
		}
	}
	return strings.Join(s, " ")
}

func itoa(q uint32) string {
	if q == 0 {
		return "0"
	}
	var b []byte
	for ; q > 0; q /= 10 {
		b = append([]byte{byte('0' + q%10)}, b...)
	}
	return string(b)
}

func txParityNAK(seqs ...uint32) wire.Packet {
	p := txNAK(seqs...)
	p.Options = wire.OptParity
	return p
}

// fecDecode feeds the originals of ps except those in drop, and all parity
// packets, to a Decoder, and returns what it rebuilt, by sqn.
func fecDecode(t *testing.T, k int, ps []*wire.Packet, drop map[uint32]bool) map[uint32]fec.Recovered {
	t.Helper()
	code, err := fec.NewCode(k)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := fec.NewDecoder(code, fec.DecoderConfig{MaxTSDU: 1500})
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint32]fec.Recovered{}
	var rec []fec.Recovered
	for _, p := range ps {
		if p.Type != wire.TypeODATA && p.Type != wire.TypeRDATA {
			continue
		}
		if p.Options&wire.OptParity != 0 {
			rec, err = dec.AddParity(rec[:0], fec.Parity{Seq: p.Seq, Payload: p.Payload,
				VarPktLen: p.Options&wire.OptVarPktLen != 0, HasFragment: p.HasFragment, Fragment: fec.Fragment(p.Fragment)})
		} else if !drop[p.Seq] {
			rec, err = dec.AddOriginal(rec[:0], p.Seq, fec.Original{TSDU: p.Payload, HasFragment: p.HasFragment, Fragment: fec.Fragment(p.Fragment)})
		}
		if err != nil {
			t.Fatalf("decoder: %v", err)
		}
		for _, r := range rec {
			r.TSDU = bytes.Clone(r.TSDU)
			got[r.Seq] = r
		}
	}
	return got
}

func TestSenderFECConfig(t *testing.T) {
	for _, c := range []FECConfig{
		{GroupSize: 3, Proactive: 1},
		{GroupSize: 256, Proactive: 1},
		{GroupSize: 4},
		{GroupSize: 4, Proactive: 5},
		{Proactive: 1},
		{OnDemand: true},
	} {
		if _, err := NewSender(txConfig(SenderConfig{FEC: c}), txT0); err == nil {
			t.Errorf("FEC %+v accepted", c)
		}
	}
	if _, err := NewSender(txConfig(SenderConfig{FirstSeq: 6, FEC: FECConfig{GroupSize: 4, OnDemand: true}}), txT0); err == nil {
		t.Error("FirstSeq 6 with k=4 accepted")
	}
	if _, err := NewSender(txConfig(SenderConfig{WindowPackets: 8, FEC: FECConfig{GroupSize: 16, OnDemand: true}}), txT0); err == nil {
		t.Error("group larger than the window accepted")
	}
	s, err := NewSender(txConfig(SenderConfig{FirstSeq: 8, FEC: FECConfig{GroupSize: 4, Proactive: 4, OnDemand: true}}), txT0)
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxTSDU() != 1472-24-22 || s.MaxFragment() != s.MaxTSDU()-20 {
		t.Errorf("MaxTSDU %d, MaxFragment %d with FEC", s.MaxTSDU(), s.MaxFragment())
	}
}

func TestSenderFECSPM(t *testing.T) {
	h := newTxHarness(t, SenderConfig{FEC: FECConfig{GroupSize: 16, Proactive: 2}})
	for _, p := range h.pollAll() {
		if !p.HasParityPrm || p.ParityPrm != (wire.ParityPrm{Proactive: true, GroupSize: 16}) {
			t.Fatalf("SPM without OPT_PARITY_PRM: %+v", p)
		}
	}
	h = newTxHarness(t, SenderConfig{FEC: FECConfig{GroupSize: 8, OnDemand: true}})
	if p := h.poll(); !p.HasParityPrm || p.ParityPrm != (wire.ParityPrm{OnDemand: true, GroupSize: 8}) {
		t.Fatalf("SPM: %+v", p)
	}
	h = newTxHarness(t, SenderConfig{})
	if p := h.poll(); p.HasParityPrm {
		t.Fatalf("SPM with FEC off: %+v", p)
	}
}

// TestSenderFECProactive: after the k-th ODATA of each group, h parity
// packets, before the next group's data; any h losses are rebuilt.
func TestSenderFECProactive(t *testing.T) {
	h := startedTx(t, SenderConfig{FEC: FECConfig{GroupSize: 4, Proactive: 2}})
	msgs := [][]byte{txMsg(10, 1), txMsg(1426, 2), nil, txMsg(7, 4), txMsg(3000, 3), txMsg(1426, 5)}
	for _, m := range msgs {
		h.send(m)
	}
	ps := h.pollAll()
	if got := desc(ps); got != "O0 O1 O2 O3 P0 P1 O4 O5 O6 O7 P4 P5" {
		t.Fatalf("sent %s", got)
	}
	for _, p := range ps {
		if p.Options&wire.OptParity != 0 && (p.Type != wire.TypeRDATA || p.Options&wire.OptVarPktLen == 0) {
			t.Errorf("parity %+v", p)
		}
	}
	if !ps[10].HasFragment || ps[4].HasFragment {
		t.Errorf("fragment option on parity: group 0 %v, group 1 %v", ps[4].HasFragment, ps[10].HasFragment)
	}
	orig := map[uint32]*wire.Packet{}
	for _, p := range ps {
		if p.Options&wire.OptParity == 0 {
			orig[p.Seq] = p
		}
	}
	drop := map[uint32]bool{1: true, 2: true, 4: true, 7: true}
	got := fecDecode(t, 4, ps, drop)
	if len(got) != 4 {
		t.Fatalf("rebuilt %d of 4", len(got))
	}
	for q := range drop {
		r, o := got[q], orig[q]
		if !bytes.Equal(r.TSDU, o.Payload) || r.HasFragment != o.HasFragment || r.Fragment != fec.Fragment(o.Fragment) {
			t.Errorf("sqn %d rebuilt wrong: %+v", q, r)
		}
	}
	st := h.s.Stats()
	if st.ParityProactive != 4 || st.RDATA != 4 || st.ODATA != 8 || st.Messages != 6 {
		t.Errorf("stats %+v", st)
	}
}

// TestSenderFECRateLimited: parity is rate limited like RDATA, and holds
// back new data until sent.
func TestSenderFECRateLimited(t *testing.T) {
	h := startedTx(t, SenderConfig{Rate: 150000, Burst: 3000, FEC: FECConfig{GroupSize: 2, Proactive: 1}})
	for i := range 4 {
		h.send(txMsg(1000, byte(i)))
	}
	var got []*wire.Packet
	for range 100 {
		got = append(got, h.pollAll()...)
		h.now = h.s.NextDeadline()
		if len(got) >= 6 {
			break
		}
	}
	if d := desc(got); d != "O0 O1 P0 O2 O3 P2" {
		t.Fatalf("sent %s", d)
	}
	if h.now.Sub(txT0) < 20*time.Millisecond {
		t.Errorf("6 packets of ~1050 bytes at 150 kB/s took only %v", h.now.Sub(txT0))
	}
}

// TestSenderFECOnDemand: parity NAKs get an NCF with OPT_PARITY and n fresh
// parity packets; concurrent requests are merged.
func TestSenderFECOnDemand(t *testing.T) {
	h := startedTx(t, SenderConfig{FEC: FECConfig{GroupSize: 4, Proactive: 1, OnDemand: true}})
	for i := range 8 {
		h.send(txMsg(100+i, byte(i)))
	}
	all := h.pollAll()
	if got := desc(all); got != "O0 O1 O2 O3 P0 O4 O5 O6 O7 P4" {
		t.Fatalf("sent %s", got)
	}
	h.advance(time.Second) // the elimination interval of the pro-active parity is over
	h.handle(txParityNAK(4|1, 0|0))
	h.handle(txParityNAK(4 | 2)) // another receiver, before the parity left: 1 more
	h.handle(txParityNAK(4 | 1)) // covered
	ps := h.pollAll()
	if got := desc(ps); got != "NP5 NP6 NP5 S P5 P6 P1 P7" { // S: the ambient SPM
		t.Fatalf("answer: %s", got)
	}
	all = append(all, ps...)
	h.advance(5 * time.Millisecond)
	h.handle(txParityNAK(4 | 3)) // within NAKElim of the last parity: 4-3 = 1 more
	if got := desc(h.pollAll()); got != "NP7 P4" {
		t.Fatalf("answer within NAKElim: %s (index 4 mod 4 = 0 again)", got)
	}
	h.advance(time.Second)
	h.handle(txParityNAK(0 | 1))
	ps = h.pollAll()
	if got := desc(ps); got != "NP1 S P2 P3" {
		t.Fatalf("late answer: %s", got)
	}
	all = append(all, ps...)
	// Group 0 lost 3 originals, rebuilt from parity 0..2; group 1 all
	// four, from parity 0..3.
	got := fecDecode(t, 4, all, map[uint32]bool{0: true, 1: true, 3: true, 4: true, 5: true, 6: true, 7: true})
	if len(got) != 7 {
		t.Fatalf("rebuilt %d of 7", len(got))
	}
	for q, r := range got {
		if !bytes.Equal(r.TSDU, txMsg(100+int(q), byte(q))) {
			t.Errorf("sqn %d rebuilt wrong", q)
		}
	}
	st := h.s.Stats()
	if st.ParityNAKs != 5 || st.ParityEliminated != 1 || st.ParityOnDemand != 7 || st.ParityProactive != 2 || st.NAKs != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestSenderFECOnDemandOff: parity NAKs without on-demand parity are
// counted and ignored (no NCF), as OpenPGM does; a group no longer whole
// gets an NCF and nothing else.
func TestSenderFECParityNAKIgnored(t *testing.T) {
	h := startedTx(t, SenderConfig{FEC: FECConfig{GroupSize: 4, Proactive: 1}})
	h.send(txMsg(10, 0))
	h.pollAll()
	h.handle(txParityNAK(0))
	if got := desc(h.pollAll()); got != "" {
		t.Fatalf("answer without on-demand: %s", got)
	}
	h = startedTx(t, SenderConfig{WindowPackets: 6, FEC: FECConfig{GroupSize: 4, OnDemand: true}})
	for i := range 8 {
		h.send(txMsg(10, byte(i)))
	}
	h.pollAll()
	h.handle(txParityNAK(0, 4|1, 8))
	if got := desc(h.pollAll()); got != "NP0 P4 P5" {
		t.Fatalf("answer for evicted, whole and unsent groups: %s", got)
	}
	if st := h.s.Stats(); st.ParityNAKsIgnored != 2 || st.ParityOnDemand != 2 {
		t.Errorf("stats %+v", st)
	}
	h = startedTx(t, SenderConfig{})
	h.send(txMsg(10, 0))
	h.pollAll()
	h.handle(txParityNAK(0))
	if got := desc(h.pollAll()); got != "" || h.s.Stats().ParityNAKsIgnored != 1 {
		t.Fatalf("answer without FEC: %s", got)
	}
}

// TestSenderFECPadding: Close completes the last group with padding TPDUs,
// whose parity goes out before the FIN SPMs.
func TestSenderFECPadding(t *testing.T) {
	h := startedTx(t, SenderConfig{FEC: FECConfig{GroupSize: 4, Proactive: 1}})
	for i := range 5 {
		h.send(txMsg(50, byte(i)))
	}
	h.s.Close(h.now)
	ps := h.pollAll()
	if got := desc(ps); got != "O0 O1 O2 O3 P0 O4 pad5 pad6 pad7 P4 SF SF SF" {
		t.Fatalf("close: %s", got)
	}
	for _, p := range ps {
		if p.Type == wire.TypeODATA && len(p.Payload) == 0 && p.Fragment.First != p.Seq {
			t.Errorf("padding %+v", p)
		}
	}
	// A lost padding TPDU is rebuilt, recognisably.
	got := fecDecode(t, 4, ps, map[uint32]bool{6: true})
	if r := got[6]; len(r.TSDU) != 0 || !r.HasFragment || r.Fragment != (fec.Fragment{First: 6, Length: 1}) {
		t.Fatalf("rebuilt padding: %+v", got)
	}
	st := h.s.Stats()
	if st.Messages != 5 || st.Padding != 3 || st.ODATA != 8 || !h.s.Done() {
		t.Errorf("stats %+v", st)
	}
	// A complete last group needs no padding.
	h = startedTx(t, SenderConfig{FEC: FECConfig{GroupSize: 2, Proactive: 1}})
	h.send(txMsg(50, 0))
	h.send(txMsg(50, 1))
	h.s.Close(h.now)
	if got := desc(h.pollAll()); got != "O0 O1 P0 SF SF SF" {
		t.Fatalf("close: %s", got)
	}
}

func TestSenderFECAllocs(t *testing.T) {
	h := startedTx(t, SenderConfig{WindowPackets: 64, NAKElim: -1, WindowTime: time.Hour,
		FEC: FECConfig{GroupSize: 16, Proactive: 2, OnDemand: true}})
	msg := make([]byte, 1000)
	buf := make([]byte, 0, 1500)
	step := func() {
		h.now = h.now.Add(time.Microsecond)
		if err := h.s.Send(h.now, msg); err != nil {
			t.Fatal(err)
		}
		for {
			if _, ok := h.s.Poll(h.now, buf); !ok {
				break
			}
		}
	}
	for range 1000 {
		step()
	}
	if allocs := testing.AllocsPerRun(1000, step); allocs != 0 {
		t.Errorf("Send+Poll with pro-active parity: %v allocs", allocs)
	}
	var nak wire.Packet
	b, _ := (&wire.Packet{
		SPort: txDPort, DPort: txTSI.Port, Type: wire.TypeNAK, Options: wire.OptParity, GSI: txTSI.GSI,
		SourceNLA: txNLA, GroupNLA: txGroup,
	}).Append(nil)
	if err := wire.Parse(b, &nak); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		h.now = h.now.Add(time.Microsecond)
		trail, _ := h.s.Window()
		nak.Seq = (trail+16)&^15 | 2
		h.s.HandlePacket(h.now, &nak, txPeer)
		for range 4 { // NCF + 3 parity
			if _, ok := h.s.Poll(h.now, buf); !ok {
				t.Fatal("no NCF/parity")
			}
		}
	})
	if allocs != 0 {
		t.Errorf("HandlePacket(parity NAK)+Poll: %v allocs", allocs)
	}
}
