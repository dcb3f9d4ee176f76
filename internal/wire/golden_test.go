package wire

import (
	"encoding/hex"
	"net/netip"
	"strings"
)

// Golden packets, written byte by byte from the tables in
// research/openpgm.md §1–§3 and §7 (never produced by Append). Checksums
// were computed with refChecksum and are checked by TestGoldenChecksums.
//
// Ports: the source's TSI port is 10000 (0x2710) and the data-destination
// port 7500 (0x1d4c). Downstream packets (SPM, ODATA, RDATA, NCF) carry
// sport=TSI port, dport=7500; upstream ones (NAK, NNAK, SPMR) the reverse.
// GSI 01:02:03:04:05:06 everywhere.

var (
	gsi = GSI{1, 2, 3, 4, 5, 6}

	path4  = netip.MustParseAddr("192.168.1.2") // c0a80102
	group4 = netip.MustParseAddr("239.192.0.1") // efc00001
	path6  = netip.MustParseAddr("2001:db8::2")
	group6 = netip.MustParseAddr("ff15::1")
)

type golden struct {
	name string
	hex  string
	size int   // expected total length, from the spec tables
	opts uint8 // expected header options byte (byte 5)
	pkt  Packet
}

// hx decodes hex written with spaces, newlines and '|' for readability.
func hx(s string) []byte {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\n', '\t', '|':
			return -1
		}
		return r
	}, s)
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// nakList62 is sqn 6..67, the 62 entries of the largest OPT_NAK_LIST.
var nakList62 = func() (l [MaxNAKList]uint32) {
	for i := range l {
		l[i] = uint32(6 + i)
	}
	return
}()

func nakList(s ...uint32) (l [MaxNAKList]uint32) {
	copy(l[:], s)
	return
}

var goldens = []golden{
	{
		// §2.1: a plain IPv4 SPM is 36 bytes. Empty window: trail 0, lead 0xffffffff.
		name: "SPM/IPv4", size: 36, opts: 0x00,
		hex: `2710 1d4c 00 00 f0c1 010203040506 0000
		      0000002a 00000000 ffffffff
		      0001 0000 c0a80102`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeSPM, GSI: gsi,
			Seq: 42, Trail: 0, Lead: 0xffffffff, PathNLA: path4},
	},
	{
		// §2.1: 48 bytes with an IPv6 path NLA (AFI 2).
		name: "SPM/IPv6", size: 48, opts: 0x00,
		hex: `2710 1d4c 00 00 83a7 010203040506 0000
		      00000007 00000064 000000c8
		      0002 0000 20010db8000000000000000000000002`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeSPM, GSI: gsi,
			Seq: 7, Trail: 100, Lead: 200, PathNLA: path6},
	},
	{
		// §3.2: OPT_PARITY_PRM, options byte 0x03, byte 3 = 0x01 pro-active.
		name: "SPM/IPv4/PARITY_PRM-proactive", size: 48, opts: 0x03,
		hex: `2710 1d4c 00 03 689d 010203040506 0000
		      0000002a 00000000 ffffffff
		      0001 0000 c0a80102
		      00 04 000c | 88 08 00 01 00000008`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeSPM, Options: 0x03, GSI: gsi,
			Seq: 42, Lead: 0xffffffff, PathNLA: path4,
			HasParityPrm: true, ParityPrm: ParityPrm{Proactive: true, GroupSize: 8}},
	},
	{
		// Byte 3 = 0x02 on-demand (OpenPGM numbering; the RFC figure swaps them).
		name: "SPM/IPv4/PARITY_PRM-ondemand", size: 48, opts: 0x03,
		hex: `2710 1d4c 00 03 6894 010203040506 0000
		      0000002a 00000000 ffffffff
		      0001 0000 c0a80102
		      00 04 000c | 88 08 00 02 00000010`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeSPM, Options: 0x03, GSI: gsi,
			Seq: 42, Lead: 0xffffffff, PathNLA: path4,
			HasParityPrm: true, ParityPrm: ParityPrm{OnDemand: true, GroupSize: 16}},
	},
	{
		// OPT_FIN as sent by pgm_close: options byte 0x01.
		name: "SPM/IPv4/FIN", size: 44, opts: 0x01,
		hex: `2710 1d4c 00 01 62af 010203040506 0000
		      0000002b 00000000 ffffffff
		      0001 0000 c0a80102
		      00 04 0008 | 8e 04 00 00`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeSPM, Options: 0x01, GSI: gsi,
			Seq: 43, Lead: 0xffffffff, PathNLA: path4, FIN: true},
	},
	{
		name: "SPM/IPv4/SYN", size: 44, opts: 0x01,
		hex: `2710 1d4c 00 01 63da 010203040506 0000
		      00000000 00000000 ffffffff
		      0001 0000 c0a80102
		      00 04 0008 | 8d 04 00 00`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeSPM, Options: 0x01, GSI: gsi,
			Lead: 0xffffffff, PathNLA: path4, SYN: true},
	},
	{
		// OPT_RST: byte 3 carries U, N and a 6-bit error code.
		name: "SPM/IPv4/RST", size: 44, opts: 0x01,
		hex: `2710 1d4c 00 01 61d5 010203040506 0000
		      00000000 00000000 ffffffff
		      0001 0000 c0a80102
		      00 04 0008 | 8f 04 00 05`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeSPM, Options: 0x01, GSI: gsi,
			Lead: 0xffffffff, PathNLA: path4, RST: true, RSTCode: 5},
	},
	{
		// IPv6 SPM with two options: PARITY_PRM (both flags, k=128), then FIN|E.
		name: "SPM/IPv6/PARITY_PRM+FIN", size: 64, opts: 0x03,
		hex: `2710 1d4c 00 03 ed00 010203040506 0000
		      00000007 00000064 000000c8
		      0002 0000 20010db8000000000000000000000002
		      00 04 0010 | 08 08 00 03 00000080 | 8e 04 00 00`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeSPM, Options: 0x03, GSI: gsi,
			Seq: 7, Trail: 100, Lead: 200, PathNLA: path6,
			HasParityPrm: true, ParityPrm: ParityPrm{Proactive: true, OnDemand: true, GroupSize: 128},
			FIN: true},
	},
	{
		// §2.2: ODATA, no options, odd total length (29).
		name: "ODATA", size: 29, opts: 0x00,
		hex: `2710 1d4c 04 00 6a02 010203040506 0005
		      00000064 0000005a
		      68656c6c6f`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeODATA, GSI: gsi,
			Seq: 100, Trail: 90, Payload: []byte("hello")},
	},
	{
		// Zero-length ODATA is legal.
		name: "ODATA/empty", size: 24, opts: 0x00,
		hex: `2710 1d4c 04 00 add8 010203040506 0000
		      00000065 0000005a`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeODATA, GSI: gsi,
			Seq: 101, Trail: 90, Payload: []byte{}},
	},
	{
		// §7: OPT_LENGTH total 20, OPT_FRAGMENT|E length 16, options byte 0x01.
		name: "ODATA/FRAGMENT", size: 48, opts: 0x01,
		hex: `2710 1d4c 04 01 7e6b 010203040506 0004
		      0000000b 00000000
		      00 04 0014 | 81 10 00 00 0000000a 00000594 00000bb8
		      deadbeef`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeODATA, Options: 0x01, GSI: gsi,
			Seq: 11, HasFragment: true, Fragment: Fragment{First: 10, Offset: 1428, Length: 3000},
			Payload: []byte{0xde, 0xad, 0xbe, 0xef}},
	},
	{
		name: "RDATA", size: 27, opts: 0x00,
		hex: `2710 1d4c 05 00 a8df 010203040506 0003
		      00000063 00000050
		      010203`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeRDATA, GSI: gsi,
			Seq: 99, Trail: 80, Payload: []byte{1, 2, 3}},
	},
	{
		// §8.3: parity RDATA, options 0x80|0x40, payload ends with the
		// host-order (little-endian) length trailer.
		name: "RDATA/parity", size: 30, opts: 0xc0,
		hex: `2710 1d4c 05 c0 647a 010203040506 0006
		      00000010 00000000
		      a1a2a3a4 0300`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeRDATA, Options: OptParity | OptVarPktLen, GSI: gsi,
			Seq: 16, Payload: []byte{0xa1, 0xa2, 0xa3, 0xa4, 0x03, 0x00}},
	},
	{
		// Parity RDATA whose originals had options: the OPT_FRAGMENT is
		// RS-encoded, so its fields are arbitrary and must not be checked.
		name: "RDATA/parity/FRAGMENT", size: 46, opts: 0x81,
		hex: `2710 1d4c 05 81 ef26 010203040506 0002
		      00000020 00000000
		      00 04 0014 | 81 10 00 00 fffffff0 12345678 9abcdef0
		      5a5a`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeRDATA, Options: OptParity | OptPresent, GSI: gsi,
			Seq: 32, HasFragment: true, Fragment: Fragment{First: 0xfffffff0, Offset: 0x12345678, Length: 0x9abcdef0},
			Payload: []byte{0x5a, 0x5a}},
	},
	{
		// §2.3: a NAK without options is 36 bytes (IPv4).
		name: "NAK/IPv4", size: 36, opts: 0x00,
		hex: `1d4c 2710 08 00 f923 010203040506 0000
		      00000005
		      0001 0000 c0a80102
		      0001 0000 efc00001`,
		pkt: Packet{SPort: 7500, DPort: 10000, Type: TypeNAK, GSI: gsi,
			Seq: 5, SourceNLA: path4, GroupNLA: group4},
	},
	{
		// ... and 60 bytes (IPv6).
		name: "NAK/IPv6", size: 60, opts: 0x00,
		hex: `1d4c 2710 08 00 7dbc 010203040506 0000
		      00000005
		      0002 0000 20010db8000000000000000000000002
		      0002 0000 ff150000000000000000000000000001`,
		pkt: Packet{SPort: 7500, DPort: 10000, Type: TypeNAK, GSI: gsi,
			Seq: 5, SourceNLA: path6, GroupNLA: group6},
	},
	{
		// IPv4 source NLA with an IPv6 group NLA (OpenPGM accepts this).
		name: "NAK/mixed", size: 48, opts: 0x00,
		hex: `1d4c 2710 08 00 e9cd 010203040506 0000
		      00000005
		      0001 0000 c0a80102
		      0002 0000 ff150000000000000000000000000001`,
		pkt: Packet{SPort: 7500, DPort: 10000, Type: TypeNAK, GSI: gsi,
			Seq: 5, SourceNLA: path4, GroupNLA: group6},
	},
	{
		// NAK with a one-entry list: options byte 0x03.
		name: "NAK/IPv4/list1", size: 48, opts: 0x03,
		hex: `1d4c 2710 08 03 7702 010203040506 0000
		      00000005
		      0001 0000 c0a80102
		      0001 0000 efc00001
		      00 04 000c | 82 08 00 00 00000006`,
		pkt: Packet{SPort: 7500, DPort: 10000, Type: TypeNAK, Options: 0x03, GSI: gsi,
			Seq: 5, SourceNLA: path4, GroupNLA: group4,
			NAKListLen: 1, NAKList: nakList(6)},
	},
	{
		// The largest list: 62 entries, option length 252, OPT_LENGTH total 256.
		name: "NAK/IPv4/list62", size: 292, opts: 0x03,
		hex: `1d4c 2710 08 03 6c49 010203040506 0000
		      00000005
		      0001 0000 c0a80102
		      0001 0000 efc00001
		      00 04 0100 | 82 fc 00 00
		      00000006 00000007 00000008 00000009 0000000a 0000000b 0000000c 0000000d
		      0000000e 0000000f 00000010 00000011 00000012 00000013 00000014 00000015
		      00000016 00000017 00000018 00000019 0000001a 0000001b 0000001c 0000001d
		      0000001e 0000001f 00000020 00000021 00000022 00000023 00000024 00000025
		      00000026 00000027 00000028 00000029 0000002a 0000002b 0000002c 0000002d
		      0000002e 0000002f 00000030 00000031 00000032 00000033 00000034 00000035
		      00000036 00000037 00000038 00000039 0000003a 0000003b 0000003c 0000003d
		      0000003e 0000003f 00000040 00000041 00000042 00000043`,
		pkt: Packet{SPort: 7500, DPort: 10000, Type: TypeNAK, Options: 0x03, GSI: gsi,
			Seq: 5, SourceNLA: path4, GroupNLA: group4,
			NAKListLen: 62, NAKList: nakList62},
	},
	{
		name: "NAK/IPv6/list2", size: 76, opts: 0x03,
		hex: `1d4c 2710 08 03 fb8a 010203040506 0000
		      00000005
		      0002 0000 20010db8000000000000000000000002
		      0002 0000 ff150000000000000000000000000001
		      00 04 0010 | 82 0c 00 00 00000006 00000008`,
		pkt: Packet{SPort: 7500, DPort: 10000, Type: TypeNAK, Options: 0x03, GSI: gsi,
			Seq: 5, SourceNLA: path6, GroupNLA: group6,
			NAKListLen: 2, NAKList: nakList(6, 8)},
	},
	{
		// §8.4: parity NAK, options 0x80, sqn = TG_SQN | (count-1).
		name: "NAK/parity", size: 36, opts: 0x80,
		hex: `1d4c 2710 08 80 f895 010203040506 0000
		      00000013
		      0001 0000 c0a80102
		      0001 0000 efc00001`,
		pkt: Packet{SPort: 7500, DPort: 10000, Type: TypeNAK, Options: OptParity, GSI: gsi,
			Seq: 16 | 3, SourceNLA: path4, GroupNLA: group4},
	},
	{
		name: "NNAK/IPv4", size: 36, opts: 0x00,
		hex: `1d4c 2710 09 00 f823 010203040506 0000
		      00000005
		      0001 0000 c0a80102
		      0001 0000 efc00001`,
		pkt: Packet{SPort: 7500, DPort: 10000, Type: TypeNNAK, GSI: gsi,
			Seq: 5, SourceNLA: path4, GroupNLA: group4},
	},
	{
		// NCF is downstream: sport is the TSI port.
		name: "NCF/IPv4", size: 36, opts: 0x00,
		hex: `2710 1d4c 0a 00 f723 010203040506 0000
		      00000005
		      0001 0000 c0a80102
		      0001 0000 efc00001`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeNCF, GSI: gsi,
			Seq: 5, SourceNLA: path4, GroupNLA: group4},
	},
	{
		// NCF echoing a NAK list: options byte 0x03.
		name: "NCF/IPv4/list1", size: 48, opts: 0x03,
		hex: `2710 1d4c 0a 03 7502 010203040506 0000
		      00000005
		      0001 0000 c0a80102
		      0001 0000 efc00001
		      00 04 000c | 82 08 00 00 00000006`,
		pkt: Packet{SPort: 10000, DPort: 7500, Type: TypeNCF, Options: 0x03, GSI: gsi,
			Seq: 5, SourceNLA: path4, GroupNLA: group4,
			NAKListLen: 1, NAKList: nakList(6)},
	},
	{
		// §2.4: SPMR is the 16-byte header only.
		name: "SPMR", size: 16, opts: 0x00,
		hex: `1d4c 2710 0c 00 a697 010203040506 0000`,
		pkt: Packet{SPort: 7500, DPort: 10000, Type: TypeSPMR, GSI: gsi},
	},
}

func goldenBytes(name string) []byte {
	for _, g := range goldens {
		if g.name == name {
			return hx(g.hex)
		}
	}
	panic("no golden packet " + name)
}

func goldenPacket(name string) Packet {
	for _, g := range goldens {
		if g.name == name {
			return g.pkt
		}
	}
	panic("no golden packet " + name)
}
