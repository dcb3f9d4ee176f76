// Package wire is the PGM (RFC 3208) packet codec, byte-compatible with
// OpenPGM 5.3 in UDP encapsulation (ZeroMQ epgm).
//
// Parse decodes one datagram into a caller-owned Packet without allocating;
// the payload aliases the input. Append encodes a Packet, computing the
// checksum. Where OpenPGM departs from the RFC text, the code follows
// OpenPGM and says so (research/openpgm.md is the reference).
package wire

import (
	"fmt"
	"net/netip"
)

// Type is the PGM packet type (header byte 4; the top two bits, the
// version, are zero).
type Type uint8

// Packet types. POLL, POLR and ACK are recognised but not decoded: OpenPGM
// never sends POLL/POLR and ACK is PGMCC only.
const (
	TypeSPM   Type = 0x00
	TypePOLL  Type = 0x01
	TypePOLR  Type = 0x02
	TypeODATA Type = 0x04
	TypeRDATA Type = 0x05
	TypeNAK   Type = 0x08
	TypeNNAK  Type = 0x09
	TypeNCF   Type = 0x0A
	TypeSPMR  Type = 0x0C
	TypeACK   Type = 0x0D
)

func (t Type) String() string {
	switch t {
	case TypeSPM:
		return "SPM"
	case TypePOLL:
		return "POLL"
	case TypePOLR:
		return "POLR"
	case TypeODATA:
		return "ODATA"
	case TypeRDATA:
		return "RDATA"
	case TypeNAK:
		return "NAK"
	case TypeNNAK:
		return "NNAK"
	case TypeNCF:
		return "NCF"
	case TypeSPMR:
		return "SPMR"
	case TypeACK:
		return "ACK"
	}
	return fmt.Sprintf("Type(%#02x)", uint8(t))
}

// Downstream reports whether packets of this type flow from the source to
// receivers. Their header carries the TSI port in sport; upstream packets
// (NAK, NNAK, SPMR, ACK, POLR) carry it in dport (RFC 3208 §8.3).
func (t Type) Downstream() bool {
	switch t {
	case TypeSPM, TypePOLL, TypeODATA, TypeRDATA, TypeNCF:
		return true
	}
	return false
}

// Header option flags (byte 5). OpenPGM and tcpdump use these values; RFC
// 3208 §8 numbers the bits from the MSB, which reads the other way round.
const (
	OptPresent   uint8 = 0x01 // options follow the type-specific header
	OptNetwork   uint8 = 0x02 // network-significant options present
	OptVarPktLen uint8 = 0x40 // parity over variable-length TSDUs
	OptParity    uint8 = 0x80 // parity packet or parity NAK/NCF
)

// Sizes.
const (
	HeaderLen      = 16 // common PGM header
	DataHeaderLen  = 8  // ODATA/RDATA sqn + trail
	MaxNAKList     = 62 // OPT_NAK_LIST entries beyond the NAK's own sqn
	MaxNAKSeqs     = 1 + MaxNAKList
	FragmentOptLen = 16 // OPT_FRAGMENT (RFC text says 12: an erratum; OpenPGM uses 16)
	// FragmentOverhead is what OPT_LENGTH + OPT_FRAGMENT add to a data packet.
	FragmentOverhead = 4 + FragmentOptLen
	// MaxAPDU is the largest APDU (message) the fragment header can describe
	// and OpenPGM accepts (PGM_MAX_APDU).
	MaxAPDU = 65535
)

// GSI is the 6-byte Global Source Identifier.
type GSI [6]byte

func (g GSI) String() string {
	return fmt.Sprintf("%d.%d.%d.%d.%d.%d", g[0], g[1], g[2], g[3], g[4], g[5])
}

// TSI is the Transport Session Identifier: a source's GSI plus its
// data-source port. It names one source session.
type TSI struct {
	GSI  GSI
	Port uint16
}

// String formats the TSI as OpenPGM does: g0.g1.g2.g3.g4.g5.sport.
func (t TSI) String() string { return fmt.Sprintf("%v.%d", t.GSI, t.Port) }

// Fragment is OPT_FRAGMENT: the position of one TPDU in a multi-TPDU APDU.
type Fragment struct {
	First  uint32 // sequence number of the APDU's first TPDU
	Offset uint32 // byte offset of this fragment in the APDU
	Length uint32 // total APDU length in bytes
}

// ParityPrm is OPT_PARITY_PRM, carried in SPMs of a source that uses FEC.
type ParityPrm struct {
	Proactive bool   // OpenPGM byte-3 bit 0x01 (the RFC figure swaps P and O)
	OnDemand  bool   // OpenPGM byte-3 bit 0x02
	GroupSize uint32 // transmission group size k, 2..128
}

// Packet is one decoded PGM packet. Which fields are meaningful depends on
// Type; Parse sets every field it does not decode to its zero value.
type Packet struct {
	SPort, DPort uint16
	Type         Type
	// Options is header byte 5. Append computes OptPresent and OptNetwork
	// itself; the caller sets OptParity and OptVarPktLen.
	Options uint8
	GSI     GSI

	// Seq is the data sequence number of ODATA/RDATA, the requested
	// sequence number of NAK/NNAK/NCF (for parity NAKs: TG_SQN|count-1),
	// and the SPM sequence number of an SPM.
	Seq uint32
	// Trail is TXW_TRAIL of SPM, ODATA and RDATA; Lead is TXW_LEAD of SPM.
	Trail, Lead uint32

	PathNLA   netip.Addr // SPM: the source's unicast address
	SourceNLA netip.Addr // NAK/NNAK/NCF
	GroupNLA  netip.Addr // NAK/NNAK/NCF

	// Payload is the TSDU of ODATA/RDATA. Parse makes it alias its input.
	Payload []byte

	// Options present.
	HasFragment  bool
	Fragment     Fragment
	NAKListLen   int // number of valid entries in NAKList
	NAKList      [MaxNAKList]uint32
	HasParityPrm bool
	ParityPrm    ParityPrm
	FIN          bool // OPT_FIN: the source is closing (OpenPGM: 3 SPMs at close)
	SYN          bool // OPT_SYN
	RST          bool // OPT_RST
	RSTCode      uint8
	// Batch is OPT_BATCH (relmcast's own, see batch.go): the TSDU packs
	// several messages. Parse checks the framing of ODATA and RDATA that
	// carry it, and that they carry no OPT_FRAGMENT.
	Batch bool
}

// TSI returns the session the packet belongs to: (GSI, sport) downstream,
// (GSI, dport) upstream. In upstream packets the GSI is the addressed
// source's, as OpenPGM sends it.
func (p *Packet) TSI() TSI {
	if p.Type.Downstream() {
		return TSI{GSI: p.GSI, Port: p.SPort}
	}
	return TSI{GSI: p.GSI, Port: p.DPort}
}

// NAKSeqs appends every sequence number a NAK, NNAK or NCF names (its own
// Seq first, then OPT_NAK_LIST) to dst.
func (p *Packet) NAKSeqs(dst []uint32) []uint32 {
	dst = append(dst, p.Seq)
	return append(dst, p.NAKList[:p.NAKListLen]...)
}

// Error is a parse or encode failure. The variables below are the only
// values; compare with == or errors.Is.
type Error struct{ msg string }

func (e *Error) Error() string { return "pgm: " + e.msg }

var (
	ErrShort       = &Error{"packet too short"}
	ErrVersion     = &Error{"unknown PGM version"}
	ErrUnsupported = &Error{"packet type not decoded (POLL, POLR, ACK or unknown)"}
	ErrChecksum    = &Error{"bad checksum"}
	ErrNoChecksum  = &Error{"ODATA/RDATA without checksum"}
	ErrLength      = &Error{"TSDU length does not match the packet"}
	ErrNLA         = &Error{"bad network layer address"}
	ErrOptions     = &Error{"malformed options"}
	ErrNAKList     = &Error{"malformed OPT_NAK_LIST"}
	ErrFragment    = &Error{"malformed OPT_FRAGMENT"}
	ErrParityPrm   = &Error{"malformed OPT_PARITY_PRM"}
	ErrTooLong     = &Error{"packet too long"}
)
