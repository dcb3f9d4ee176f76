package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
)

// ---------------------------------------------------------------------------
// Reference implementations and helpers.

// refChecksum is a deliberately naive RFC 1071 checksum: a 16-bit word
// loop, odd byte padded with zero, carries folded at the end, 0 sent as
// 0xFFFF.
func refChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	c := ^uint16(s)
	if c == 0 {
		return 0xffff
	}
	return c
}

// refFix stores the reference checksum of packet b in b.
func refFix(b []byte) []byte {
	b[6], b[7] = 0, 0
	binary.BigEndian.PutUint16(b[6:], refChecksum(b))
	return b
}

// refValid reports whether b carries a correct (non-zero) checksum.
func refValid(b []byte) bool {
	c := binary.BigEndian.Uint16(b[6:])
	t := bytes.Clone(b)
	t[6], t[7] = 0, 0
	return c != 0 && c == refChecksum(t)
}

// sameParsed compares two packets field by field, treating a nil and an
// empty payload as equal.
func sameParsed(a, b Packet) bool {
	if len(a.Payload) == 0 && len(b.Payload) == 0 {
		a.Payload, b.Payload = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// canon is p as it comes back from Append then Parse: only the fields the
// type encodes, header flags OptPresent/OptNetwork as Append computes them,
// IPv4-mapped NLAs unmapped, unused NAK list entries zero, and the payload
// nil when empty.
func canon(p Packet) Packet {
	q := Packet{
		SPort: p.SPort, DPort: p.DPort, Type: p.Type, GSI: p.GSI,
		HasFragment: p.HasFragment, HasParityPrm: p.HasParityPrm,
		FIN: p.FIN, SYN: p.SYN, RST: p.RST, Batch: p.Batch,
		NAKListLen: p.NAKListLen,
	}
	copy(q.NAKList[:q.NAKListLen], p.NAKList[:p.NAKListLen])
	if q.HasFragment {
		q.Fragment = p.Fragment
	}
	if q.HasParityPrm {
		q.ParityPrm = p.ParityPrm
	}
	if q.RST {
		q.RSTCode = p.RSTCode & 0x3f
	}
	switch p.Type {
	case TypeSPM:
		q.Seq, q.Trail, q.Lead, q.PathNLA = p.Seq, p.Trail, p.Lead, p.PathNLA.Unmap()
	case TypeODATA, TypeRDATA:
		q.Seq, q.Trail = p.Seq, p.Trail
		if len(p.Payload) > 0 {
			q.Payload = p.Payload
		}
	case TypeNAK, TypeNNAK, TypeNCF:
		q.Seq, q.SourceNLA, q.GroupNLA = p.Seq, p.SourceNLA.Unmap(), p.GroupNLA.Unmap()
	}
	q.Options = p.Options &^ (OptPresent | OptNetwork)
	if q.optionsLen() > 0 {
		q.Options |= OptPresent
		if q.networkOptions() {
			q.Options |= OptNetwork
		}
	}
	return q
}

func mustAppend(t testing.TB, p *Packet) []byte {
	t.Helper()
	b, err := p.Append(nil)
	if err != nil {
		t.Fatalf("Append(%+v): %v", p, err)
	}
	return b
}

// optStart is the offset of the option block of a valid encoded packet.
func optStart(b []byte, p *Packet) int {
	if p.Type == TypeODATA || p.Type == TypeRDATA {
		return HeaderLen + DataHeaderLen
	}
	return len(b) - p.optionsLen()
}

// optOffsets lists the offset of every option (OPT_LENGTH first) of a
// valid packet.
func optOffsets(b []byte, start int) []int {
	total := int(binary.BigEndian.Uint16(b[start+2:]))
	var offs []int
	for off := start; off < start+total; off += int(b[off+1]) {
		offs = append(offs, off)
		if b[off]&0x80 != 0 {
			break
		}
	}
	return offs
}

// ---------------------------------------------------------------------------
// Golden packets.

func TestGoldenChecksums(t *testing.T) {
	for _, g := range goldens {
		b := hx(g.hex)
		if len(b) != g.size {
			t.Errorf("%s: golden is %d bytes, spec says %d", g.name, len(b), g.size)
		}
		if b[5] != g.opts {
			t.Errorf("%s: options byte %#02x, spec says %#02x", g.name, b[5], g.opts)
		}
		if !refValid(b) {
			t.Errorf("%s: golden checksum wrong", g.name)
		}
	}
}

func TestGoldenParse(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			b := hx(g.hex)
			var p Packet
			if err := Parse(b, &p); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !sameParsed(p, g.pkt) {
				t.Fatalf("Parse:\n got %+v\nwant %+v", p, g.pkt)
			}
			if g.pkt.Type == TypeODATA || g.pkt.Type == TypeRDATA {
				// The payload aliases the input.
				if len(p.Payload) > 0 && &p.Payload[0] != &b[len(b)-len(p.Payload)] {
					t.Error("Payload does not alias the input")
				}
			} else if p.Payload != nil {
				t.Error("Payload set on a non-data packet")
			}
		})
	}
}

func TestGoldenAppend(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			want := hx(g.hex)
			p := g.pkt
			if n := p.Len(); n != len(want) {
				t.Errorf("Len = %d, want %d", n, len(want))
			}
			got, err := p.Append(nil)
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Append:\n got %x\nwant %x", got, want)
			}
			// Appending after existing bytes leaves them alone and
			// checksums only the packet.
			prefix := []byte{0xaa, 0xbb, 0xcc}
			got, err = p.Append(bytes.Clone(prefix))
			if err != nil {
				t.Fatalf("Append(prefix): %v", err)
			}
			if !bytes.Equal(got[:3], prefix) || !bytes.Equal(got[3:], want) {
				t.Fatalf("Append(prefix):\n got %x\nwant %x%x", got, prefix, want)
			}
		})
	}
}

// TestGoldenFacts spells out the byte-level facts of research/openpgm.md
// against the golden packets, independently of the table above.
func TestGoldenFacts(t *testing.T) {
	// §1.1: type byte at 4, options at 5, checksum at 6, GSI 8..13, TSDU 14.
	b := goldenBytes("ODATA")
	if b[4] != 0x04 || !bytes.Equal(b[8:14], gsi[:]) || binary.BigEndian.Uint16(b[14:]) != 5 {
		t.Errorf("ODATA header layout: %x", b[:16])
	}
	// §7: OPT_LENGTH (type 0, len 4, total 20), then OPT_FRAGMENT with the
	// E bit, length 16; header options byte 0x01.
	b = goldenBytes("ODATA/FRAGMENT")
	o := b[HeaderLen+DataHeaderLen:]
	if b[5] != 0x01 || o[0] != 0x00 || o[1] != 4 || binary.BigEndian.Uint16(o[2:]) != 20 ||
		o[4] != 0x80|0x01 || o[5] != 16 {
		t.Errorf("fragment options: %x", o[:8])
	}
	// §3.2: OPT_NAK_LIST, options byte 0x03, option length 4+4N.
	b = goldenBytes("NAK/IPv4/list62")
	o = b[36:]
	if b[5] != 0x03 || binary.BigEndian.Uint16(o[2:]) != 256 || o[4] != 0x82 || o[5] != 252 {
		t.Errorf("NAK list options: %x", o[:8])
	}
	// §3.2: OPT_PARITY_PRM flags in byte 3.
	for name, flags := range map[string]byte{
		"SPM/IPv4/PARITY_PRM-proactive": 0x01,
		"SPM/IPv4/PARITY_PRM-ondemand":  0x02,
	} {
		b = goldenBytes(name)
		if b[5] != 0x03 || b[40] != 0x88 || b[41] != 8 || b[43] != flags {
			t.Errorf("%s: %x", name, b[36:])
		}
	}
}

// ---------------------------------------------------------------------------
// Round trips.

type rtCase struct {
	name string
	pkt  Packet
}

func roundTripCases() []rtCase {
	var cs []rtCase
	add := func(name string, p Packet) { cs = append(cs, rtCase{name, p}) }

	// SPM, IPv4 and IPv6, with every option combination we encode.
	spmOpts := []struct {
		name string
		set  func(*Packet)
	}{
		{"plain", func(*Packet) {}},
		{"PARITY_PRM-pro", func(p *Packet) {
			p.HasParityPrm, p.ParityPrm = true, ParityPrm{Proactive: true, GroupSize: 2}
		}},
		{"PARITY_PRM-ond", func(p *Packet) {
			p.HasParityPrm, p.ParityPrm = true, ParityPrm{OnDemand: true, GroupSize: 128}
		}},
		{"PARITY_PRM-both", func(p *Packet) {
			p.HasParityPrm, p.ParityPrm = true, ParityPrm{Proactive: true, OnDemand: true, GroupSize: 64}
		}},
		{"FIN", func(p *Packet) { p.FIN = true }},
		{"SYN", func(p *Packet) { p.SYN = true }},
		{"RST", func(p *Packet) { p.RST, p.RSTCode = true, 0x3f }},
		{"all", func(p *Packet) {
			p.HasParityPrm, p.ParityPrm = true, ParityPrm{OnDemand: true, GroupSize: 4}
			p.FIN, p.SYN, p.RST, p.RSTCode = true, true, true, 1
		}},
	}
	for _, nla := range []netip.Addr{path4, path6} {
		for _, o := range spmOpts {
			p := Packet{SPort: 1, DPort: 2, Type: TypeSPM, GSI: gsi,
				Seq: 0xfffffffe, Trail: 0x80000000, Lead: 0x7fffffff, PathNLA: nla}
			o.set(&p)
			add(fmt.Sprintf("SPM/%v/%s", nla, o.name), p)
		}
	}

	// ODATA / RDATA.
	big := make([]byte, 1448)
	for i := range big {
		big[i] = byte(i)
	}
	frag := Fragment{First: 0xfffffff0, Offset: 2 * 1428, Length: 3*1428 + 3}
	for _, typ := range []Type{TypeODATA, TypeRDATA} {
		add(typ.String()+"/plain", Packet{Type: typ, SPort: 3, DPort: 4, GSI: gsi, Seq: 1, Trail: 1, Payload: []byte("x")})
		add(typ.String()+"/empty", Packet{Type: typ, SPort: 3, DPort: 4, GSI: gsi, Seq: 1, Trail: 1})
		add(typ.String()+"/max_tsdu", Packet{Type: typ, GSI: gsi, Seq: 7, Payload: big})
		add(typ.String()+"/FRAGMENT", Packet{Type: typ, GSI: gsi, Seq: 0xfffffff2, Trail: 0xffffff00,
			HasFragment: true, Fragment: frag, Payload: big[:3]})
		add(typ.String()+"/FRAGMENT+FIN", Packet{Type: typ, GSI: gsi, Seq: 0xfffffff2,
			HasFragment: true, Fragment: frag, FIN: true, Payload: big[:3]})
	}
	for _, o := range []uint8{OptParity, OptParity | OptVarPktLen} {
		add(fmt.Sprintf("RDATA/parity/%#02x", o), Packet{Type: TypeRDATA, Options: o, GSI: gsi, Seq: 0x40, Payload: big[:1430]})
		add(fmt.Sprintf("RDATA/parity/%#02x/FRAGMENT", o), Packet{Type: TypeRDATA, Options: o, GSI: gsi, Seq: 0x41,
			HasFragment: true, Fragment: Fragment{First: 1, Offset: 2, Length: 3}, Payload: big[:100]})
	}

	// NAK / NNAK / NCF with NAK lists of 0, 1 and 62 entries, every NLA
	// family combination, with and without the parity flag.
	nlas := [][2]netip.Addr{{path4, group4}, {path6, group6}, {path4, group6}, {path6, group4}}
	for _, typ := range []Type{TypeNAK, TypeNNAK, TypeNCF} {
		for _, nl := range nlas {
			for _, n := range []int{0, 1, MaxNAKList} {
				for _, o := range []uint8{0, OptParity} {
					p := Packet{Type: typ, Options: o, SPort: 5, DPort: 6, GSI: gsi, Seq: 0x10,
						SourceNLA: nl[0], GroupNLA: nl[1], NAKListLen: n}
					for i := range n {
						p.NAKList[i] = uint32(0x11 + i)
					}
					add(fmt.Sprintf("%v/%v/%v/list%d/%#02x", typ, nl[0], nl[1], n, o), p)
				}
			}
		}
	}

	add("SPMR", Packet{Type: TypeSPMR, SPort: 7, DPort: 8, GSI: gsi})
	add("SPMR/FIN", Packet{Type: TypeSPMR, GSI: gsi, FIN: true})

	// Caller-set flags that Append must override or keep.
	add("ODATA/stray-present", Packet{Type: TypeODATA, Options: OptPresent | OptNetwork, Payload: []byte("y")})
	add("ODATA/reserved-bits", Packet{Type: TypeODATA, Options: 0x3c, Payload: []byte("y")})
	// IPv4-mapped IPv6 addresses go out as IPv4 NLAs.
	add("SPM/mapped", Packet{Type: TypeSPM, PathNLA: netip.MustParseAddr("::ffff:10.0.0.1")})
	add("NAK/mapped", Packet{Type: TypeNAK, SourceNLA: netip.MustParseAddr("::ffff:10.0.0.1"),
		GroupNLA: netip.MustParseAddr("::ffff:239.1.1.1")})
	// Fields the type does not encode are dropped.
	add("NAK/extra-fields", Packet{Type: TypeNAK, SourceNLA: path4, GroupNLA: group4,
		Trail: 9, Lead: 9, PathNLA: path6, Payload: []byte("z")})
	return cs
}

func TestRoundTrip(t *testing.T) {
	for _, c := range roundTripCases() {
		t.Run(c.name, func(t *testing.T) {
			p := c.pkt
			b := mustAppend(t, &p)
			if p.Len() != len(b) {
				t.Errorf("Len = %d, encoded %d", p.Len(), len(b))
			}
			if !refValid(b) {
				t.Error("bad checksum")
			}
			var q Packet
			if err := Parse(b, &q); err != nil {
				t.Fatalf("Parse: %v\n%x", err, b)
			}
			if want := canon(p); !reflect.DeepEqual(canon(q), want) || q.Options != want.Options {
				t.Fatalf("round trip:\n got %+v\nwant %+v", q, want)
			}
			// Encoding the decoded packet gives the same bytes.
			if b2 := mustAppend(t, &q); !bytes.Equal(b, b2) {
				t.Fatalf("re-encode differs:\n%x\n%x", b, b2)
			}
		})
	}
}

func TestRoundTripMappedNLA(t *testing.T) {
	p := Packet{Type: TypeSPM, PathNLA: netip.MustParseAddr("::ffff:10.0.0.1")}
	b := mustAppend(t, &p)
	if len(b) != 36 || p.Len() != 36 {
		t.Fatalf("mapped IPv4 SPM: %d bytes, Len %d, want 36", len(b), p.Len())
	}
	if afi := binary.BigEndian.Uint16(b[28:]); afi != 1 {
		t.Fatalf("AFI %d, want 1", afi)
	}
}

// ---------------------------------------------------------------------------
// Checksum.

func TestChecksumRFC1071(t *testing.T) {
	// RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2, checksum 220d.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if c := Checksum(b); c != 0x220d {
		t.Errorf("Checksum = %#04x, want 0x220d", c)
	}
	// The sum is byte-order independent (§2(B)): swapped input gives the
	// swapped checksum.
	sw := []byte{0x01, 0x00, 0x03, 0xf2, 0xf5, 0xf4, 0xf7, 0xf6}
	if c := Checksum(sw); c != 0x0d22 {
		t.Errorf("Checksum(swapped) = %#04x, want 0x0d22", c)
	}
	for _, c := range []struct {
		in   []byte
		want uint16
	}{
		{nil, 0xffff},                // empty: sum 0, ^0 = ffff
		{[]byte{0}, 0xffff},          // all zero
		{[]byte{0xff, 0xff}, 0xffff}, // sum ffff, ^ = 0 -> sent as ffff
		{[]byte{0xab}, 0x54ff},       // odd: padded to ab00
		{[]byte{0x12, 0x34, 0x56}, ^uint16(0x1234 + 0x5600)},
		{[]byte{0xff, 0xff, 0x00, 0x01}, 0xfffe},    // ffff+0001 = 1_0000 -> 0001
		{bytes.Repeat([]byte{0xff}, 65535), 0x00ff}, // odd length, many carries
	} {
		if got := Checksum(c.in); got != c.want {
			t.Errorf("Checksum(% x...) = %#04x, want %#04x", c.in[:min(len(c.in), 4)], got, c.want)
		}
		if got := refChecksum(c.in); got != c.want {
			t.Errorf("refChecksum(% x...) = %#04x, want %#04x", c.in[:min(len(c.in), 4)], got, c.want)
		}
	}
}

func TestChecksumAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 300+8)
	for n := 0; n <= 300; n++ {
		for range 20 {
			for i := range buf {
				buf[i] = byte(r.Uint32())
			}
			// Also at odd alignments of the underlying array.
			for _, off := range []int{0, 1, 3} {
				b := buf[off : off+n]
				if got, want := Checksum(b), refChecksum(b); got != want {
					t.Fatalf("len %d off %d: Checksum %#04x, reference %#04x", n, off, got, want)
				}
			}
		}
	}
	// Saturated inputs stress the carry handling.
	for _, fill := range []byte{0xff, 0xfe, 0x80, 0x01} {
		for n := 0; n <= 300; n++ {
			b := bytes.Repeat([]byte{fill}, n)
			if got, want := Checksum(b), refChecksum(b); got != want {
				t.Fatalf("fill %#x len %d: Checksum %#04x, reference %#04x", fill, n, got, want)
			}
		}
	}
	for _, n := range []int{1400, 1500, 9000, 65535} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		if got, want := Checksum(b), refChecksum(b); got != want {
			t.Fatalf("len %d: Checksum %#04x, reference %#04x", n, got, want)
		}
	}
}

func TestChecksumNeverZero(t *testing.T) {
	// A packet whose data sums to ffff must be sent with ffff, not 0
	// ("no checksum"), and still verify.
	p := Packet{Type: TypeODATA, Payload: make([]byte, 2)}
	b := mustAppend(t, &p)
	b[6], b[7] = 0, 0
	s := ^refChecksum(b) // the one's complement sum of the packet
	// A payload word of ^s brings the sum to 0xffff, so the checksum is 0.
	binary.BigEndian.PutUint16(b[len(b)-2:], ^s)
	if refChecksum(b) != 0xffff {
		t.Fatalf("construction failed: %#04x", refChecksum(b))
	}
	SetChecksum(b)
	if c := binary.BigEndian.Uint16(b[6:]); c != 0xffff {
		t.Fatalf("SetChecksum stored %#04x, want 0xffff", c)
	}
	var q Packet
	if err := Parse(b, &q); err != nil {
		t.Fatalf("Parse: %v", err)
	}
}

func TestZeroChecksum(t *testing.T) {
	for _, g := range goldens {
		b := hx(g.hex)
		b[6], b[7] = 0, 0
		var p Packet
		err := Parse(b, &p)
		switch g.pkt.Type {
		case TypeODATA, TypeRDATA:
			if err != ErrNoChecksum {
				t.Errorf("%s with checksum 0: %v, want ErrNoChecksum", g.name, err)
			}
		default: // SPM, NAK, NNAK, NCF, SPMR: 0 means "none"
			if err != nil || !sameParsed(p, g.pkt) {
				t.Errorf("%s with checksum 0: %v", g.name, err)
			}
		}
	}
}

func TestBitFlips(t *testing.T) {
	for _, g := range goldens {
		orig := hx(g.hex)
		for i := range len(orig) * 8 {
			b := bytes.Clone(orig)
			b[i/8] ^= 0x80 >> (i % 8)
			var p Packet
			err := Parse(b, &p)
			switch {
			case i/8 == 4 && i%8 < 2:
				if err != ErrVersion {
					t.Errorf("%s: version bit %d: %v", g.name, i, err)
				}
			case i/8 == 6 || i/8 == 7:
				// Flipping the only set bit of the checksum leaves 0.
				if binary.BigEndian.Uint16(b[6:]) == 0 && g.pkt.Type != TypeODATA && g.pkt.Type != TypeRDATA {
					break
				}
				if err != ErrChecksum && err != ErrNoChecksum {
					t.Errorf("%s: bit %d: %v, want ErrChecksum", g.name, i, err)
				}
			default:
				if err != ErrChecksum {
					t.Errorf("%s: bit %d: %v, want ErrChecksum", g.name, i, err)
				}
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Options.

// OpenPGM leaves option byte 2 uninitialised (0x14, 0xB3 seen on the wire)
// and nothing reads the U bit: the packet must parse exactly as before.
func TestOptionByte2Ignored(t *testing.T) {
	for _, g := range goldens {
		if g.pkt.Options&OptPresent == 0 {
			continue
		}
		orig := hx(g.hex)
		p := g.pkt
		for _, garbage := range []byte{0x14, 0xb3, 0xff, 0x08, 0x04} {
			b := bytes.Clone(orig)
			// Not OPT_LENGTH: its bytes 2-3 are the total.
			for _, off := range optOffsets(b, optStart(b, &p))[1:] {
				b[off+2] = garbage
			}
			refFix(b)
			var q Packet
			if err := Parse(b, &q); err != nil || !sameParsed(q, g.pkt) {
				t.Errorf("%s with byte 2 = %#02x: %v\n got %+v\nwant %+v", g.name, garbage, err, q, g.pkt)
			}
		}
		// U bit (0x80 in byte 3) on every option but OPT_LENGTH, whose
		// byte 3 is part of the total.
		b := bytes.Clone(orig)
		for _, off := range optOffsets(b, optStart(b, &p))[1:] {
			b[off+3] |= 0x80
		}
		refFix(b)
		var q Packet
		if err := Parse(b, &q); err != nil || !sameParsed(q, g.pkt) {
			t.Errorf("%s with U bits: %v\n got %+v\nwant %+v", g.name, err, q, g.pkt)
		}
	}
}

func TestUnknownOptionsSkipped(t *testing.T) {
	unknown := "03 08 00 00 00000001" + // OPT_JOIN
		"04 0c 00 00 00000001 00000002" + // OPT_NAK_BO_IVL
		"07 0c 00 00 0001 0000 0a000001" + // OPT_REDIRECT
		"10 18 00 00" + "0000000000000000000000000000000000000000" + // OPT_CR
		"7f 04 00 00" // OPT_INVALID
	const unknownLen = 8 + 12 + 12 + 24 + 4
	const invalidEnd = "ff 04 00 00" // OPT_INVALID with the E bit
	for _, c := range []struct {
		name string
		hex  string
		want Packet
	}{
		{
			name: "ODATA",
			hex: "2710 1d4c 04 01 0000 010203040506 0002 00000064 0000005a" +
				fmt.Sprintf("00 04 %04x", 4+unknownLen+4) + unknown + "8d 04 00 00" + "6869",
			want: Packet{SPort: 10000, DPort: 7500, Type: TypeODATA, Options: 0x01, GSI: gsi,
				Seq: 100, Trail: 90, SYN: true, Payload: []byte("hi")},
		},
		{
			name: "ODATA/FRAGMENT",
			hex: "2710 1d4c 04 01 0000 010203040506 0002 00000064 0000005a" +
				fmt.Sprintf("00 04 %04x", 4+16+unknownLen+4) +
				"01 10 00 00 00000063 00000010 00000020" + unknown + invalidEnd + "6869",
			want: Packet{SPort: 10000, DPort: 7500, Type: TypeODATA, Options: 0x01, GSI: gsi,
				Seq: 100, Trail: 90, HasFragment: true, Fragment: Fragment{First: 99, Offset: 16, Length: 32},
				Payload: []byte("hi")},
		},
		{
			name: "NAK",
			hex: "1d4c 2710 08 03 0000 010203040506 0000 00000005 0001 0000 c0a80102 0001 0000 efc00001" +
				fmt.Sprintf("00 04 %04x", 4+unknownLen+8) + unknown + "82 08 00 00 00000009",
			want: Packet{SPort: 7500, DPort: 10000, Type: TypeNAK, Options: 0x03, GSI: gsi,
				Seq: 5, SourceNLA: path4, GroupNLA: group4, NAKListLen: 1, NAKList: nakList(9)},
		},
		{
			name: "SPM/JOIN-only",
			hex: "2710 1d4c 00 01 0000 010203040506 0000 00000001 00000000 ffffffff 0001 0000 c0a80102" +
				"00 04 000c 83 08 00 00 00000001",
			want: Packet{SPort: 10000, DPort: 7500, Type: TypeSPM, Options: 0x01, GSI: gsi,
				Seq: 1, Lead: 0xffffffff, PathNLA: path4},
		},
		{
			// OPT_LENGTH alone, with the E bit.
			name: "ODATA/OPT_LENGTH-only",
			hex:  "2710 1d4c 04 01 0000 010203040506 0001 00000001 00000000 80 04 0004 21",
			want: Packet{SPort: 10000, DPort: 7500, Type: TypeODATA, Options: 0x01, GSI: gsi,
				Seq: 1, Payload: []byte("!")},
		},
		{
			// Padding between the last option and the OPT_LENGTH total is
			// skipped: the total says where the payload starts.
			name: "ODATA/padding",
			hex:  "2710 1d4c 04 01 0000 010203040506 0001 00000001 00000000 00 04 000c 8e 04 00 00 00000000 21",
			want: Packet{SPort: 10000, DPort: 7500, Type: TypeODATA, Options: 0x01, GSI: gsi,
				Seq: 1, FIN: true, Payload: []byte("!")},
		},
		{
			// Sixteen options including OPT_LENGTH is the limit.
			name: "ODATA/16-options",
			hex: "2710 1d4c 04 01 0000 010203040506 0000 00000001 00000000 00 04 0040" +
				repeatHex("7f 04 00 00", 14) + "ff 04 00 00",
			want: Packet{SPort: 10000, DPort: 7500, Type: TypeODATA, Options: 0x01, GSI: gsi, Seq: 1},
		},
		{
			// A repeated OPT_NAK_LIST: the first one wins, as in OpenPGM.
			name: "NAK/two-lists",
			hex: "1d4c 2710 08 03 0000 010203040506 0000 00000005 0001 0000 c0a80102 0001 0000 efc00001" +
				"00 04 0018 02 0c 00 00 00000007 00000008 82 08 00 00 00000009",
			want: Packet{SPort: 7500, DPort: 10000, Type: TypeNAK, Options: 0x03, GSI: gsi,
				Seq: 5, SourceNLA: path4, GroupNLA: group4, NAKListLen: 2, NAKList: nakList(7, 8)},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := refFix(hx(c.hex))
			var p Packet
			if err := Parse(b, &p); err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !sameParsed(p, c.want) {
				t.Fatalf("Parse:\n got %+v\nwant %+v", p, c.want)
			}
		})
	}
}

func repeatHex(h string, n int) string {
	s := ""
	for range n {
		s += h
	}
	return s
}

// ---------------------------------------------------------------------------
// Malformed input.

func TestTruncations(t *testing.T) {
	for _, g := range goldens {
		orig := hx(g.hex)
		for n := range len(orig) {
			for _, fix := range []bool{false, true} {
				b := bytes.Clone(orig[:n])
				if fix && n >= HeaderLen {
					refFix(b)
				}
				var p Packet
				if err := Parse(b, &p); err == nil {
					t.Errorf("%s truncated to %d (checksum fixed %v): no error", g.name, n, fix)
				}
			}
		}
	}
}

// mutate copies golden packet name, applies f and fixes the checksum.
func mutate(name string, f func(b []byte) []byte) []byte {
	return refFix(f(goldenBytes(name)))
}

func TestMalformed(t *testing.T) {
	const nak4Opts = 36 // offset of the options of an IPv4 NAK
	const dataOpts = HeaderLen + DataHeaderLen
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrShort},
		{"header-15", goldenBytes("SPMR")[:15], ErrShort},
		{"too-long", refFix(append(goldenBytes("SPMR"), make([]byte, 65536-16)...)), ErrTooLong},
		{"version-1", mutate("SPM/IPv4", func(b []byte) []byte { b[4] |= 0x40; return b }), ErrVersion},
		{"version-2", mutate("ODATA", func(b []byte) []byte { b[4] |= 0x80; return b }), ErrVersion},
		{"version-3", mutate("NAK/IPv4", func(b []byte) []byte { b[4] |= 0xc0; return b }), ErrVersion},
		{"checksum-0-ODATA", func() []byte { b := goldenBytes("ODATA"); b[6], b[7] = 0, 0; return b }(), ErrNoChecksum},
		{"checksum-0-RDATA", func() []byte { b := goldenBytes("RDATA"); b[6], b[7] = 0, 0; return b }(), ErrNoChecksum},
		{"checksum-flip", func() []byte { b := goldenBytes("NAK/IPv4"); b[20] ^= 1; return b }(), ErrChecksum},
		{"checksum-wrong", func() []byte { b := goldenBytes("SPMR"); b[7]++; return b }(), ErrChecksum},

		// Lengths of data packets.
		{"ODATA-trailing", mutate("ODATA", func(b []byte) []byte { return append(b, 0) }), ErrLength},
		{"ODATA-trailing-fragment", mutate("ODATA/FRAGMENT", func(b []byte) []byte { return append(b, 0) }), ErrLength},
		{"ODATA-tsdu-long", mutate("ODATA", func(b []byte) []byte { b[15]++; return b }), ErrLength},
		{"ODATA-tsdu-short", mutate("ODATA", func(b []byte) []byte { b[15]--; return b }), ErrLength},
		{"ODATA-options-not-flagged", mutate("ODATA/FRAGMENT", func(b []byte) []byte { b[5] = 0; return b }), ErrLength},
		{"ODATA-short-header", mutate("ODATA/empty", func(b []byte) []byte { return b[:23] }), ErrShort},

		// Option walking.
		{"OPT_LENGTH-missing", mutate("ODATA/FRAGMENT", func(b []byte) []byte { b[dataOpts] = 0x01; return b }), ErrOptions},
		{"OPT_LENGTH-len-5", mutate("ODATA/FRAGMENT", func(b []byte) []byte { b[dataOpts+1] = 5; return b }), ErrOptions},
		{"OPT_LENGTH-total-big", mutate("ODATA/FRAGMENT", func(b []byte) []byte { b[dataOpts+3] = 25; return b }), ErrOptions},
		{"OPT_LENGTH-total-huge", mutate("NAK/IPv4/list1", func(b []byte) []byte { b[nak4Opts+2] = 0xff; return b }), ErrOptions},
		{"OPT_LENGTH-total-small", mutate("ODATA/FRAGMENT", func(b []byte) []byte { b[dataOpts+3] = 16; return b }), ErrOptions},
		{"OPT_LENGTH-total-4", mutate("NAK/IPv4/list1", func(b []byte) []byte { b[nak4Opts+3] = 4; return b }), ErrOptions},
		{"OPT_LENGTH-total-3", mutate("NAK/IPv4/list1", func(b []byte) []byte { b[nak4Opts+3] = 3; return b }), ErrOptions},
		{"OPT_LENGTH-only-3-bytes", mutate("SPMR", func(b []byte) []byte { b[5] = 1; return append(b, 0x80, 4, 0) }), ErrShort},
		{"option-len-0", mutate("NAK/IPv4/list1", func(b []byte) []byte { b[nak4Opts+5] = 0; return b }), ErrOptions},
		{"option-len-3", mutate("SPM/IPv4/FIN", func(b []byte) []byte { b[41] = 3; return b }), ErrOptions},
		{"option-len-past-end", mutate("SPM/IPv4/FIN", func(b []byte) []byte { b[41] = 8; return b }), ErrOptions},
		{"option-len-past-end-2", mutate("NAK/IPv4/list1", func(b []byte) []byte { b[nak4Opts+5] = 12; return b }), ErrOptions},
		{"no-E-bit", mutate("SPM/IPv4/FIN", func(b []byte) []byte { b[40] &^= 0x80; return b }), ErrOptions},
		{"17-options", refFix(hx("2710 1d4c 04 01 0000 010203040506 0000 00000001 00000000 00 04 0044" +
			repeatHex("7f 04 00 00", 15) + "ff 04 00 00")), ErrOptions},
		{"17-options-SPM", refFix(hx("2710 1d4c 00 01 0000 010203040506 0000 00000001 00000000 ffffffff 0001 0000 c0a80102 00 04 0044" +
			repeatHex("0e 04 00 00", 15) + "8e 04 00 00")), ErrOptions},

		// OPT_NAK_LIST.
		{"NAK-list-len-not-4n", refFix(hx("1d4c 2710 08 03 0000 010203040506 0000 00000005 0001 0000 c0a80102 0001 0000 efc00001" +
			"00 04 000d 82 09 00 00 00000006 00")), ErrNAKList},
		{"NAK-list-len-6", refFix(hx("1d4c 2710 08 03 0000 010203040506 0000 00000005 0001 0000 c0a80102 0001 0000 efc00001" +
			"00 04 000c 82 06 00 00 0000 0000")), ErrNAKList},
		// 63 entries would need option length 256, which wraps to 0.
		{"NAK-list-63", refFix(hx("1d4c 2710 08 03 0000 010203040506 0000 00000005 0001 0000 c0a80102 0001 0000 efc00001" +
			"00 04 0104 82 00 00 00" + repeatHex("00000006", 63))), ErrOptions},
		{"NAK-list-len-255", refFix(hx("1d4c 2710 08 03 0000 010203040506 0000 00000005 0001 0000 c0a80102 0001 0000 efc00001" +
			"00 04 0103 82 ff 00 00" + repeatHex("00000006", 62) + "000000")), ErrNAKList},
		{"NAK-list-second-bad", refFix(hx("1d4c 2710 08 03 0000 010203040506 0000 00000005 0001 0000 c0a80102 0001 0000 efc00001" +
			"00 04 0011 02 08 00 00 00000007 82 05 00 00 00")), ErrNAKList},

		// NLAs.
		{"SPM-AFI-0", mutate("SPM/IPv4", func(b []byte) []byte { b[29] = 0; return b }), ErrNLA},
		{"SPM-AFI-3", mutate("SPM/IPv4", func(b []byte) []byte { b[29] = 3; return b }), ErrNLA},
		{"SPM-AFI-0x0101", mutate("SPM/IPv4", func(b []byte) []byte { b[28] = 1; return b }), ErrNLA},
		{"SPM-AFI-IPv6-short", mutate("SPM/IPv4", func(b []byte) []byte { b[29] = 2; return b }), ErrShort},
		{"NAK-source-AFI", mutate("NAK/IPv4", func(b []byte) []byte { b[21] = 7; return b }), ErrNLA},
		{"NAK-group-AFI", mutate("NAK/IPv4", func(b []byte) []byte { b[29] = 0; return b }), ErrNLA},
		{"NAK-group-AFI-IPv6-short", mutate("NAK/IPv4", func(b []byte) []byte { b[29] = 2; return b }), ErrShort},
		{"NAK-no-sqn", mutate("SPMR", func(b []byte) []byte { b[4] = byte(TypeNAK); return append(b, 0, 0, 0) }), ErrShort},
		{"SPM-no-body", mutate("SPMR", func(b []byte) []byte { b[4] = byte(TypeSPM); return append(b, make([]byte, 11)...) }), ErrShort},

		// OPT_FRAGMENT (the golden: seq 11, first 10, offset 1428, length 3000, TSDU 4).
		{"FRAGMENT-len-12", refFix(hx("2710 1d4c 04 01 0000 010203040506 0004 0000000b 00000000" +
			"00 04 0010 81 0c 00 00 0000000a 00000594 deadbeef")), ErrFragment},
		{"FRAGMENT-APDU-lt-TSDU", mutate("ODATA/FRAGMENT", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[dataOpts+16:], 3)
			binary.BigEndian.PutUint32(b[dataOpts+12:], 0)
			return b
		}), ErrFragment},
		{"FRAGMENT-APDU-gt-65535", mutate("ODATA/FRAGMENT", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[dataOpts+16:], 65536)
			return b
		}), ErrFragment},
		{"FRAGMENT-offset-beyond-APDU", mutate("ODATA/FRAGMENT", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[dataOpts+12:], 2997)
			return b
		}), ErrFragment},
		{"FRAGMENT-offset-overflow", mutate("ODATA/FRAGMENT", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[dataOpts+12:], 0xfffffffe)
			return b
		}), ErrFragment},
		{"FRAGMENT-first-after-seq", mutate("ODATA/FRAGMENT", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[dataOpts+8:], 12)
			return b
		}), ErrFragment},
		{"FRAGMENT-first-far-after-seq", mutate("ODATA/FRAGMENT", func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[dataOpts+8:], 11+0x7fffffff)
			return b
		}), ErrFragment},

		// OPT_PARITY_PRM (SPM golden: option at 40, TGS at 44).
		{"PARITY_PRM-len-12", refFix(hx("2710 1d4c 00 03 0000 010203040506 0000 0000002a 00000000 ffffffff 0001 0000 c0a80102" +
			"00 04 0010 88 0c 00 01 00000008 00000000")), ErrParityPrm},
		{"PARITY_PRM-no-flags", mutate("SPM/IPv4/PARITY_PRM-proactive", func(b []byte) []byte { b[43] = 0; return b }), ErrParityPrm},
		{"PARITY_PRM-only-U", mutate("SPM/IPv4/PARITY_PRM-proactive", func(b []byte) []byte { b[43] = 0x80; return b }), ErrParityPrm},
		{"PARITY_PRM-TGS-1", mutate("SPM/IPv4/PARITY_PRM-proactive", func(b []byte) []byte { b[47] = 1; return b }), ErrParityPrm},
		{"PARITY_PRM-TGS-129", mutate("SPM/IPv4/PARITY_PRM-proactive", func(b []byte) []byte { b[47] = 129; return b }), ErrParityPrm},
		{"PARITY_PRM-TGS-huge", mutate("SPM/IPv4/PARITY_PRM-proactive", func(b []byte) []byte { b[44] = 1; return b }), ErrParityPrm},

		// Unsupported types.
		{"POLL", mutate("SPMR", func(b []byte) []byte { b[4] = byte(TypePOLL); return b }), ErrUnsupported},
		{"POLR", mutate("SPMR", func(b []byte) []byte { b[4] = byte(TypePOLR); return b }), ErrUnsupported},
		{"ACK", mutate("SPMR", func(b []byte) []byte { b[4] = byte(TypeACK); return b }), ErrUnsupported},
		{"type-0x03", mutate("SPMR", func(b []byte) []byte { b[4] = 0x03; return b }), ErrUnsupported},
		{"type-0x3f", mutate("SPMR", func(b []byte) []byte { b[4] = 0x3f; return b }), ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var p Packet
			p.Seq = 12345 // Parse must reset the packet even on error
			err := Parse(c.b, &p)
			if err != c.want {
				t.Fatalf("Parse = %v, want %v", err, c.want)
			}
			if !errors.Is(err, c.want) {
				t.Fatal("errors.Is failed")
			}
			if p.Seq == 12345 {
				t.Error("Parse did not reset the packet")
			}
		})
	}
}

func TestSingleFragmentAccepted(t *testing.T) {
	// OPT_FRAGMENT with APDU length == TSDU is legal on the wire (OpenPGM's
	// receiver crashes on it, so we never send it, but we accept it).
	p := Packet{Type: TypeODATA, Seq: 5, HasFragment: true,
		Fragment: Fragment{First: 5, Length: 3}, Payload: []byte("abc")}
	b := mustAppend(t, &p)
	var q Packet
	if err := Parse(b, &q); err != nil {
		t.Fatal(err)
	}
}

func TestUnsupportedHeaderFilled(t *testing.T) {
	b := mutate("SPMR", func(b []byte) []byte { b[4] = byte(TypePOLL); b[5] = 0x80; return b })
	var p Packet
	if err := Parse(b, &p); err != ErrUnsupported {
		t.Fatalf("Parse = %v", err)
	}
	want := Packet{SPort: 7500, DPort: 10000, Type: TypePOLL, Options: 0x80, GSI: gsi}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("got %+v\nwant %+v", p, want)
	}
}

// ---------------------------------------------------------------------------
// Append errors.

func TestAppendErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		p    Packet
		want error
	}{
		{"SPM-no-NLA", Packet{Type: TypeSPM}, ErrNLA},
		{"NAK-no-source", Packet{Type: TypeNAK, GroupNLA: group4}, ErrNLA},
		{"NCF-no-group", Packet{Type: TypeNCF, SourceNLA: path4}, ErrNLA},
		{"NNAK-no-NLA", Packet{Type: TypeNNAK}, ErrNLA},
		{"POLL", Packet{Type: TypePOLL}, ErrUnsupported},
		{"POLR", Packet{Type: TypePOLR}, ErrUnsupported},
		{"ACK", Packet{Type: TypeACK}, ErrUnsupported},
		{"type-0x03", Packet{Type: 0x03}, ErrUnsupported},
		{"version-bits", Packet{Type: TypeODATA | 0x40}, ErrUnsupported},
		{"NAK-list-63", Packet{Type: TypeNAK, SourceNLA: path4, GroupNLA: group4, NAKListLen: 63}, ErrNAKList},
		{"NAK-list-negative", Packet{Type: TypeNAK, SourceNLA: path4, GroupNLA: group4, NAKListLen: -1}, ErrNAKList},
		{"ODATA-too-long", Packet{Type: TypeODATA, Payload: make([]byte, 65535-24+1)}, ErrTooLong},
		{"ODATA-too-long-fragment", Packet{Type: TypeODATA, HasFragment: true, Payload: make([]byte, 65535-44+1)}, ErrTooLong},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := []byte{1, 2, 3}
			out, err := c.p.Append(in)
			if err != c.want {
				t.Fatalf("Append = %v, want %v", err, c.want)
			}
			if !bytes.Equal(out, []byte{1, 2, 3}) {
				t.Fatalf("Append changed the buffer on error: %x", out)
			}
		})
	}
	// The largest encodable packet.
	p := Packet{Type: TypeODATA, Payload: make([]byte, 65535-24)}
	b, err := p.Append(nil)
	if err != nil || len(b) != 65535 {
		t.Fatalf("65535-byte ODATA: %v, %d bytes", err, len(b))
	}
	var q Packet
	if err := Parse(b, &q); err != nil {
		t.Fatalf("Parse 65535-byte ODATA: %v", err)
	}
}

// ---------------------------------------------------------------------------
// RDATA rewriting.

func TestRewriteAsRDATA(t *testing.T) {
	for _, p := range []Packet{
		goldenPacket("ODATA"),
		goldenPacket("ODATA/empty"),
		goldenPacket("ODATA/FRAGMENT"),
		{Type: TypeODATA, SPort: 1, DPort: 2, Seq: 0xffffffff, Trail: 3, FIN: true, Payload: bytes.Repeat([]byte{0xee}, 1001)},
		goldenPacket("RDATA"),
	} {
		b := mustAppend(t, &p)
		RewriteAsRDATA(b, 0xabcdef01)
		if !refValid(b) {
			t.Fatalf("%v: bad checksum after RewriteAsRDATA", p.Type)
		}
		var q Packet
		if err := Parse(b, &q); err != nil {
			t.Fatalf("Parse: %v", err)
		}
		want := canon(p)
		want.Type, want.Trail = TypeRDATA, 0xabcdef01
		if !reflect.DeepEqual(canon(q), want) || q.Options != want.Options {
			t.Fatalf("RewriteAsRDATA: got seq %d trail %d options %#x, want seq %d trail %d options %#x",
				q.Seq, q.Trail, q.Options, want.Seq, want.Trail, want.Options)
		}
		// Same bytes as encoding the RDATA directly.
		if b2 := mustAppend(t, &want); !bytes.Equal(b, b2) {
			t.Fatalf("RewriteAsRDATA bytes differ from Append:\n%x\n%x", b, b2)
		}
	}
}

func TestSetTrail(t *testing.T) {
	p := goldenPacket("ODATA/FRAGMENT")
	b := mustAppend(t, &p)
	SetTrail(b, 77)
	var q Packet
	if err := Parse(b, &q); err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := p
	want.Trail = 77
	if !sameParsed(q, want) {
		t.Fatalf("SetTrail:\n got %+v\nwant %+v", q, want)
	}
}

// ---------------------------------------------------------------------------
// Allocation.

func TestParseNoAlloc(t *testing.T) {
	var p Packet
	for _, g := range goldens {
		b := hx(g.hex)
		if n := testing.AllocsPerRun(100, func() { _ = Parse(b, &p) }); n != 0 {
			t.Errorf("%s: Parse allocates %v times", g.name, n)
		}
	}
	// Error paths too.
	bad := mutate("NAK/IPv4", func(b []byte) []byte { b[21] = 7; return b })
	if n := testing.AllocsPerRun(100, func() { _ = Parse(bad, &p) }); n != 0 {
		t.Errorf("Parse error path allocates %v times", n)
	}
}

func TestAppendNoAllocWithRoom(t *testing.T) {
	p := goldenPacket("NAK/IPv4/list62")
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() { _, _ = p.Append(buf[:0]) }); n != 0 {
		t.Errorf("Append into a big enough buffer allocates %v times", n)
	}
}

// ---------------------------------------------------------------------------
// Small API pieces.

func TestTSI(t *testing.T) {
	for _, c := range []struct {
		name string
		port uint16
	}{
		{"SPM/IPv4", 10000}, {"ODATA", 10000}, {"RDATA", 10000}, {"NCF/IPv4", 10000},
		{"NAK/IPv4", 10000}, {"NNAK/IPv4", 10000}, {"SPMR", 10000},
	} {
		p := goldenPacket(c.name)
		if got := p.TSI(); got != (TSI{GSI: gsi, Port: c.port}) {
			t.Errorf("%s: TSI = %v", c.name, got)
		}
	}
	if s := (TSI{GSI: gsi, Port: 10000}).String(); s != "1.2.3.4.5.6.10000" {
		t.Errorf("TSI.String = %q", s)
	}
}

func TestNAKSeqs(t *testing.T) {
	p := goldenPacket("NAK/IPv4/list62")
	got := p.NAKSeqs(nil)
	if len(got) != MaxNAKSeqs || got[0] != 5 || got[1] != 6 || got[62] != 67 {
		t.Fatalf("NAKSeqs = %v", got)
	}
	p = goldenPacket("NAK/IPv4")
	if got := p.NAKSeqs([]uint32{1}); !reflect.DeepEqual(got, []uint32{1, 5}) {
		t.Fatalf("NAKSeqs = %v", got)
	}
}

func TestTypeString(t *testing.T) {
	for typ, want := range map[Type]string{
		TypeSPM: "SPM", TypePOLL: "POLL", TypePOLR: "POLR", TypeODATA: "ODATA", TypeRDATA: "RDATA",
		TypeNAK: "NAK", TypeNNAK: "NNAK", TypeNCF: "NCF", TypeSPMR: "SPMR", TypeACK: "ACK",
		0x03: "Type(0x03)", 0x3f: "Type(0x3f)",
	} {
		if got := typ.String(); got != want {
			t.Errorf("Type(%d).String() = %q, want %q", uint8(typ), got, want)
		}
	}
	for _, typ := range []Type{TypeSPM, TypePOLL, TypeODATA, TypeRDATA, TypeNCF} {
		if !typ.Downstream() {
			t.Errorf("%v not downstream", typ)
		}
	}
	for _, typ := range []Type{TypePOLR, TypeNAK, TypeNNAK, TypeSPMR, TypeACK} {
		if typ.Downstream() {
			t.Errorf("%v downstream", typ)
		}
	}
}

func TestErrorStrings(t *testing.T) {
	for _, e := range []error{ErrShort, ErrVersion, ErrUnsupported, ErrChecksum, ErrNoChecksum,
		ErrLength, ErrNLA, ErrOptions, ErrNAKList, ErrFragment, ErrParityPrm, ErrTooLong} {
		if s := e.Error(); len(s) < 6 || s[:5] != "pgm: " {
			t.Errorf("error string %q", s)
		}
	}
}
