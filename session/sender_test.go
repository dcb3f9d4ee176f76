package session

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
)

var (
	txGroup = netip.MustParseAddr("239.192.0.1")
	txNLA   = netip.MustParseAddr("192.0.2.1")
	txTSI   = wire.TSI{GSI: wire.GSI{9, 8, 7, 6, 5, 4}, Port: 31000}
	txPeer  = netip.MustParseAddrPort("192.0.2.7:7500")
	txT0    = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
)

const txDPort = 7500

// txHarness drives a Sender with explicit time and decodes what it sends.
type txHarness struct {
	t   testing.TB
	s   *Sender
	now time.Time
}

func txConfig(cfg SenderConfig) SenderConfig {
	if cfg.TSI == (wire.TSI{}) {
		cfg.TSI = txTSI
	}
	if cfg.DPort == 0 {
		cfg.DPort = txDPort
	}
	if !cfg.Group.IsValid() {
		cfg.Group = txGroup
	}
	if !cfg.NLA.IsValid() {
		cfg.NLA = txNLA
	}
	return cfg
}

func newTxHarness(t testing.TB, cfg SenderConfig) *txHarness {
	t.Helper()
	s, err := NewSender(txConfig(cfg), txT0)
	if err != nil {
		t.Fatal(err)
	}
	return &txHarness{t: t, s: s, now: txT0}
}

// started returns a harness whose 3 start SPMs have been polled.
func startedTx(t testing.TB, cfg SenderConfig) *txHarness {
	t.Helper()
	h := newTxHarness(t, cfg)
	for i := range 3 {
		if p := h.poll(); p == nil || p.Type != wire.TypeSPM {
			t.Fatalf("start SPM %d: got %v", i, p)
		}
	}
	return h
}

func (h *txHarness) advance(d time.Duration) { h.now = h.now.Add(d) }

// poll polls once at h.now and decodes the datagram (nil if none). It
// checks that NextDeadline did not promise later than now what Poll
// returns now, and that every packet decodes (checksum included).
func (h *txHarness) poll() *wire.Packet {
	h.t.Helper()
	d := h.s.NextDeadline()
	prefix := []byte("xy") // Poll appends: the prefix must survive
	b, ok := h.s.Poll(h.now, prefix)
	if !ok {
		if len(b) != 2 {
			h.t.Fatalf("Poll !ok changed buf: %x", b)
		}
		return nil
	}
	if d.IsZero() || d.After(h.now) {
		h.t.Fatalf("Poll returned a packet at %v but NextDeadline was %v", h.rel(h.now), h.rel(d))
	}
	if string(b[:2]) != "xy" {
		h.t.Fatalf("Poll clobbered the prefix: %x", b[:2])
	}
	b = bytes.Clone(b[2:])
	p := new(wire.Packet)
	if err := wire.Parse(b, p); err != nil {
		h.t.Fatalf("Parse(% x): %v", b, err)
	}
	if p.Type == wire.TypeODATA || p.Type == wire.TypeRDATA {
		if len(b) > h.s.Config().MaxTPDU {
			h.t.Fatalf("%v of %d bytes > MaxTPDU", p.Type, len(b))
		}
	}
	if p.SPort != txTSI.Port || p.DPort != txDPort || p.GSI != txTSI.GSI {
		h.t.Fatalf("bad TSI/ports in %+v", p)
	}
	return p
}

// pollAll polls at h.now until nothing is due.
func (h *txHarness) pollAll() []*wire.Packet {
	h.t.Helper()
	var ps []*wire.Packet
	for {
		p := h.poll()
		if p == nil {
			return ps
		}
		ps = append(ps, p)
		if len(ps) > 1e6 {
			h.t.Fatal("Poll never runs dry")
		}
	}
}

func (h *txHarness) rel(t time.Time) time.Duration {
	if t.IsZero() {
		return -1
	}
	return t.Sub(txT0)
}

func (h *txHarness) send(msg []byte) {
	h.t.Helper()
	if err := h.s.Send(h.now, msg); err != nil {
		h.t.Fatalf("Send(%d bytes): %v", len(msg), err)
	}
}

func txNAK(seqs ...uint32) wire.Packet {
	p := wire.Packet{
		SPort: txDPort, DPort: txTSI.Port, Type: wire.TypeNAK, GSI: txTSI.GSI,
		Seq: seqs[0], SourceNLA: txNLA, GroupNLA: txGroup,
	}
	p.NAKListLen = copy(p.NAKList[:], seqs[1:])
	return p
}

// handle encodes p, decodes it again (through the codec, as the shell
// will) and hands it to the Sender.
func (h *txHarness) handle(p wire.Packet) {
	h.t.Helper()
	b, err := p.Append(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	var q wire.Packet
	if err := wire.Parse(b, &q); err != nil {
		h.t.Fatal(err)
	}
	h.s.HandlePacket(h.now, &q, txPeer)
}

func types(ps []*wire.Packet) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Type.String())
	}
	return strings.Join(s, " ")
}

func txMsg(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

func TestSenderStartSPMs(t *testing.T) {
	h := newTxHarness(t, SenderConfig{FirstSeq: 1000})
	ps := h.pollAll()
	if got := types(ps); got != "SPM SPM SPM" {
		t.Fatalf("first polls: %s", got)
	}
	for i, p := range ps {
		if p.Seq != uint32(i) || p.Trail != 1000 || p.Lead != 999 || p.PathNLA != txNLA ||
			p.Options != 0 || p.FIN || p.SYN {
			t.Errorf("start SPM %d: %+v", i, p)
		}
	}
	if tr, ld := h.s.Window(); tr != 1000 || ld != 999 {
		t.Errorf("Window = %d, %d", tr, ld)
	}
	if d := h.rel(h.s.NextDeadline()); d != time.Second {
		t.Errorf("NextDeadline after start = %v, want ambient 1s", d)
	}
	// OpenPGM's empty window: trail 0, lead 0xFFFFFFFF.
	h = newTxHarness(t, SenderConfig{})
	if p := h.poll(); p.Trail != 0 || p.Lead != 0xFFFFFFFF {
		t.Errorf("FirstSeq 0: SPM trail %d lead %#x", p.Trail, p.Lead)
	}
}

func TestSenderSmallMessage(t *testing.T) {
	h := startedTx(t, SenderConfig{FirstSeq: 7})
	msg := []byte("hello, multicast")
	h.send(msg)
	msg[0] = 'X' // Send copied it
	ps := h.pollAll()
	if len(ps) != 1 {
		t.Fatalf("got %s", types(ps))
	}
	p := ps[0]
	if p.Type != wire.TypeODATA || p.Seq != 7 || p.Trail != 7 || p.Options != 0 ||
		p.HasFragment || string(p.Payload) != "hello, multicast" {
		t.Fatalf("ODATA: %+v", p)
	}
	if tr, ld := h.s.Window(); tr != 7 || ld != 7 {
		t.Errorf("Window = %d, %d", tr, ld)
	}
	st := h.s.Stats()
	if st.Messages != 1 || st.MessageBytes != 16 || st.ODATA != 1 || st.ODATABytes != 16+24 ||
		st.WindowPackets != 1 || st.WindowBytes != 16 || st.Queued != 0 {
		t.Errorf("stats: %+v", st)
	}
}

func TestSenderZeroLength(t *testing.T) {
	h := startedTx(t, SenderConfig{})
	h.send(nil)
	ps := h.pollAll()
	if len(ps) != 1 || ps[0].Type != wire.TypeODATA || len(ps[0].Payload) != 0 || ps[0].Options != 0 {
		t.Fatalf("got %s %+v", types(ps), ps)
	}
}

// reassemble checks the fragments of one message and joins them.
func reassemble(t *testing.T, ps []*wire.Packet) []byte {
	t.Helper()
	var out []byte
	for i, p := range ps {
		f := p.Fragment
		if !p.HasFragment || p.Options != wire.OptPresent || f.First != ps[0].Seq ||
			p.Seq != ps[0].Seq+uint32(i) || f.Offset != uint32(len(out)) || f.Length != ps[0].Fragment.Length {
			t.Fatalf("fragment %d: %+v", i, p)
		}
		out = append(out, p.Payload...)
	}
	if len(out) != int(ps[0].Fragment.Length) {
		t.Fatalf("reassembled %d bytes, APDU length %d", len(out), ps[0].Fragment.Length)
	}
	return out
}

func TestSenderFragments(t *testing.T) {
	h := startedTx(t, SenderConfig{})
	if h.s.MaxTSDU() != 1448 || h.s.MaxFragment() != 1428 {
		t.Fatalf("MaxTSDU %d MaxFragment %d", h.s.MaxTSDU(), h.s.MaxFragment())
	}
	msg := txMsg(5000, 1)
	h.send(msg)
	ps := h.pollAll()
	if len(ps) != 4 {
		t.Fatalf("5000 bytes: %d TPDUs", len(ps))
	}
	for i, want := range []int{1428, 1428, 1428, 716} {
		if len(ps[i].Payload) != want {
			t.Errorf("fragment %d: %d bytes, want %d", i, len(ps[i].Payload), want)
		}
	}
	if got := reassemble(t, ps); !bytes.Equal(got, msg) {
		t.Fatal("reassembled message differs")
	}
	if st := h.s.Stats(); st.Messages != 1 || st.MessageBytes != 5000 || st.ODATA != 4 {
		t.Errorf("stats: %+v", st)
	}
}

func TestSenderMaxTSDUBoundary(t *testing.T) {
	for _, mtu := range []int{0, 100, 9000} {
		h := startedTx(t, SenderConfig{MaxTPDU: mtu})
		n := h.s.MaxTSDU()
		h.send(txMsg(n, 2))
		ps := h.pollAll()
		if len(ps) != 1 || ps[0].Options != 0 || ps[0].HasFragment || len(ps[0].Payload) != n {
			t.Fatalf("MaxTPDU %d: MaxTSDU message gave %s", mtu, types(ps))
		}
		msg := txMsg(n+1, 3)
		h.send(msg)
		ps = h.pollAll()
		if len(ps) != 2 {
			t.Fatalf("MaxTPDU %d: MaxTSDU+1 message gave %d TPDUs", mtu, len(ps))
		}
		if !bytes.Equal(reassemble(t, ps), msg) {
			t.Fatal("reassembled message differs")
		}
	}
}

func TestSenderMaxMessage(t *testing.T) {
	h := startedTx(t, SenderConfig{})
	if err := h.s.Send(h.now, make([]byte, wire.MaxAPDU+1)); !errors.Is(err, ErrMessageTooLarge) {
		t.Errorf("65536 bytes: %v", err)
	}
	h.send(make([]byte, wire.MaxAPDU))
	if n := len(h.pollAll()); n != 46 {
		t.Errorf("65535 bytes: %d TPDUs, want 46", n)
	}

	h = startedTx(t, SenderConfig{MaxMessage: 3000})
	if h.s.Writable(3001) || !h.s.Writable(3000) {
		t.Error("Writable disagrees with MaxMessage")
	}
	if err := h.s.Send(h.now, make([]byte, 3001)); err != ErrMessageTooLarge {
		t.Errorf("3001 bytes: %v", err)
	}
	if st := h.s.Stats(); st.Queued != 0 {
		t.Errorf("queued %d after a refused message", st.Queued)
	}
	h.send(make([]byte, 3000))
}

// TestSenderODATAEncoding checks the hand-written ODATA encoder against
// the codec.
func TestSenderODATAEncoding(t *testing.T) {
	c := txConfig(SenderConfig{})
	for i := range 4 {
		frag, syn := i&1 != 0, i&2 != 0
		f := wire.Fragment{First: 0xFFFFFFFE, Offset: 2856, Length: 5000}
		payload := txMsg(300, 5)
		got := txAppendODATA(nil, &c, 0xFFFFFFFF, frag, f, payload, syn)
		wire.SetTrail(got, 0x01020304)
		p := wire.Packet{
			SPort: c.TSI.Port, DPort: c.DPort, Type: wire.TypeODATA, GSI: c.TSI.GSI,
			Seq: 0xFFFFFFFF, Trail: 0x01020304, Payload: payload, HasFragment: frag, Fragment: f, SYN: syn,
		}
		want, err := p.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("frag=%v:\n got % x\nwant % x", frag, got, want)
		}
	}
}

func TestSenderNAKRepair(t *testing.T) {
	h := startedTx(t, SenderConfig{FirstSeq: 100})
	h.send([]byte("zero"))
	msg := txMsg(3000, 9)
	h.send(msg)
	orig := h.pollAll() // 100, then 101..103 fragments
	if len(orig) != 4 {
		t.Fatalf("got %s", types(orig))
	}
	h.advance(5 * time.Millisecond)
	h.handle(txNAK(102))
	if d := h.s.NextDeadline(); d.After(h.now) {
		t.Fatalf("NextDeadline %v after NAK", h.rel(d))
	}
	ncf := h.poll()
	if ncf == nil || ncf.Type != wire.TypeNCF || ncf.Seq != 102 || ncf.NAKListLen != 0 ||
		ncf.SourceNLA != txNLA || ncf.GroupNLA != txGroup {
		t.Fatalf("want NCF 102, got %+v", ncf)
	}
	r := h.poll()
	if r == nil || r.Type != wire.TypeRDATA || r.Seq != 102 || r.Trail != 100 ||
		r.Options != orig[2].Options || r.Fragment != orig[2].Fragment ||
		!bytes.Equal(r.Payload, orig[2].Payload) {
		t.Fatalf("RDATA: %+v", r)
	}
	if p := h.poll(); p != nil {
		t.Fatalf("extra packet %v", p.Type)
	}
	st := h.s.Stats()
	if st.NAKs != 1 || st.NAKSeqs != 1 || st.NCF != 1 || st.RDATA != 1 || st.RDATABytes != uint64(24+20+len(r.Payload)) {
		t.Errorf("stats: %+v", st)
	}
}

// TestSenderRDATACurrentTrail: RDATA carries the trail at repair time.
func TestSenderRDATACurrentTrail(t *testing.T) {
	h := startedTx(t, SenderConfig{WindowPackets: 4})
	for i := range 6 {
		h.send([]byte{byte(i)})
	}
	h.pollAll()
	if tr, ld := h.s.Window(); tr != 2 || ld != 5 {
		t.Fatalf("Window %d %d", tr, ld)
	}
	h.handle(txNAK(3))
	ps := h.pollAll()
	if types(ps) != "NCF RDATA" || ps[1].Trail != 2 || ps[1].Seq != 3 || ps[1].Payload[0] != 3 {
		t.Fatalf("got %s %+v", types(ps), ps)
	}
}

func TestSenderNAKList(t *testing.T) {
	h := startedTx(t, SenderConfig{})
	for i := range 100 {
		h.send([]byte{byte(i)})
	}
	h.pollAll()
	var seqs []uint32
	for i := range wire.MaxNAKSeqs {
		seqs = append(seqs, uint32(3+i))
	}
	h.handle(txNAK(seqs...))
	ps := h.pollAll()
	if len(ps) != 64 || ps[0].Type != wire.TypeNCF {
		t.Fatalf("got %d packets: %s", len(ps), types(ps))
	}
	if got := ps[0].NAKSeqs(nil); !slices.Equal(got, seqs) {
		t.Errorf("NCF names %v", got)
	}
	for i, p := range ps[1:] {
		if p.Type != wire.TypeRDATA || p.Seq != seqs[i] || p.Payload[0] != byte(seqs[i]) {
			t.Fatalf("repair %d: %+v", i, p)
		}
	}
	if st := h.s.Stats(); st.NAKSeqs != 63 || st.RDATA != 63 || st.NCF != 1 {
		t.Errorf("stats: %+v", st)
	}
}

func TestSenderNAKElimination(t *testing.T) {
	h := startedTx(t, SenderConfig{Rate: 1e6})
	for i := range 5 {
		h.send([]byte{byte(i)})
	}
	h.pollAll()
	// A duplicate NAK while the repair is queued: one NCF (a sqn is
	// confirmed once per NAKElim), one RDATA. The NAK-list-plus-single
	// quirk (a sqn twice in one NAK) too.
	h.handle(txNAK(2))
	h.handle(txNAK(2, 2))
	if got := types(h.pollAll()); got != "NCF RDATA" {
		t.Fatalf("duplicate NAK: %s", got)
	}
	// Within NAKElim after the RDATA and NCF: nothing.
	h.advance(19 * time.Millisecond)
	h.handle(txNAK(2))
	if got := types(h.pollAll()); got != "" {
		t.Fatalf("NAK within NAKElim: %s", got)
	}
	// After NAKElim: repaired again.
	h.advance(time.Millisecond)
	h.handle(txNAK(2))
	if got := types(h.pollAll()); got != "NCF RDATA" {
		t.Fatalf("NAK after NAKElim: %s", got)
	}
	if st := h.s.Stats(); st.NAKsEliminated != 3 || st.RDATA != 2 || st.NCF != 2 || st.NCFsEliminated != 3 {
		t.Errorf("stats: %+v", st)
	}

	// Negative NAKElim: only queued repairs are merged (OpenPGM).
	h = startedTx(t, SenderConfig{NAKElim: -1})
	h.send(nil)
	h.pollAll()
	h.handle(txNAK(0))
	h.pollAll()
	h.handle(txNAK(0))
	if got := types(h.pollAll()); got != "NCF RDATA" {
		t.Fatalf("NAKElim<0: %s", got)
	}
}

func TestSenderNAKOutsideWindow(t *testing.T) {
	h := startedTx(t, SenderConfig{WindowPackets: 4, Rate: 1e5})
	for i := range 10 {
		h.send([]byte{byte(i)})
	}
	for range 6 {
		if p := h.poll(); p == nil || p.Type != wire.TypeODATA {
			t.Fatalf("want ODATA, got %v", p)
		}
	}
	// Window now holds 2..5; 6..9 are queued, not sent.
	if tr, ld := h.s.Window(); tr != 2 || ld != 5 {
		t.Fatalf("Window %d %d", tr, ld)
	}
	h.handle(txNAK(1, 6, 5000))
	ps := h.pollAll()
	if len(ps) < 1 || ps[0].Type != wire.TypeNCF || !slices.Equal(ps[0].NAKSeqs(nil), []uint32{1, 6, 5000}) {
		t.Fatalf("got %s", types(ps))
	}
	for _, p := range ps[1:] {
		if p.Type == wire.TypeRDATA {
			t.Fatalf("RDATA %d for a NAK outside the window", p.Seq)
		}
	}
	st := h.s.Stats()
	if st.NAKsOutsideWindow != 3 || st.LastOutsideNAKer != txPeer || st.RDATA != 0 {
		t.Errorf("stats: %+v", st)
	}
}

func TestSenderBadNAKs(t *testing.T) {
	h := startedTx(t, SenderConfig{})
	h.send(nil)
	h.pollAll()
	for name, mut := range map[string]func(*wire.Packet){
		"source NLA": func(p *wire.Packet) { p.SourceNLA = netip.MustParseAddr("192.0.2.2") },
		"group NLA":  func(p *wire.Packet) { p.GroupNLA = netip.MustParseAddr("239.192.0.2") },
		"v6 NLA":     func(p *wire.Packet) { p.SourceNLA = netip.MustParseAddr("2001:db8::1") },
		"GSI":        func(p *wire.Packet) { p.GSI[5]++ },
		"TSI port":   func(p *wire.Packet) { p.DPort++ },
		"dport":      func(p *wire.Packet) { p.SPort++ },
	} {
		before := h.s.Stats().BadNAKs
		p := txNAK(0)
		mut(&p)
		h.handle(p)
		if ps := h.pollAll(); len(ps) != 0 {
			t.Errorf("%s: sent %s", name, types(ps))
		}
		if h.s.Stats().BadNAKs != before+1 {
			t.Errorf("%s: not counted as bad", name)
		}
	}
	// IPv4-mapped NLAs are the same address.
	p := txNAK(0)
	p.SourceNLA = netip.AddrFrom16(txNLA.As16())
	h.s.HandlePacket(h.now, &p, txPeer)
	if got := types(h.pollAll()); got != "NCF RDATA" {
		t.Errorf("mapped NLA: %s", got)
	}
	// Parity NAKs are ignored (no FEC), NNAKs counted.
	p = txNAK(0)
	p.Options = wire.OptParity
	h.handle(p)
	p = txNAK(0)
	p.Type = wire.TypeNNAK
	h.handle(p)
	// Downstream types are ignored.
	h.handle(wire.Packet{Type: wire.TypeODATA, SPort: txTSI.Port, DPort: txDPort, GSI: txTSI.GSI})
	if ps := h.pollAll(); len(ps) != 0 {
		t.Errorf("parity NAK/NNAK/ODATA: sent %s", types(ps))
	}
	if st := h.s.Stats(); st.ParityNAKs != 1 || st.NNAKs != 1 || st.Ignored != 1 || st.NAKs != 1 {
		t.Errorf("stats: %+v", st)
	}
}

func TestSenderRepairsPreemptODATA(t *testing.T) {
	// 1000 B/s with a 2-packet burst: ODATA queues up behind the limiter.
	h := startedTx(t, SenderConfig{MaxTPDU: 200, Rate: 1000, Burst: 304,
		Heartbeat: []time.Duration{}, AmbientSPM: time.Hour})
	for i := range 5 {
		h.send(txMsg(100, byte(i)))
	}
	if got := types(h.pollAll()); got != "ODATA ODATA" {
		t.Fatalf("burst: %s", got)
	}
	h.handle(txNAK(0))
	if got := types(h.pollAll()); got != "NCF" {
		t.Fatalf("after NAK: %s", got)
	}
	// The next rate-limited packet is the repair, not ODATA 2.
	d := h.s.NextDeadline()
	if !d.After(h.now) {
		t.Fatalf("NextDeadline %v not in the future", h.rel(d))
	}
	h.now = d.Add(-time.Nanosecond)
	if p := h.poll(); p != nil {
		t.Fatalf("sent %v before NextDeadline", p.Type)
	}
	h.now = d
	if p := h.poll(); p == nil || p.Type != wire.TypeRDATA || p.Seq != 0 {
		t.Fatalf("want RDATA 0, got %+v", p)
	}
	h.now = h.s.NextDeadline()
	if p := h.poll(); p == nil || p.Type != wire.TypeODATA || p.Seq != 2 {
		t.Fatalf("want ODATA 2, got %+v", p)
	}
}

func TestSenderRateLimit(t *testing.T) {
	const rate = 1e6
	h := startedTx(t, SenderConfig{Rate: rate, MaxQueued: 200})
	if b := h.s.Config().Burst; b != 10000 {
		t.Fatalf("default Burst %d, want rate/100", b)
	}
	end := h.now.Add(time.Second)
	total, next := 0, 0
	rng := rand.New(rand.NewPCG(1, 2))
	for h.now.Before(end) {
		for h.s.Writable(5000) {
			h.send(txMsg(rng.IntN(5000), byte(next)))
			next++
		}
		if next%7 == 0 && next > 10 {
			h.handle(txNAK(uint32(rng.IntN(next))))
		}
		for _, p := range h.pollAll() {
			if p.Type == wire.TypeODATA || p.Type == wire.TypeRDATA {
				total += p.Len() + 28
			}
		}
		d := h.s.NextDeadline()
		if !d.After(h.now) {
			t.Fatalf("NextDeadline %v not after now %v with a backlog", h.rel(d), h.rel(h.now))
		}
		h.now = d
	}
	// Everything polled in [0, 1s]: at most one second of rate plus one
	// burst, and not less than that minus one packet.
	if total > rate+10000 || total < rate+10000-1500 {
		t.Errorf("sent %d bytes in 1s at %d B/s, burst 10000", total, int(rate))
	}
}

func TestSenderUnlimited(t *testing.T) {
	h := startedTx(t, SenderConfig{MaxQueued: 10000})
	n := 0
	for h.s.Writable(1448) {
		h.send(make([]byte, 1448))
		n++
	}
	if n != 10000 {
		t.Fatalf("accepted %d messages", n)
	}
	if got := len(h.pollAll()); got != n {
		t.Errorf("polled %d of %d at one instant", got, n)
	}
}

func TestSenderWindowCount(t *testing.T) {
	h := startedTx(t, SenderConfig{WindowPackets: 4, Rate: 1000, Burst: 1500})
	for i := range 10 {
		h.send([]byte{byte(i)})
	}
	// Queued but unsent data never moves the trail.
	if tr, ld := h.s.Window(); tr != 0 || ld != 0xFFFFFFFF {
		t.Fatalf("Window %d %d before sending", tr, ld)
	}
	for i := range uint32(10) {
		h.now = h.s.NextDeadline()
		p := h.poll()
		if p == nil || p.Type != wire.TypeODATA || p.Seq != i {
			t.Fatalf("want ODATA %d, got %+v", i, p)
		}
		wantTrail := uint32(max(0, int(i)-3))
		if p.Trail != wantTrail {
			t.Errorf("ODATA %d trail %d, want %d", i, p.Trail, wantTrail)
		}
		if tr, ld := h.s.Window(); tr != wantTrail || ld != i {
			t.Errorf("after ODATA %d: Window %d %d", i, tr, ld)
		}
		if st := h.s.Stats(); st.WindowPackets != int(i-wantTrail+1) || st.Queued != int(9-i) {
			t.Errorf("after ODATA %d: stats %+v", i, st)
		}
	}
	// The SPM advertises the same window.
	h.now = h.s.NextDeadline()
	if p := h.poll(); p.Type != wire.TypeSPM || p.Trail != 6 || p.Lead != 9 {
		t.Errorf("SPM: %+v", p)
	}
}

func TestSenderWindowBytes(t *testing.T) {
	h := startedTx(t, SenderConfig{WindowBytes: 3000})
	for i := range 5 {
		h.send(txMsg(1000, byte(i)))
		ps := h.pollAll()
		if want := uint32(max(0, i-2)); ps[0].Trail != want {
			t.Errorf("message %d: trail %d, want %d", i, ps[0].Trail, want)
		}
	}
	if st := h.s.Stats(); st.WindowPackets != 3 || st.WindowBytes != 3000 {
		t.Errorf("stats %+v", st)
	}
	h.send(txMsg(1001, 9)) // 2000+1001 bytes would not fit: keep 4 and 5
	h.pollAll()
	if tr, ld := h.s.Window(); tr != 4 || ld != 5 {
		t.Errorf("Window %d %d", tr, ld)
	}
}

func TestSenderWindowTime(t *testing.T) {
	h := startedTx(t, SenderConfig{WindowTime: time.Second, AmbientSPM: time.Hour, Heartbeat: []time.Duration{}})
	h.send([]byte("a"))
	h.pollAll()
	h.advance(500 * time.Millisecond)
	h.send([]byte("b"))
	h.pollAll()
	if d := h.rel(h.s.NextDeadline()); d != time.Second {
		t.Fatalf("NextDeadline %v, want eviction at 1s", d)
	}
	h.now = txT0.Add(time.Second - 1)
	h.poll()
	if tr, _ := h.s.Window(); tr != 0 {
		t.Fatalf("trail %d before 1s", tr)
	}
	h.now = txT0.Add(time.Second)
	if p := h.poll(); p != nil {
		t.Fatalf("eviction sent %v", p.Type)
	}
	if tr, ld := h.s.Window(); tr != 1 || ld != 1 {
		t.Fatalf("Window %d %d at 1s", tr, ld)
	}
	// A NAK for evicted data gets an NCF only.
	h.handle(txNAK(0))
	if got := types(h.pollAll()); got != "NCF" {
		t.Errorf("NAK for expired data: %s", got)
	}
	if d := h.rel(h.s.NextDeadline()); d != 1500*time.Millisecond {
		t.Fatalf("NextDeadline %v, want 1.5s", d)
	}
	h.now = txT0.Add(1500 * time.Millisecond)
	h.pollAll()
	if tr, ld := h.s.Window(); tr != 2 || ld != 1 {
		t.Fatalf("Window %d %d when empty", tr, ld)
	}
}

// TestSenderTrailHeld: with data held (repairs queued, rate limited), the
// trail only moves as sent data leaves.
func TestSenderTrailHeld(t *testing.T) {
	h := startedTx(t, SenderConfig{WindowPackets: 8, MaxQueued: 100, Rate: 100000, Burst: 3000})
	for i := range 100 {
		h.send([]byte{byte(i)})
	}
	lastTrail := uint32(0)
	for range 2000 {
		h.advance(100 * time.Microsecond)
		for _, p := range h.pollAll() {
			tr, ld := h.s.Window()
			if ld-tr >= 8 {
				t.Fatalf("window %d..%d larger than 8", tr, ld)
			}
			if p.Type == wire.TypeODATA && p.Trail != uint32(max(0, int(p.Seq)-7)) {
				t.Fatalf("ODATA %d trail %d", p.Seq, p.Trail)
			}
			if tr < lastTrail {
				t.Fatal("trail went back")
			}
			lastTrail = tr
		}
		_, ld := h.s.Window()
		h.handle(txNAK(ld))
	}
}

func TestSenderSequenceWrap(t *testing.T) {
	h := startedTx(t, SenderConfig{FirstSeq: 0xFFFFFFF0, WindowPackets: 8})
	for i := range 40 {
		h.send([]byte{byte(i)})
		ps := h.pollAll()
		p := ps[0]
		seq := 0xFFFFFFF0 + uint32(i)
		if p.Seq != seq || p.Trail != 0xFFFFFFF0+uint32(max(0, i-7)) {
			t.Fatalf("message %d: seq %#x trail %#x", i, p.Seq, p.Trail)
		}
	}
	// 40 messages from 0xFFFFFFF0: the lead is 0x17, the window 0x10..0x17.
	tr, ld := h.s.Window()
	if tr != 0x10 || ld != 0x17 {
		t.Fatalf("Window %#x %#x", tr, ld)
	}
	h.handle(txNAK(0x12, 0xFFFFFFFF, 0x17, 0x18))
	ps := h.pollAll()
	if got := types(ps); got != "NCF RDATA RDATA" || ps[1].Seq != 0x12 || ps[2].Seq != 0x17 {
		t.Fatalf("wrapped NAK: %s", got)
	}
	// A fragmented message across the wrap.
	h = startedTx(t, SenderConfig{FirstSeq: 0xFFFFFFFE})
	msg := txMsg(5000, 4)
	h.send(msg)
	ps = h.pollAll()
	if ps[0].Seq != 0xFFFFFFFE || ps[3].Seq != 1 || !bytes.Equal(reassemble(t, ps), msg) {
		t.Fatal("fragments across the wrap")
	}
}

func TestSenderWouldBlock(t *testing.T) {
	// 1400-byte messages: one per 1452-byte burst.
	h := startedTx(t, SenderConfig{MaxQueued: 50, Rate: 1000, Burst: 1500})
	for i := range 47 {
		h.send(txMsg(1400, byte(i)))
	}
	if !h.s.Writable(4000) || h.s.Writable(5000) {
		t.Error("Writable: 3 TPDUs fit, 4 do not")
	}
	if err := h.s.Send(h.now, make([]byte, 5000)); err != ErrWouldBlock {
		t.Fatalf("Send: %v", err)
	}
	if st := h.s.Stats(); st.Queued != 47 {
		t.Fatalf("queued %d after ErrWouldBlock", st.Queued)
	}
	h.send(make([]byte, 4000))
	if h.s.Writable(0) || h.s.Send(h.now, nil) != ErrWouldBlock {
		t.Fatal("queue should be full")
	}
	h.pollAll() // the burst: one packet
	if !h.s.Writable(0) || h.s.Writable(1500) {
		t.Error("after one ODATA: room for exactly one TPDU")
	}
}

func TestSenderHeartbeat(t *testing.T) {
	h := startedTx(t, SenderConfig{})
	h.advance(50 * time.Millisecond)
	h.send([]byte("x"))
	h.pollAll()
	dataAt := h.now
	var got []time.Duration
	for len(got) < 9 {
		h.now = h.s.NextDeadline()
		p := h.poll()
		if p == nil || p.Type != wire.TypeSPM || p.Trail != 0 || p.Lead != 0 {
			t.Fatalf("want SPM, got %+v", p)
		}
		got = append(got, h.now.Sub(dataAt))
	}
	ms := time.Millisecond
	want := []time.Duration{100 * ms, 200 * ms, 300 * ms, 400 * ms, 700 * ms, 1300 * ms, 2300 * ms, 3300 * ms, 4300 * ms}
	if !slices.Equal(got, want) {
		t.Errorf("SPMs after data at %v, want %v", got, want)
	}
	// An RDATA restarts the heartbeat.
	h.handle(txNAK(0))
	h.pollAll()
	repairAt := h.now
	h.now = h.s.NextDeadline()
	if h.now.Sub(repairAt) != 100*ms || h.poll().Type != wire.TypeSPM {
		t.Errorf("heartbeat after RDATA at %v", h.now.Sub(repairAt))
	}

	// A custom list; a fragmented message restarts only after its last TPDU.
	h = startedTx(t, SenderConfig{Heartbeat: []time.Duration{10 * ms, 20 * ms}, AmbientSPM: 50 * ms,
		MaxTPDU: 200, Rate: 1000, Burst: 228})
	h.send(make([]byte, 400)) // 3 fragments, 1 per 228 ms
	start := h.now
	var times []string
	for h.now.Sub(start) < 1200*ms {
		h.now = h.s.NextDeadline()
		for _, p := range h.pollAll() {
			times = append(times, p.Type.String()+"@"+h.now.Sub(start).String())
		}
	}
	// Fragments of 200 and 200 bytes, then 132 (+28 each): ODATA at 0,
	// 228 ms and 228+160-228+228 = 388 ms. Ambient every 50 ms until the
	// last fragment, then heartbeat +10, +20, then ambient again.
	wantS := "ODATA@0s SPM@50ms SPM@100ms SPM@150ms SPM@200ms ODATA@228ms SPM@250ms SPM@300ms SPM@350ms " +
		"ODATA@388ms SPM@398ms SPM@418ms"
	for at := 468 * ms; at < 1250*ms; at += 50 * ms {
		wantS += " SPM@" + at.String()
	}
	if got := strings.Join(times, " "); got != wantS {
		t.Errorf("schedule:\n got %s\nwant %s", got, wantS)
	}
}

func TestSenderSPMR(t *testing.T) {
	h := startedTx(t, SenderConfig{})
	spmr := wire.Packet{Type: wire.TypeSPMR, SPort: txDPort, DPort: txTSI.Port, GSI: txTSI.GSI}
	h.advance(time.Millisecond)
	h.handle(spmr)
	ps := h.pollAll()
	if len(ps) != 1 || ps[0].Type != wire.TypeSPM || ps[0].Seq != 3 {
		t.Fatalf("SPMR answer: %s", types(ps))
	}
	// A flood: 1000 SPMRs within 1 ms, polling all along.
	spms := 0
	for i := range 1000 {
		h.now = txT0.Add(2*time.Millisecond + time.Duration(i)*time.Microsecond)
		h.handle(spmr)
		spms += len(h.pollAll())
	}
	if spms > 1 {
		t.Errorf("1000 SPMRs in 1 ms gave %d SPMs", spms)
	}
	// The pending answer goes 10 ms after the last one, once.
	if d := h.rel(h.s.NextDeadline()); d != 11*time.Millisecond {
		t.Errorf("NextDeadline %v, want 11ms", d)
	}
	h.now = txT0.Add(11 * time.Millisecond)
	if got := types(h.pollAll()); got != "SPM" {
		t.Errorf("deferred answer: %s", got)
	}
	h.advance(100 * time.Millisecond)
	if got := types(h.pollAll()); got != "" {
		t.Errorf("afterwards: %s", got)
	}
	if st := h.s.Stats(); st.SPMRs != 1001 || st.SPM != 5 {
		t.Errorf("stats: %+v", st)
	}
	// Wrong TSI: ignored.
	spmr.GSI[0]++
	h.handle(spmr)
	if got := types(h.pollAll()); got != "" {
		t.Errorf("foreign SPMR: %s", got)
	}
}

func TestSenderClose(t *testing.T) {
	// 1400-byte messages: one per burst, the next ones 14.5 ms apart.
	h := startedTx(t, SenderConfig{Rate: 100000, Burst: 1500})
	for i := range 3 {
		h.send(txMsg(1400, byte(i)))
	}
	if got := types(h.pollAll()); got != "ODATA" {
		t.Fatalf("burst: %s", got)
	}
	h.s.Close(h.now)
	if err := h.s.Send(h.now, nil); !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if h.s.Writable(0) {
		t.Error("Writable after Close")
	}
	var seq []string
	for !h.s.Done() {
		d := h.s.NextDeadline()
		if d.IsZero() {
			t.Fatal("NextDeadline zero before Done")
		}
		h.now = d
		for _, p := range h.pollAll() {
			s := p.Type.String()
			if p.FIN {
				s += "+FIN"
			}
			seq = append(seq, s)
		}
	}
	if got := strings.Join(seq, " "); got != "ODATA ODATA SPM+FIN SPM+FIN SPM+FIN" {
		t.Fatalf("close: %s", got)
	}
	// While the owner lingers, FIN SPMs follow the heartbeat, then the
	// ambient interval, for receivers that missed the first three.
	fin := h.now
	var at []string
	for h.now.Sub(fin) < 2500*time.Millisecond {
		h.now = h.s.NextDeadline()
		for _, p := range h.pollAll() {
			if p.Type != wire.TypeSPM || !p.FIN || p.Lead != 2 {
				t.Fatalf("lingering: %+v", p)
			}
			at = append(at, h.now.Sub(fin).String())
		}
	}
	if got := strings.Join(at, " "); got != "100ms 200ms 300ms 400ms 700ms 1.3s 2.3s 3.3s" {
		t.Errorf("FIN SPMs while lingering at %s", got)
	}
	// Repairs are still served while the owner lingers.
	h.handle(txNAK(1))
	if got := types(h.pollAll()); got != "NCF RDATA" {
		t.Errorf("NAK after Done: %s", got)
	}
	// SPMRs are answered with FIN SPMs.
	h.handle(wire.Packet{Type: wire.TypeSPMR, SPort: txDPort, DPort: txTSI.Port, GSI: txTSI.GSI})
	if ps := h.pollAll(); len(ps) != 1 || !ps[0].FIN || ps[0].Trail != 0 || ps[0].Lead != 2 {
		t.Errorf("SPMR after Done: %+v", ps)
	}

	// Close before anything was sent: start SPMs, then FIN.
	h = newTxHarness(t, SenderConfig{})
	h.s.Close(h.now)
	if got := types(h.pollAll()); got != "SPM SPM SPM SPM SPM SPM" || !h.s.Done() {
		t.Errorf("immediate close: %s done=%v", got, h.s.Done())
	}
}

func TestSenderConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		mut  func(*SenderConfig)
	}{
		{"TSI.Port", func(c *SenderConfig) { c.TSI.Port = 0 }},
		{"DPort", func(c *SenderConfig) { c.DPort = 0; c.TSI.Port = 1 }},
		{"Group", func(c *SenderConfig) { c.Group = txNLA }},
		{"NLA", func(c *SenderConfig) { c.NLA = netip.IPv4Unspecified() }},
		{"MaxTPDU", func(c *SenderConfig) { c.MaxTPDU = 40 }},
		{"MaxTPDU", func(c *SenderConfig) { c.MaxTPDU = 70000 }},
		{"IPOverhead", func(c *SenderConfig) { c.IPOverhead = -1 }},
		{"MaxMessage", func(c *SenderConfig) { c.MaxMessage = 70000 }},
		{"WindowPackets", func(c *SenderConfig) { c.WindowPackets = -1 }},
		{"WindowBytes", func(c *SenderConfig) { c.WindowBytes = 1000 }},
		{"WindowTime", func(c *SenderConfig) { c.WindowTime = -1 }},
		{"Rate", func(c *SenderConfig) { c.Rate = -1 }},
		{"Burst", func(c *SenderConfig) { c.Rate = 1e6; c.Burst = 1000 }},
		{"AmbientSPM", func(c *SenderConfig) { c.AmbientSPM = -1 }},
		{"Heartbeat", func(c *SenderConfig) { c.Heartbeat = []time.Duration{time.Second, 0} }},
		{"MaxQueued", func(c *SenderConfig) { c.MaxQueued = 10 }},
	} {
		cfg := txConfig(SenderConfig{})
		c.mut(&cfg)
		if c.name == "TSI.Port" || c.name == "DPort" {
			cfg.Group, cfg.NLA = txGroup, txNLA
		}
		_, err := NewSender(cfg, txT0)
		if err == nil || !strings.Contains(err.Error(), "SenderConfig."+c.name) {
			t.Errorf("%s: err = %v", c.name, err)
		}
	}
	s, err := NewSender(txConfig(SenderConfig{}), txT0)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config()
	if c.MaxTPDU != 1472 || c.IPOverhead != 28 || c.MaxMessage != 65535 || c.WindowPackets != 16384 ||
		c.WindowBytes != 32<<20 || c.WindowTime != 10*time.Second || c.Rate != 0 || c.Burst != 0 ||
		c.AmbientSPM != time.Second || len(c.Heartbeat) != 6 || c.NAKElim != 20*time.Millisecond ||
		c.MaxQueued != 4096 {
		t.Errorf("defaults: %+v", c)
	}
}

// TestSenderClockBackwards: a clock that steps back is treated as stopped.
func TestSenderClockBackwards(t *testing.T) {
	h := startedTx(t, SenderConfig{Rate: 1000, Burst: 1500})
	h.advance(time.Second)
	h.send(nil)
	h.send(nil)
	h.pollAll()
	h.now = txT0
	if p := h.poll(); p != nil {
		t.Fatalf("sent %v with the clock stepped back", p.Type)
	}
}

func txSteadyState(t testing.TB) (*txHarness, []byte, []byte) {
	h := startedTx(t, SenderConfig{WindowPackets: 64, NAKElim: -1, WindowTime: time.Hour})
	msg := make([]byte, 1000)
	buf := make([]byte, 0, 1500)
	for range 1000 {
		if err := h.s.Send(h.now, msg); err != nil {
			t.Fatal(err)
		}
		if _, ok := h.s.Poll(h.now, buf); !ok {
			t.Fatal("no ODATA")
		}
	}
	return h, msg, buf
}

func TestSenderAllocs(t *testing.T) {
	h, msg, buf := txSteadyState(t)
	allocs := testing.AllocsPerRun(1000, func() {
		h.now = h.now.Add(time.Microsecond)
		if err := h.s.Send(h.now, msg); err != nil {
			t.Fatal(err)
		}
		if _, ok := h.s.Poll(h.now, buf); !ok {
			t.Fatal("no ODATA")
		}
	})
	if allocs != 0 {
		t.Errorf("Send+Poll: %v allocs", allocs)
	}
	if st := h.s.Stats(); st.WindowPackets != 64 {
		t.Fatalf("window not full: %+v", st)
	}

	var nak wire.Packet
	b, _ := (&wire.Packet{
		SPort: txDPort, DPort: txTSI.Port, Type: wire.TypeNAK, GSI: txTSI.GSI,
		SourceNLA: txNLA, GroupNLA: txGroup, NAKListLen: 2,
	}).Append(nil)
	if err := wire.Parse(b, &nak); err != nil {
		t.Fatal(err)
	}
	allocs = testing.AllocsPerRun(1000, func() {
		h.now = h.now.Add(time.Microsecond)
		trail, _ := h.s.Window()
		nak.Seq, nak.NAKList[0], nak.NAKList[1] = trail+5, trail+6, trail+60
		h.s.HandlePacket(h.now, &nak, txPeer)
		for range 4 { // NCF + 3 RDATA
			if _, ok := h.s.Poll(h.now, buf); !ok {
				t.Fatal("no NCF/RDATA")
			}
		}
	})
	if allocs != 0 {
		t.Errorf("HandlePacket(NAK)+Poll: %v allocs", allocs)
	}
}

func BenchmarkSenderSendPoll(b *testing.B) {
	h, msg, buf := txSteadyState(b)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		h.now = h.now.Add(time.Microsecond)
		if err := h.s.Send(h.now, msg); err != nil {
			b.Fatal(err)
		}
		if _, ok := h.s.Poll(h.now, buf); !ok {
			b.Fatal("no ODATA")
		}
	}
}

func BenchmarkSenderNAKRepair(b *testing.B) {
	h, _, buf := txSteadyState(b)
	nak := txNAK(0, 1, 2, 3)
	b.ReportAllocs()
	for b.Loop() {
		h.now = h.now.Add(time.Microsecond)
		trail, _ := h.s.Window()
		nak.Seq, nak.NAKList[0], nak.NAKList[1], nak.NAKList[2] = trail, trail+1, trail+2, trail+3
		h.s.HandlePacket(h.now, &nak, txPeer)
		for range 5 {
			if _, ok := h.s.Poll(h.now, buf); !ok {
				b.Fatal("no NCF/RDATA")
			}
		}
	}
}

// FuzzSenderHandle feeds arbitrary packets to HandlePacket, interleaved
// with Send, Poll and time steps, and checks the Sender's bounds.
func FuzzSenderHandle(f *testing.F) {
	enc := func(p wire.Packet) []byte {
		b, err := p.Append(nil)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(enc(txNAK(0xFFFFFFF2)), []byte{0, 1, 2, 3, 4, 5, 2, 2, 2})
	f.Add(enc(txNAK(0xFFFFFFF0, 0xFFFFFFF1, 0xFFFFFFF5, 3, 0xFFFFFFF1)), []byte{1, 1, 1, 1, 1, 1, 2, 0x40, 0, 2, 2, 2, 3})
	f.Add(enc(wire.Packet{Type: wire.TypeSPMR, SPort: txDPort, DPort: txTSI.Port, GSI: txTSI.GSI}), []byte{0, 0, 0, 2, 3, 0, 2})
	nnak := txNAK(5)
	nnak.Type = wire.TypeNNAK
	f.Add(enc(nnak), []byte{0, 2})
	f.Add([]byte{}, []byte{1, 1, 1, 5, 2, 2, 2, 2})
	f.Fuzz(func(t *testing.T, pkt []byte, ops []byte) {
		cfg := txConfig(SenderConfig{
			FirstSeq: 0xFFFFFFF0, MaxTPDU: 100, WindowPackets: 8, WindowBytes: 300,
			WindowTime: 50 * time.Millisecond, MaxQueued: 20, MaxMessage: 500, Rate: 20000, Burst: 300,
		})
		s, err := NewSender(cfg, txT0)
		if err != nil {
			t.Fatal(err)
		}
		// The fuzzer cannot compute checksums: try the raw bytes, then
		// the same bytes with the TSI made ours and the checksum fixed.
		var raw, fixed wire.Packet
		rawOK := wire.Parse(pkt, &raw) == nil
		fixedOK := false
		if len(pkt) >= wire.HeaderLen {
			b := bytes.Clone(pkt)
			copy(b[8:14], txTSI.GSI[:])
			b[0], b[1], b[2], b[3] = txDPort>>8, txDPort&0xff, byte(txTSI.Port>>8), byte(txTSI.Port)
			wire.SetChecksum(b)
			fixedOK = wire.Parse(b, &fixed) == nil
		}
		now := txT0
		var buf []byte
		for i, op := range ops {
			switch op & 7 {
			case 0:
				if rawOK {
					s.HandlePacket(now, &raw, txPeer)
				}
			case 1:
				err := s.Send(now, make([]byte, int(op)*2))
				if err != nil && err != ErrWouldBlock && err != ErrClosed && err != ErrMessageTooLarge {
					t.Fatalf("Send: %v", err)
				}
			case 2:
				d := s.NextDeadline()
				var ok bool
				buf, ok = s.Poll(now, buf[:0])
				if ok {
					if d.IsZero() || d.After(now) {
						t.Fatalf("Poll ok at %v, NextDeadline %v", now, d)
					}
					var p wire.Packet
					if err := wire.Parse(buf, &p); err != nil {
						t.Fatalf("Poll returned an unparsable packet: %v", err)
					}
				}
			case 3:
				now = now.Add(time.Duration(op) * 100 * time.Microsecond)
			case 4:
				if fixedOK {
					// Aim the sequence numbers at the window.
					p := fixed
					p.Seq += 0xFFFFFFF0 + uint32(i)
					for j := range p.NAKListLen {
						p.NAKList[j] += 0xFFFFFFF0 + uint32(i)
					}
					s.HandlePacket(now, &p, txPeer)
				}
			case 5:
				if op&0x80 != 0 {
					s.Close(now)
				}
			case 6:
				if d := s.NextDeadline(); !d.IsZero() {
					now = d
				}
			case 7:
				if fixedOK {
					s.HandlePacket(now, &fixed, txPeer)
				}
			}
			st := s.Stats()
			if st.WindowPackets > cfg.WindowPackets || st.WindowBytes > cfg.WindowBytes ||
				st.Queued > cfg.MaxQueued || st.RepairsQueued > st.WindowPackets ||
				s.rqLen > 2*cfg.WindowPackets || len(s.slots) > 32 || s.ncfLen > txNCFQueue {
				t.Fatalf("bounds: %+v rq %d slots %d", st, s.rqLen, len(s.slots))
			}
			if tr, ld := s.Window(); ld-tr+1 != uint32(st.WindowPackets) {
				t.Fatalf("Window %#x..%#x vs %d packets", tr, ld, st.WindowPackets)
			}
		}
	})
}

// TestSenderRepairsExpire: repairs queued for data that leaves the window
// are dropped, not sent.
func TestSenderRepairsExpire(t *testing.T) {
	h := startedTx(t, SenderConfig{WindowTime: 100 * time.Millisecond, Rate: 10000, Burst: 1500,
		Heartbeat: []time.Duration{}, AmbientSPM: time.Hour})
	for i := range 10 {
		h.send(txMsg(100, byte(i)))
	}
	h.pollAll() // 10 * 152 bytes: 9 in the burst
	h.now = h.s.NextDeadline()
	h.pollAll()
	h.handle(txNAK(0, 1, 2, 3, 4, 5, 6, 7, 8, 9))
	if got := types(h.pollAll()); got != "NCF" { // the bucket is empty
		t.Fatalf("after NAK: %s", got)
	}
	if st := h.s.Stats(); st.RepairsQueued != 10 {
		t.Fatalf("stats %+v", st)
	}
	h.advance(100 * time.Millisecond)
	if ps := h.pollAll(); len(ps) != 0 {
		t.Fatalf("sent %s after the window expired", types(ps))
	}
	if st := h.s.Stats(); st.RepairsQueued != 0 || st.WindowPackets != 0 {
		t.Fatalf("stats %+v", st)
	}
	if d := h.rel(h.s.NextDeadline()); d != time.Hour {
		t.Errorf("NextDeadline %v", d)
	}
}

// TestSenderNCFOverflow: a NAK flood beyond the NCF queue drops (and
// counts) NCFs but still queues the repairs.
func TestSenderNCFOverflow(t *testing.T) {
	h := startedTx(t, SenderConfig{})
	for i := range 200 {
		h.send([]byte{byte(i)})
	}
	h.pollAll()
	for i := range uint32(200) {
		h.handle(txNAK(i))
	}
	ps := h.pollAll()
	ncf, rdata := 0, 0
	for _, p := range ps {
		switch p.Type {
		case wire.TypeNCF:
			ncf++
		case wire.TypeRDATA:
			rdata++
		}
	}
	if ncf != txNCFQueue || rdata != 200 || h.s.Stats().NCFsDropped != 200-txNCFQueue {
		t.Errorf("%d NCF, %d RDATA, stats %+v", ncf, rdata, h.s.Stats())
	}
}
