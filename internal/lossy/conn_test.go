package lossy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/relmcast/relmcast/internal/udp"
)

var errEnd = errors.New("end of fake stream")

// fakeTransport reads datagrams numbered next, next+1, ... up to limit
// (exclusive), at most perRead per ReadBatch, then fails with errEnd. Each
// datagram is the 4-byte big-endian number followed by size-4 bytes of the
// number's low byte; its Addr port is the number's low 16 bits.
type fakeTransport struct {
	next, limit uint32
	perRead     int
	size        int
	closed      bool
	written     int
	scratch     []byte
}

var (
	fakeSrc = netip.MustParseAddr("198.18.0.1")
	fakeDst = netip.MustParseAddr("239.192.0.1")
)

func fakePayload(b []byte, seq uint32, size int) []byte {
	b = b[:size]
	binary.BigEndian.PutUint32(b, seq)
	for i := 4; i < size; i++ {
		b[i] = byte(seq)
	}
	return b
}

func (f *fakeTransport) ReadBatch(ds []udp.Datagram) (int, error) {
	if f.closed {
		return 0, &net.OpError{Op: "read", Net: "udp", Err: net.ErrClosed}
	}
	if f.next >= f.limit {
		return 0, errEnd
	}
	n := min(len(ds), f.perRead, int(f.limit-f.next))
	if len(f.scratch) < f.size {
		f.scratch = make([]byte, f.size)
	}
	for i := range n {
		d := &ds[i]
		d.N = copy(d.Buf, fakePayload(f.scratch, f.next, f.size)) // truncates like recvmmsg
		d.Addr = netip.AddrPortFrom(fakeSrc, uint16(f.next))
		d.Dst = fakeDst
		f.next++
	}
	return n, nil
}

func (f *fakeTransport) WriteBatch(ds []udp.Datagram) (int, error) {
	f.written += len(ds)
	return len(ds), nil
}

func (f *fakeTransport) LocalAddr() netip.Addr { return fakeSrc }
func (f *fakeTransport) Close() error          { f.closed = true; return nil }

func makeBatch(n, size int) []udp.Datagram {
	ds := make([]udp.Datagram, n)
	for i := range ds {
		ds[i].Buf = make([]byte, size)
	}
	return ds
}

// expected runs the reference model: the datagram numbers a receiver sees,
// in order, when the Impairer's decisions are applied one datagram at a
// time with unlimited room.
func expected(cfg Config, count uint32, size int) []uint32 {
	im := NewImpairer(cfg)
	var held [MaxHeld]uint32
	var out []uint32
	buf := make([]byte, size)
	for seq := range count {
		switch d := im.Decide(fakePayload(buf, seq, size)); d.Action {
		case Deliver:
			out = append(out, seq)
		case Duplicate:
			out = append(out, seq, seq)
		case Hold:
			held[d.Slot] = seq
		}
		for slot, ok := im.Due(); ok; slot, ok = im.Due() {
			out = append(out, held[slot])
		}
	}
	return out
}

// readAll reads c until errEnd with batches of batchLen and checks every
// datagram's contents and addresses against its number.
func readAll(t *testing.T, c *Conn, batchLen, size int) []uint32 {
	t.Helper()
	ds := makeBatch(batchLen, size)
	var out []uint32
	for {
		n, err := c.ReadBatch(ds)
		for _, d := range ds[:n] {
			if d.N != size {
				t.Fatalf("datagram of %d bytes, want %d", d.N, size)
			}
			seq := binary.BigEndian.Uint32(d.Buf)
			if want := fakePayload(make([]byte, size), seq, size); !slices.Equal(d.Buf[:d.N], want) {
				t.Fatalf("datagram %d: corrupt payload", seq)
			}
			if d.Addr != netip.AddrPortFrom(fakeSrc, uint16(seq)) || d.Dst != fakeDst {
				t.Fatalf("datagram %d: Addr %v Dst %v", seq, d.Addr, d.Dst)
			}
			out = append(out, seq)
		}
		if errors.Is(err, errEnd) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Fatal("ReadBatch returned 0 datagrams and no error")
		}
	}
}

// The output of a Conn does not depend on how the datagrams are batched, on
// either side: it is exactly the reference model's.
func TestConnMatchesModel(t *testing.T) {
	const count, size = 5000, 40
	for _, cfg := range []Config{
		{},
		{Loss: 0.1, Seed: 1},
		{BurstLoss: 0.01, BurstLen: 5, Seed: 2},
		{Duplicate: 0.2, Seed: 3},
		{Reorder: 0.2, Seed: 4},
		{Reorder: 1, Seed: 5},
		{Duplicate: 1, Seed: 6},
		{Loss: 0.05, BurstLoss: 0.005, Reorder: 0.1, Duplicate: 0.1, Seed: 7},
		{Loss: 0.5, Reorder: 0.5, Duplicate: 0.3, Seed: 8,
			Filter: func(b []byte) bool { return b[3]%3 != 0 }},
	} {
		want := expected(cfg, count, size)
		for _, batch := range [][2]int{{1, 1}, {1, 64}, {64, 1}, {7, 5}, {64, 64}, {3, 100}} {
			t.Run(fmt.Sprintf("%v/read%d/underlying%d", cfg, batch[0], batch[1]), func(t *testing.T) {
				f := &fakeTransport{limit: count, perRead: batch[1], size: size}
				c := Wrap(f, cfg)
				got := readAll(t, c, batch[0], size)
				if !slices.Equal(got, want) {
					i := 0
					for i < min(len(got), len(want)) && got[i] == want[i] {
						i++
					}
					t.Fatalf("got %d datagrams, want %d; first difference at %d", len(got), len(want), i)
				}
				st := c.Stats()
				if st.Datagrams != count {
					t.Errorf("Stats().Datagrams = %d, want %d", st.Datagrams, count)
				}
				if got := uint64(len(got)); got != count-st.Dropped+st.Duplicated-uint64(c.im.Held()) {
					t.Errorf("%d delivered, stats %+v, %d held", got, st, c.im.Held())
				}
			})
		}
	}
}

func TestConnStatsAndOrder(t *testing.T) {
	f := &fakeTransport{limit: 10_000, perRead: 32, size: 8}
	c := Wrap(f, Config{Reorder: 0.05, Duplicate: 0.05, Loss: 0.05, Seed: 99})
	got := readAll(t, c, 32, 8)
	st := c.Stats()
	if st.Dropped == 0 || st.Duplicated == 0 || st.Reordered == 0 {
		t.Fatalf("stats %+v: want some of each impairment", st)
	}
	seen := map[uint32]int{}
	inversions := 0
	for i, s := range got {
		seen[s]++
		if i > 0 && s < got[i-1] {
			inversions++
		}
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	if uint64(dups) != st.Duplicated {
		t.Errorf("observed %d duplicates, Stats says %d", dups, st.Duplicated)
	}
	if inversions == 0 {
		t.Error("no reordering observed")
	}
}

func TestConnPassThrough(t *testing.T) {
	f := &fakeTransport{limit: 100, perRead: 100, size: 4}
	c := Wrap(f, Config{Loss: 1})
	if c.LocalAddr() != fakeSrc {
		t.Errorf("LocalAddr = %v", c.LocalAddr())
	}
	if c.Unwrap() != udp.Transport(f) {
		t.Error("Unwrap did not return the wrapped transport")
	}
	ds := makeBatch(3, 4)
	if n, err := c.WriteBatch(ds); n != 3 || err != nil || f.written != 3 {
		t.Errorf("WriteBatch = %d, %v; underlying wrote %d", n, err, f.written)
	}
	// Everything is dropped, so ReadBatch keeps reading until the stream
	// ends rather than returning an empty batch.
	if n, err := c.ReadBatch(ds); n != 0 || !errors.Is(err, errEnd) {
		t.Errorf("ReadBatch with Loss 1 = %d, %v; want 0, errEnd", n, err)
	}
	if n, err := c.ReadBatch(nil); n != 0 || err != nil {
		t.Errorf("ReadBatch(nil) = %d, %v", n, err)
	}
}

func TestConnClose(t *testing.T) {
	f := &fakeTransport{limit: 100, perRead: 4, size: 4}
	c := Wrap(f, Config{Duplicate: 1})
	ds := makeBatch(1, 4)
	if _, err := c.ReadBatch(ds); err != nil { // leaves a duplicate pending
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !f.closed {
		t.Error("Close did not close the wrapped transport")
	}
	if _, err := c.ReadBatch(ds); !errors.Is(err, net.ErrClosed) {
		t.Errorf("ReadBatch after Close: %v, want net.ErrClosed", err)
	}
	if _, err := c.WriteBatch(ds); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WriteBatch after Close: %v, want net.ErrClosed", err)
	}
}

// A caller buffer smaller than the datagram gets a truncated copy, as
// recvmmsg would give.
func TestConnSmallBuffers(t *testing.T) {
	f := &fakeTransport{limit: 1000, perRead: 8, size: 64}
	c := Wrap(f, Config{Reorder: 0.5, Duplicate: 0.5, Seed: 1})
	// Underlying reads fill the 64-byte buffers; held copies are then
	// returned into whatever buffer is free, here also 64 bytes, so check
	// a mixed batch where some buffers are short.
	ds := makeBatch(8, 64)
	ds[3].Buf = make([]byte, 10)
	for range 50 {
		n, err := c.ReadBatch(ds)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range ds[:n] {
			if d.N > len(d.Buf) {
				t.Fatalf("ds[%d].N = %d > len(Buf) %d", i, d.N, len(d.Buf))
			}
		}
	}
}

func TestConnAllocs(t *testing.T) {
	f := &fakeTransport{limit: ^uint32(0), perRead: 16, size: 200}
	c := Wrap(f, Config{Loss: 0.05, BurstLoss: 0.01, Reorder: 0.1, Duplicate: 0.1, Seed: 1})
	ds := makeBatch(16, 256)
	read := func() {
		if _, err := c.ReadBatch(ds); err != nil {
			t.Fatal(err)
		}
	}
	for range 2000 { // warm up: held and pending storage reach their size
		read()
	}
	if allocs := testing.AllocsPerRun(1000, read); allocs != 0 {
		t.Errorf("ReadBatch: %v allocs per call, want 0", allocs)
	}
}

func BenchmarkConnReadBatch(b *testing.B) {
	f := &fakeTransport{limit: ^uint32(0), perRead: 32, size: 1400}
	c := Wrap(f, Config{Loss: 0.05, Reorder: 0.05, Duplicate: 0.05, Seed: 1})
	ds := makeBatch(32, 1500)
	b.ReportAllocs()
	b.SetBytes(32 * 1400)
	for b.Loop() {
		if _, err := c.ReadBatch(ds); err != nil {
			b.Fatal(err)
		}
	}
}
