// Package zmqpgm is the payload framing ZeroMQ puts inside PGM messages on
// its epgm:// (and pgm://) sockets, so that an mcast.Sender can publish to
// ZeroMQ SUB sockets and an mcast.Receiver can read a ZeroMQ PUB.
//
// Each PGM message (APDU) that ZeroMQ sends is a 2-byte big-endian offset
// followed by a slice of one continuous stream of ZMTP/1.0 frames:
//
//	offset u16: where, counted after these 2 bytes, the first message that
//	            begins in this APDU begins; NoOffset (0xFFFF) if none does.
//	            It may equal the data length: the next message begins in
//	            the next APDU.
//	frames:     each a length (one byte, body+1, if that is below 255;
//	            else 0xFF and body+1 as a big-endian u64), a flags byte
//	            (FlagMore: another frame of the same message follows) and
//	            the body.
//
// Frames are packed back to back across APDU boundaries, so a receiver
// that joins late or loses an APDU cannot know where frames begin until
// an APDU names a message start: ZeroMQ then skips the data before that
// offset and decodes from there (it "joins"). After unrecoverable loss it
// drops the partial message and waits for the next offset again. Decoder
// does the same; Encoder makes APDUs that ZeroMQ subscribers accept.
package zmqpgm

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	// HeaderLen is the size of the offset before an APDU's frames.
	HeaderLen = 2
	// NoOffset is the offset of an APDU in which no message begins.
	NoOffset = 0xFFFF
	// FlagMore marks a frame followed by another of the same message.
	FlagMore = 0x01
	// MinAPDU is the smallest APDU size an Encoder accepts.
	MinAPDU = 16
	// DefaultMaxMessage bounds a decoded message when
	// Decoder.MaxMessage is zero.
	DefaultMaxMessage = 16 << 20
)

// shortMax is the largest frame body with a one-byte length: ZMTP/1.0
// writes body+1 in one byte when it is below 255.
const shortMax = 253

// AppendFrame appends one ZMTP/1.0 frame to b.
func AppendFrame(b, body []byte, more bool) []byte {
	return append(appendHeader(b, len(body), more), body...)
}

// appendHeader appends the length and flags of a frame of n bytes.
func appendHeader(b []byte, n int, more bool) []byte {
	var flags byte
	if more {
		flags = FlagMore
	}
	if n <= shortMax {
		return append(b, byte(n+1), flags)
	}
	b = append(b, 0xFF)
	b = binary.BigEndian.AppendUint64(b, uint64(n)+1)
	return append(b, flags)
}

// Encoder cuts ZeroMQ messages into APDUs that ZeroMQ subscribers accept:
// ZeroMQ aborts the subscriber's process on an APDU shorter than 2 bytes,
// on an offset beyond the data, and on an APDU of more than one PGM
// packet. So every APDU is at least 3 bytes and at most the size given to
// NewEncoder, which must be the sender's largest unfragmented message.
//
// Every message starts an APDU (offset 0); a message longer than one APDU
// continues in APDUs with offset NoOffset. Messages are not packed
// together, so each reaches subscribers as soon as its own APDUs are sent
// (ZeroMQ's own publisher packs whatever is queued). An Encoder is not
// safe for concurrent use.
type Encoder struct {
	max int
	buf []byte
	hdr [10]byte
}

// NewEncoder returns an Encoder of APDUs of at most maxAPDU bytes: the
// sender's largest unfragmented message (mcast.Sender.MaxPacketPayload).
func NewEncoder(maxAPDU int) (*Encoder, error) {
	if maxAPDU < MinAPDU || maxAPDU > 65535 {
		return nil, fmt.Errorf("zmqpgm: APDU size %d: want %d to 65535 bytes", maxAPDU, MinAPDU)
	}
	return &Encoder{max: maxAPDU, buf: make([]byte, 0, maxAPDU)}, nil
}

// ErrNoFrames is returned by Encode for a message without frames.
var ErrNoFrames = errors.New("zmqpgm: a message needs at least one frame")

// Encode encodes the message made of frames (at least one; a frame may be
// empty) and calls emit with each of its APDUs in order, stopping at the
// first error emit returns. The APDU is valid only during the call.
func (e *Encoder) Encode(frames [][]byte, emit func(apdu []byte) error) error {
	if len(frames) == 0 {
		return ErrNoFrames
	}
	e.buf = append(e.buf[:0], 0, 0) // offset 0: the message begins here
	for i, f := range frames {
		if err := e.put(appendHeader(e.hdr[:0], len(f), i < len(frames)-1), emit); err != nil {
			return err
		}
		if err := e.put(f, emit); err != nil {
			return err
		}
	}
	return emit(e.buf)
}

// put adds p to the APDU under construction, emitting it when full and
// going on in a new one (offset NoOffset). An APDU is emitted only when
// more bytes need room, so none is ever without data.
func (e *Encoder) put(p []byte, emit func([]byte) error) error {
	for len(p) > 0 {
		if len(e.buf) == e.max {
			if err := emit(e.buf); err != nil {
				return err
			}
			e.buf = append(e.buf[:0], NoOffset>>8, NoOffset&0xFF)
		}
		n := copy(e.buf[len(e.buf):e.max], p)
		e.buf = e.buf[:len(e.buf)+n]
		p = p[n:]
	}
	return nil
}

// Errors returned (wrapped) by Decoder.Feed.
var (
	// ErrMalformed: the APDU is not valid ZeroMQ framing.
	ErrMalformed = errors.New("zmqpgm: malformed APDU")
	// ErrTooLarge: a message exceeds Decoder.MaxMessage.
	ErrTooLarge = errors.New("zmqpgm: message too large")
)

// decoder states: what the next byte of the frame stream is.
const (
	stLen     = iota // a frame's length byte
	stLongLen        // one of the 8 bytes of a long length
	stFlags          // the flags byte
	stBody           // body bytes
)

// Decoder reassembles the ZeroMQ messages of one source from its APDUs,
// fed in order. It starts unjoined: it skips APDUs until one names where a
// message begins, and decodes from there. Call Reset when APDUs were lost
// (an mcast.EventLoss of the source). A Decoder is not safe for
// concurrent use; use one per source.
type Decoder struct {
	// MaxMessage bounds a message: its frame bodies plus one byte per
	// frame. Zero means DefaultMaxMessage. Memory grows only with the
	// bytes that actually arrive, never with a length field.
	MaxMessage int

	joined bool
	state  int
	lenBuf [8]byte // long length being read
	lenN   int
	body   int  // body bytes still to read of the current frame
	more   bool // the current frame has FlagMore
	size   int  // bytes of the message counted against MaxMessage
	msg    []byte
	ends   []int // end of each complete frame in msg
	frames [][]byte
}

// Joined reports whether the decoder follows the stream: it has seen
// where a message begins, and nothing was lost or malformed since.
func (d *Decoder) Joined() bool { return d.joined }

// Reset drops the partial message, if any, and makes the decoder wait for
// the next APDU in which a message begins, as ZeroMQ does after loss.
func (d *Decoder) Reset() {
	d.joined = false
	d.state, d.lenN, d.body, d.more, d.size = stLen, 0, 0, false, 0
	d.msg, d.ends = d.msg[:0], d.ends[:0]
}

// Partial reports whether a message has begun and is not yet complete.
func (d *Decoder) Partial() bool {
	return d.joined && (d.state != stLen || len(d.ends) > 0)
}

// Feed decodes one APDU and calls fn with the frames of each message it
// completes, in order; the frames are valid only during the call. An
// APDU that is not valid framing returns an error wrapping ErrMalformed
// or ErrTooLarge, after the messages it completed before the error; the
// partial message is dropped and the decoder waits, as after Reset, for
// an APDU where a message begins.
func (d *Decoder) Feed(apdu []byte, fn func(frames [][]byte)) error {
	if len(apdu) < HeaderLen {
		return d.fail(ErrMalformed, "%d bytes, no room for the offset", len(apdu))
	}
	off := int(binary.BigEndian.Uint16(apdu))
	data := apdu[HeaderLen:]
	if off != NoOffset && off > len(data) {
		return d.fail(ErrMalformed, "offset %d beyond the %d bytes of data", off, len(data))
	}
	if !d.joined {
		if off == NoOffset {
			return nil // no message begins here: nothing to decode yet
		}
		d.joined = true
		data = data[off:]
	}
	// Once joined the offset is not needed, and ZeroMQ ignores it too.
	for len(data) > 0 {
		switch d.state {
		case stLen:
			c := data[0]
			data = data[1:]
			switch c {
			case 0:
				return d.fail(ErrMalformed, "frame length 0")
			case 0xFF:
				d.state, d.lenN = stLongLen, 0
			default:
				if err := d.begin(uint64(c) - 1); err != nil {
					return err
				}
			}
		case stLongLen:
			n := copy(d.lenBuf[d.lenN:], data)
			d.lenN += n
			data = data[n:]
			if d.lenN == len(d.lenBuf) {
				l := binary.BigEndian.Uint64(d.lenBuf[:])
				if l == 0 {
					return d.fail(ErrMalformed, "frame length 0")
				}
				if err := d.begin(l - 1); err != nil {
					return err
				}
			}
		case stFlags:
			d.more = data[0]&FlagMore != 0 // ZMTP/1.0 ignores the other bits
			data = data[1:]
			d.state = stBody
			if d.body == 0 {
				d.endFrame(fn)
			}
		case stBody:
			n := min(d.body, len(data))
			d.msg = append(d.msg, data[:n]...)
			d.body -= n
			data = data[n:]
			if d.body == 0 {
				d.endFrame(fn)
			}
		}
	}
	return nil
}

// begin starts a frame of n body bytes; its flags byte comes next.
func (d *Decoder) begin(n uint64) error {
	max := d.MaxMessage
	if max <= 0 {
		max = DefaultMaxMessage
	}
	if n >= uint64(max) || d.size+int(n)+1 > max {
		return d.fail(ErrTooLarge, "a frame of %d bytes makes the message larger than %d bytes", n, max)
	}
	d.size += int(n) + 1
	d.body = int(n)
	d.state = stFlags
	return nil
}

// endFrame completes a frame, and the message if it was the last frame.
func (d *Decoder) endFrame(fn func([][]byte)) {
	d.ends = append(d.ends, len(d.msg))
	d.state = stLen
	if d.more {
		return
	}
	d.frames = d.frames[:0]
	start := 0
	for _, end := range d.ends {
		d.frames = append(d.frames, d.msg[start:end:end])
		start = end
	}
	fn(d.frames)
	clear(d.frames) // pin nothing between calls
	d.msg, d.ends, d.size = d.msg[:0], d.ends[:0], 0
}

func (d *Decoder) fail(kind error, format string, args ...any) error {
	d.Reset()
	return fmt.Errorf("%w: %s", kind, fmt.Sprintf(format, args...))
}
