package wire

import "encoding/binary"

// Batched TPDUs: relmcast's small-message batching, not part of RFC 3208.
//
// A batched ODATA or RDATA packs several whole messages into one TSDU.
// It carries OPT_LENGTH and OPT_BATCH (4 bytes: type 0x70, length 4, then
// two zero bytes; the last byte is the framing version, 0), never
// OPT_FRAGMENT, and its TSDU is a sequence of frames, one per message:
//
//	length (u16, big endian) | length bytes of message
//
// At least one frame; the frames fill the TSDU exactly. Type 0x70 is not
// assigned by RFC 3208 (which uses 0x00-0x13) and not used by OpenPGM
// (0x7F is its OPT_INVALID): it is our experimental option.
//
// The option alone would not keep other receivers from being confused:
// OpenPGM skips unknown options on data packets and would deliver the
// packed TSDU as one message. So a batching source also sends its whole
// session (SPM, ODATA, RDATA, NCF) with another data-destination port
// (session.BatchDPort) than plain PGM on the same UDP port: OpenPGM,
// ZeroMQ and any receiver that checks the dport, as RFC 3208 asks, drop
// it. Receivers of relmcast accept both ports and unpack what carries
// OPT_BATCH.
const (
	optBatch = 0x70
	// BatchOverhead is what OPT_LENGTH and OPT_BATCH add to a data packet.
	BatchOverhead = 8
	// BatchFrameLen is the framing added to each message of a batch: its
	// 2-byte length.
	BatchFrameLen = 2
	// MaxBatchMessages bounds the messages one batch can hold (empty
	// ones, in the largest TSDU).
	MaxBatchMessages = MaxAPDU / BatchFrameLen
)

// ErrBatch is returned by CheckBatch for a TSDU that is not a valid
// sequence of frames.
var ErrBatch = &Error{"malformed batch"}

// AppendBatched appends msg as one frame of a batch to b. msg must be at
// most 65535 bytes.
func AppendBatched(b, msg []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	return append(b, msg...)
}

// CheckBatch validates the framing of a batched TSDU and returns the
// number of messages in it. Hostile lengths (a frame running past the
// end, a stray byte at the end, an empty TSDU) give ErrBatch; it never
// allocates.
func CheckBatch(b []byte) (n int, err error) {
	if len(b) == 0 {
		return 0, ErrBatch
	}
	for len(b) > 0 {
		if len(b) < BatchFrameLen {
			return 0, ErrBatch
		}
		l := int(binary.BigEndian.Uint16(b))
		if l > len(b)-BatchFrameLen {
			return 0, ErrBatch
		}
		b = b[BatchFrameLen+l:]
		n++
	}
	return n, nil
}

// NextBatched splits the first message off a batch that CheckBatch
// accepted: msg aliases b, rest is what follows. On a short or malformed
// b it returns msg nil and rest empty, never panicking.
func NextBatched(b []byte) (msg, rest []byte) {
	if len(b) < BatchFrameLen {
		return nil, nil
	}
	l := int(binary.BigEndian.Uint16(b))
	if l > len(b)-BatchFrameLen {
		return nil, nil
	}
	return b[BatchFrameLen : BatchFrameLen+l : BatchFrameLen+l], b[BatchFrameLen+l:]
}

// AppendBatchOptions appends the option block of a batched data packet,
// OPT_LENGTH then OPT_BATCH (BatchOverhead bytes), as Packet.Append
// encodes it for a Packet with only Batch set. The packet's header must
// have OptPresent.
func AppendBatchOptions(b []byte) []byte {
	return append(b, optLength, 4, 0, BatchOverhead, optBatch|optEnd, 4, 0, 0)
}
