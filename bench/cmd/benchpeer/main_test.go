package main

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/relmcast/relmcast/internal/udp"
	"github.com/relmcast/relmcast/internal/wire"
)

func TestFillCheck(t *testing.T) {
	for _, size := range []int{16, 64, 1400, 8192, maxSize} {
		b := make([]byte, size)
		for _, n := range []uint64{0, 1, 250, 251, 1 << 40} {
			fill(b, n, 42)
			got, sent, ok := check(b)
			if got != n || sent != 42 || !ok {
				t.Fatalf("size %d n %d: check = %d %d %v", size, n, got, sent, ok)
			}
			if size > header {
				b[size-1]++
				if _, _, ok := check(b); ok {
					t.Fatalf("size %d: corruption not seen", size)
				}
			}
		}
	}
}

func TestVerifier(t *testing.T) {
	v := verifier{latency: true}
	b := make([]byte, 100)
	for _, n := range []uint64{0, 1, 3, 2, 4} {
		fill(b, n, 10)
		v.message(b, 15)
	}
	b[50]++
	v.message(b, 15)
	fill(b, endMarker, 0)
	if !v.message(b, 20) {
		t.Fatal("end marker not seen")
	}
	r := v.r
	if r.OK != 4 || r.Missing != 1 || r.OutOfOrder != 1 || r.Bad != 1 || r.Msgs != 6 || !r.End {
		t.Errorf("verifier %+v", r)
	}
	if s := summarize(v.lat); s.P50 != 5 || s.N != 5 {
		t.Errorf("latency %+v", s)
	}
}

// fakeTransport returns the datagrams queued in it, one batch per call.
type fakeTransport struct {
	udp.Transport
	batches [][]udp.Datagram
}

func (f *fakeTransport) ReadBatch(ds []udp.Datagram) (int, error) {
	b := f.batches[0]
	f.batches = f.batches[1:]
	return copy(ds, b), nil
}

func pgmData(typ wire.Type, seq uint32) udp.Datagram {
	b := make([]byte, 24)
	b[4] = byte(typ)
	binary.BigEndian.PutUint32(b[16:], seq)
	return udp.Datagram{Buf: b, N: len(b), Addr: netip.MustParseAddrPort("127.0.0.1:1")}
}

func TestTapRepairLatency(t *testing.T) {
	f := &fakeTransport{batches: [][]udp.Datagram{
		{pgmData(wire.TypeODATA, 10), pgmData(wire.TypeODATA, 11)},
		{pgmData(wire.TypeODATA, 14)},                                 // 12, 13 missing
		{pgmData(wire.TypeRDATA, 12), pgmData(wire.TypeSPM, 13)},      // 12 repaired; an SPM is not data
		{pgmData(wire.TypeRDATA, 12), pgmData(wire.TypeODATA, 13)},    // a duplicate; 13 late
		{pgmData(wire.TypeODATA, 15), pgmData(wire.TypeRDATA, 1<<20)}, // a jump far ahead
	}}
	tp := &tap{Transport: f}
	ds := make([]udp.Datagram, 4)
	for range 5 {
		tp.ReadBatch(ds)
	}
	if len(tp.samples) != 2 {
		t.Fatalf("%d samples, want 2 (12 and 13)", len(tp.samples))
	}
	for _, s := range tp.samples {
		if s < 0 {
			t.Errorf("negative latency %d", s)
		}
	}
}
