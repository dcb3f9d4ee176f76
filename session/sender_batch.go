package session

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
)

// BatchConfig turns on small-message batching: the Sender packs
// consecutive messages that fit into one TPDU (a batch, framed as
// internal/wire's batch.go describes: OPT_BATCH, then a 2-byte length
// before each message), and sends the batch when the next message does
// not fit or Delay after its first message, whichever comes first. Close
// sends the open batch. A message too large for a batch is sent on its
// own (fragmented if needed) after the open batch, so order is kept.
//
// A batch is one sequence number: its loss, repair and the loss a
// receiver reports are those of one TPDU holding several messages.
//
// Plain PGM receivers must never see batches: the owner gives a batching
// Sender BatchDPort(P) as SenderConfig.DPort (see BatchDPort). Batching
// and FEC cannot be combined (a rebuilt TPDU would lose OPT_BATCH).
type BatchConfig struct {
	// Delay is the longest a message waits in an open batch. Zero turns
	// batching off.
	Delay time.Duration
	// MaxBytes bounds a batch's TSDU, frames included: smaller batches
	// lose fewer messages per lost packet. Zero means as much as one
	// packet holds (MaxTSDU - wire.BatchOverhead). At least 64.
	MaxBytes int
}

// BatchDPort is the data-destination port of a batching session whose
// UDP port is p: p with its top bit flipped (7500 gives 40268; 32768,
// which would give 0, gives 65535). OpenPGM, ZeroMQ and older relmcast
// receivers on p drop its packets (they check the dport); relmcast
// receivers accept both and unpack batches.
func BatchDPort(p uint16) uint16 {
	if p == 0x8000 {
		return 0xFFFF
	}
	return p ^ 0x8000
}

// minBatchBytes keeps a batch worth its option.
const minBatchBytes = 64

func (b *BatchConfig) validate(c *SenderConfig) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("session: SenderConfig.Batch."+format, a...)
	}
	room := c.maxTSDU() - wire.BatchOverhead
	switch {
	case b.Delay < 0:
		return bad("Delay %v is negative", b.Delay)
	case b.Delay == 0 && b.MaxBytes != 0:
		return bad("MaxBytes %d is set but Delay is 0 (batching off)", b.MaxBytes)
	case b.Delay == 0:
		return nil
	case b.MaxBytes != 0 && (b.MaxBytes < minBatchBytes || b.MaxBytes > room):
		return bad("MaxBytes %d is outside %d..%d", b.MaxBytes, minBatchBytes, room)
	case c.FEC.GroupSize > 0:
		return bad("Delay is set with FEC on: batching and FEC cannot be combined")
	}
	return nil
}

// txBatch is the open batch: it is being built in the slot of nextSeq,
// which is not counted as queued until the batch is closed.
type txBatch struct {
	delay int64 // 0: batching off
	max   int   // largest TSDU of a batch
	open  bool
	at    int64  // when the open batch must be closed
	n     uint16 // messages in the open batch
}

// batchHeader is the size of a batched ODATA before its TSDU.
const batchHeader = wire.HeaderLen + wire.DataHeaderLen + wire.BatchOverhead

func (s *Sender) initBatch() {
	if s.cfg.Batch.Delay <= 0 {
		return
	}
	s.batch.delay = max(int64(s.cfg.Batch.Delay), 1)
	s.batch.max = s.cfg.Batch.MaxBytes
	if s.batch.max == 0 {
		s.batch.max = s.maxTSDU - wire.BatchOverhead
	}
}

// batchable reports whether a message of n bytes goes into a batch.
func (s *Sender) batchable(n int) bool {
	return s.batch.delay > 0 && n >= 0 && wire.BatchFrameLen+n <= s.batch.max
}

// batchFits reports whether a message of n bytes fits the open batch.
func (s *Sender) batchFits(n int) bool {
	return s.batch.open && len(s.slot(s.nextSeq).buf)-batchHeader+wire.BatchFrameLen+n <= s.batch.max
}

// reserved is the number of TPDUs queued, the open batch included.
func (s *Sender) reserved() int {
	if s.batch.open {
		return s.unsent() + 1
	}
	return s.unsent()
}

// writableBatched is Writable for a batchable message.
func (s *Sender) writableBatched(n int) bool {
	return s.batchFits(n) || s.unsent()+1+btoi(s.batch.open) <= s.cfg.MaxQueued
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sendBatched adds a batchable msg to the open batch, or closes it and
// opens another. It fails with ErrWouldBlock, queuing nothing, when a new
// batch would not fit under MaxQueued.
func (s *Sender) sendBatched(t int64, msg []byte) error {
	if s.batch.open && !s.batchFits(len(msg)) {
		s.closeBatch()
	}
	if !s.batch.open {
		if s.unsent()+1 > s.cfg.MaxQueued {
			return ErrWouldBlock
		}
		s.expire(t)
		s.reserve(1)
		sl := s.slot(s.nextSeq)
		sl.buf = txAppendBatchHeader(s.slotBuf(sl), &s.cfg, s.nextSeq)
		// Batches carry no OPT_SYN (receivers take a batching session by
		// its dport), and no later TPDU may: the session has begun.
		s.synDone = true
		s.batch.open, s.batch.at, s.batch.n = true, txAddSat(t, s.batch.delay), 0
	}
	sl := s.slot(s.nextSeq)
	sl.buf = wire.AppendBatched(sl.buf, msg)
	s.batch.n++
	if len(sl.buf)-batchHeader+wire.BatchFrameLen > s.batch.max {
		s.closeBatch() // not even an empty message fits any more
	}
	return nil
}

// closeBatch queues the open batch for sending, if there is one.
func (s *Sender) closeBatch() {
	if !s.batch.open {
		return
	}
	sl := s.slot(s.nextSeq)
	tsdu := len(sl.buf) - batchHeader
	binary.BigEndian.PutUint16(sl.buf[14:], uint16(tsdu)) // tsdu_length
	sl.tsdu = int32(tsdu)
	sl.flags = txLast
	sl.batchN = s.batch.n
	sl.parNext, sl.parPend, sl.parRound = 0, 0, 0
	s.nextSeq++
	s.batch.open = false
}

// pollBatch closes the open batch when its delay has run out.
func (s *Sender) pollBatch(t int64) {
	if s.batch.open && t >= s.batch.at {
		s.closeBatch()
	}
}

// txAppendBatchHeader encodes the header of a batched ODATA, up to its
// TSDU: tsdu_length, trail and checksum are zero (closeBatch and Poll
// write them).
func txAppendBatchHeader(b []byte, c *SenderConfig, seq uint32) []byte {
	b = binary.BigEndian.AppendUint16(b, c.TSI.Port)
	b = binary.BigEndian.AppendUint16(b, c.DPort)
	b = append(b, byte(wire.TypeODATA), wire.OptPresent, 0, 0) // type, options, checksum
	b = append(b, c.TSI.GSI[:]...)
	b = append(b, 0, 0) // tsdu_length
	b = binary.BigEndian.AppendUint32(b, seq)
	b = append(b, 0, 0, 0, 0) // TXW_TRAIL
	return wire.AppendBatchOptions(b)
}
