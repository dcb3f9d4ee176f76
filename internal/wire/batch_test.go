package wire

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// TestBatchRoundTrip: messages framed with AppendBatched come back whole,
// in order, from CheckBatch and NextBatched, and a batched ODATA built
// with Packet.Append parses back with Batch set.
func TestBatchRoundTrip(t *testing.T) {
	msgs := [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte{7}, 300), []byte("x")}
	var b []byte
	for _, m := range msgs {
		b = AppendBatched(b, m)
	}
	if n, err := CheckBatch(b); n != len(msgs) || err != nil {
		t.Fatalf("CheckBatch = %d, %v", n, err)
	}
	rest := b
	for i, want := range msgs {
		var m []byte
		m, rest = NextBatched(rest)
		if !bytes.Equal(m, want) || m == nil {
			t.Fatalf("message %d: %q, want %q", i, m, want)
		}
	}
	if len(rest) != 0 {
		t.Fatalf("%d bytes left", len(rest))
	}

	p := Packet{SPort: 1000, DPort: 40268, Type: TypeODATA, GSI: GSI{1, 2, 3, 4, 5, 6}, Seq: 9, Trail: 3, Payload: b, Batch: true}
	pkt, err := p.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	// OPT_LENGTH (total 8), then OPT_BATCH with the end bit, right after
	// the data header.
	opts := pkt[HeaderLen+DataHeaderLen:][:BatchOverhead]
	if want := []byte{0x00, 4, 0, 8, 0x70 | 0x80, 4, 0, 0}; !bytes.Equal(opts, want) || pkt[5] != OptPresent {
		t.Fatalf("options %x (header byte 5 %#x), want %x", opts, pkt[5], want)
	}
	if got := AppendBatchOptions(nil); !bytes.Equal(got, opts) {
		t.Fatalf("AppendBatchOptions %x, want %x", got, opts)
	}
	var q Packet
	if err := Parse(pkt, &q); err != nil || !q.Batch || !bytes.Equal(q.Payload, b) {
		t.Fatalf("Parse: %v, batch %v, payload %x", err, q.Batch, q.Payload)
	}
}

// TestBatchMalformed: hostile framing is an error, never a panic, and a
// data packet that carries it does not parse.
func TestBatchMalformed(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"one byte", []byte{0}},
		{"length past the end", []byte{0, 5, 'a', 'b'}},
		{"huge length", []byte{0xff, 0xff, 1, 2, 3}},
		{"stray byte after a frame", []byte{0, 1, 'a', 0}},
		{"second frame short", []byte{0, 1, 'a', 0, 2, 'b'}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n, err := CheckBatch(tc.b); err != ErrBatch || n != 0 {
				t.Errorf("CheckBatch = %d, %v; want ErrBatch", n, err)
			}
			// NextBatched on what CheckBatch refused: no panic, and it
			// always makes progress or stops.
			rest := tc.b
			for i := 0; len(rest) > 0; i++ {
				var m []byte
				m, rest = NextBatched(rest)
				if m == nil && len(rest) != 0 || i > len(tc.b) {
					t.Fatalf("NextBatched: no progress")
				}
			}
			p := Packet{SPort: 1000, DPort: 40268, Type: TypeODATA, Payload: tc.b, Batch: true}
			pkt, err := p.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			var q Packet
			if err := Parse(pkt, &q); err != ErrBatch {
				t.Fatalf("Parse = %v, want ErrBatch", err)
			}
		})
	}
	// OPT_BATCH with OPT_FRAGMENT, of the wrong length, or of another
	// framing version.
	good := AppendBatched(nil, []byte("m"))
	p := Packet{SPort: 1000, DPort: 40268, Type: TypeODATA, Seq: 5, Payload: good, Batch: true,
		HasFragment: true, Fragment: Fragment{First: 5, Length: 100}}
	pkt, _ := p.Append(nil)
	var q Packet
	if err := Parse(pkt, &q); err != ErrBatch {
		t.Fatalf("fragmented batch: Parse = %v, want ErrBatch", err)
	}
	p = Packet{SPort: 1000, DPort: 40268, Type: TypeODATA, Payload: good, Batch: true}
	pkt, _ = p.Append(nil)
	off := HeaderLen + DataHeaderLen + 4 // OPT_BATCH
	pkt[off+3] = 1                       // framing version 1
	SetChecksum(pkt)
	if err := Parse(pkt, &q); err != ErrBatch {
		t.Fatalf("version 1: Parse = %v, want ErrBatch", err)
	}
	pkt[off+3] = 0x80 // the U bit alone is ignored
	SetChecksum(pkt)
	if err := Parse(pkt, &q); err != nil || !q.Batch {
		t.Fatalf("U bit: Parse = %v, batch %v", err, q.Batch)
	}
}

// FuzzBatch feeds arbitrary TSDUs to the batch decoder: CheckBatch and
// NextBatched must agree on the messages, never panic, and a valid batch
// must re-encode byte for byte.
func FuzzBatch(f *testing.F) {
	f.Add([]byte{0, 5, 'h', 'e', 'l', 'l', 'o', 0, 0})
	f.Add([]byte{0, 0})
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0})
	f.Add([]byte{0, 1, 'a', 0})
	f.Add(binary.BigEndian.AppendUint16(nil, 1438))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := CheckBatch(b)
		var re []byte
		rest, k := b, 0
		for len(rest) > 0 {
			m, r := NextBatched(rest)
			if m == nil {
				break
			}
			re = AppendBatched(re, m)
			rest = r
			k++
		}
		switch {
		case err == nil && (n != k || len(rest) != 0 || !bytes.Equal(re, b)):
			t.Fatalf("valid batch: CheckBatch %d messages, NextBatched %d, %d bytes left", n, k, len(rest))
		case err != nil && (err != ErrBatch || n != 0):
			t.Fatalf("CheckBatch = %d, %v", n, err)
		case err != nil && len(b) > 0 && len(rest) == 0:
			t.Fatalf("CheckBatch refused what NextBatched split whole")
		}
	})
}
