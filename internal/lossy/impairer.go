package lossy

import (
	"math/bits"
	"math/rand/v2"
	"sync/atomic"
)

// MaxHeld is the largest number of datagrams an Impairer holds back for
// reordering at once; Decision.Slot is in [0, MaxHeld).
const MaxHeld = 8

// Action is what to do with one datagram now.
type Action uint8

const (
	// Deliver the datagram once, now.
	Deliver Action = iota
	// Drop the datagram.
	Drop
	// Duplicate: deliver the datagram twice, now.
	Duplicate
	// Hold the datagram back: keep a copy under Decision.Slot until Due
	// (or Flush) returns that slot, then deliver it.
	Hold
)

func (a Action) String() string {
	switch a {
	case Deliver:
		return "deliver"
	case Drop:
		return "drop"
	case Duplicate:
		return "duplicate"
	case Hold:
		return "hold"
	}
	return "Action(?)"
}

// Decision is the fate of one datagram offered to Impairer.Decide.
type Decision struct {
	Action Action
	// Slot identifies the storage for a held datagram when Action is Hold:
	// the caller keeps its own copy (or reference) of the datagram in
	// slot Slot of an array of MaxHeld entries. Slot is 0 otherwise.
	Slot int
}

// Stats counts an Impairer's decisions. It is a snapshot.
type Stats struct {
	Datagrams  uint64 // datagrams offered to Decide
	Dropped    uint64 // dropped by Loss or BurstLoss
	BurstDrops uint64 // the part of Dropped due to bursts
	Duplicated uint64 // delivered twice
	Reordered  uint64 // held back and delivered later
}

// Impairer decides, datagram by datagram, what a lossy network does. It never
// looks at a payload except through Config.Filter, and never stores one: for
// Hold, the caller keeps the datagram in its own storage at the given slot,
// and Due later tells it when to deliver it. A typical receive loop:
//
//	switch d := im.Decide(b); d.Action {
//	case lossy.Drop:
//	case lossy.Hold:
//		held[d.Slot] = copyOf(b)
//	case lossy.Deliver:
//		deliver(b)
//	case lossy.Duplicate:
//		deliver(b)
//		deliver(b)
//	}
//	for slot, ok := im.Due(); ok; slot, ok = im.Due() {
//		deliver(held[slot]) // after the current datagram
//	}
//
// An Impairer is not safe for concurrent use, except Stats, which may be
// called at any time.
type Impairer struct {
	cfg      Config
	burstLen int
	pcg      rand.PCG
	rng      *rand.Rand

	burstLeft int // datagrams still to drop in the current burst

	used    uint16           // bit i: slot i holds a datagram
	due     uint16           // bit i: slot i's datagram is due now
	wait    [MaxHeld]uint8   // deliveries still to wait, per used slot
	order   [MaxHeld]uint64  // hold sequence per slot, to release oldest first
	holdSeq uint64           // counter feeding order
	stats   [5]atomic.Uint64 // indexed by stat* constants
}

const (
	statDatagrams = iota
	statDropped
	statBurst
	statDuplicated
	statReordered
)

// NewImpairer returns an Impairer for cfg. It panics if cfg.Validate fails;
// validate configurations that come from users first.
func NewImpairer(cfg Config) *Impairer {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	im := &Impairer{cfg: cfg, burstLen: cfg.burstLen()}
	// The second PCG word is a fixed odd constant so that Seed alone
	// determines the stream.
	im.pcg.Seed(cfg.Seed, 0x9e3779b97f4a7c15)
	im.rng = rand.New(&im.pcg)
	return im
}

// Config returns the configuration the Impairer was made with.
func (im *Impairer) Config() Config { return im.cfg }

// chance draws one random number if p > 0 and reports whether it fell
// under p. A zero probability consumes no randomness, so adding "dup=0" to a
// spec does not change the other decisions.
func (im *Impairer) chance(p float64) bool {
	return p > 0 && im.rng.Float64() < p
}

// Decide returns the fate of the next datagram, whose bytes are b (only
// passed to Config.Filter). After acting on the decision, call Due until it
// reports false to collect held datagrams that are to be delivered right
// after this one.
func (im *Impairer) Decide(b []byte) Decision {
	im.stats[statDatagrams].Add(1)
	if im.cfg.Filter != nil && !im.cfg.Filter(b) {
		im.delivered()
		return Decision{Action: Deliver}
	}
	if im.burstLeft > 0 {
		im.burstLeft--
		im.stats[statDropped].Add(1)
		im.stats[statBurst].Add(1)
		return Decision{Action: Drop}
	}
	if im.chance(im.cfg.BurstLoss) {
		im.burstLeft = im.burstLen - 1
		im.stats[statDropped].Add(1)
		im.stats[statBurst].Add(1)
		return Decision{Action: Drop}
	}
	if im.chance(im.cfg.Loss) {
		im.stats[statDropped].Add(1)
		return Decision{Action: Drop}
	}
	if im.chance(im.cfg.Duplicate) {
		im.stats[statDuplicated].Add(1)
		im.delivered()
		return Decision{Action: Duplicate}
	}
	if im.chance(im.cfg.Reorder) {
		after := 1 + im.rng.IntN(3)
		if free := ^im.used & (1<<MaxHeld - 1); free != 0 {
			slot := lowBit(free)
			im.used |= 1 << slot
			im.wait[slot] = uint8(after)
			im.order[slot] = im.holdSeq
			im.holdSeq++
			im.stats[statReordered].Add(1)
			return Decision{Action: Hold, Slot: slot}
		}
	}
	im.delivered()
	return Decision{Action: Deliver}
}

// delivered counts one delivery against every held datagram's wait.
func (im *Impairer) delivered() {
	if im.used == 0 {
		return
	}
	for slot := range MaxHeld {
		bit := uint16(1) << slot
		if im.used&bit == 0 || im.due&bit != 0 {
			continue
		}
		im.wait[slot]--
		if im.wait[slot] == 0 {
			im.due |= bit
		}
	}
}

// Due returns a slot whose held datagram is to be delivered now, oldest hold
// first, and frees that slot; ok is false when none is due. Call it after
// acting on each Decide until it reports false.
func (im *Impairer) Due() (slot int, ok bool) {
	return im.release(im.due)
}

// Flush releases held datagrams whether or not they are due, oldest first,
// one slot per call, as Due does; use it when the stream ends or the
// Impairer is being replaced. ok is false when nothing is held.
func (im *Impairer) Flush() (slot int, ok bool) {
	return im.release(im.used)
}

// Held returns the number of datagrams currently held back.
func (im *Impairer) Held() int {
	return bits.OnesCount16(im.used)
}

func (im *Impairer) release(set uint16) (int, bool) {
	if set == 0 {
		return 0, false
	}
	best := -1
	for s := set; s != 0; s &= s - 1 {
		slot := lowBit(s)
		if best < 0 || im.order[slot] < im.order[best] {
			best = slot
		}
	}
	bit := uint16(1) << best
	im.used &^= bit
	im.due &^= bit
	im.wait[best] = 0
	return best, true
}

// Stats returns the counts so far. It is safe to call concurrently with
// Decide.
func (im *Impairer) Stats() Stats {
	return Stats{
		Datagrams:  im.stats[statDatagrams].Load(),
		Dropped:    im.stats[statDropped].Load(),
		BurstDrops: im.stats[statBurst].Load(),
		Duplicated: im.stats[statDuplicated].Load(),
		Reordered:  im.stats[statReordered].Load(),
	}
}

func lowBit(x uint16) int { return bits.TrailingZeros16(x) }
