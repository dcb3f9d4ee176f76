package session

import (
	"math"
	"math/bits"
)

// txBucket is the source's byte token bucket, driven by explicit time
// (nanoseconds since the Sender's base time).
//
// It is written as GCRA (the "virtual scheduling" form of a token bucket):
// tat is the time at which the bucket would be full again. Sending n bytes
// moves tat forward by n/rate seconds, and is allowed when the bucket holds
// at least n bytes, i.e. when tat + n/rate - burst/rate <= now.
//
// Why not golang.org/x/time/rate, although it has explicit-time methods
// (AllowN, ReserveN, TokensAt): its Limiter locks a mutex on every call (a
// sans-IO core has one owner), keeps tokens in float64 (rounding drift at
// high rates, and an inexact "when may the next packet go" for
// NextDeadline), and ReserveN returns a heap-allocated *Reservation. This
// bucket is exact integer arithmetic, lock- and allocation-free, and
// answers readyAt exactly. The sub-nanosecond remainder of each packet's
// cost is carried in frac, so no rounding error accumulates; the only
// rounding (burst/rate and the final ceiling) errs on the slow side by at
// most 2 ns, never cumulatively.
type txBucket struct {
	rate    int64 // bytes per second; 0 means unlimited
	burstNs int64 // time to refill an empty bucket: floor(burst*1e9/rate) ns
	tat     int64 // theoretical arrival time, ns
	frac    int64 // fractional part of tat in units of 1/rate ns; 0 <= frac < rate
}

func newTxBucket(rate int64, burst int) txBucket {
	if rate <= 0 {
		return txBucket{}
	}
	hi, lo := bits.Mul64(uint64(burst), 1e9)
	var ns int64 = math.MaxInt64 / 4 // saturate an absurdly deep bucket
	if hi < uint64(rate) {
		if q, _ := bits.Div64(hi, lo, uint64(rate)); q < math.MaxInt64/4 {
			ns = int64(q)
		}
	}
	// Start full: a tat at the minimum lets the first burst go at once.
	return txBucket{rate: rate, burstNs: ns, tat: math.MinInt64 / 4}
}

// after returns tat and frac as they would be after sending n bytes at now.
func (b *txBucket) after(now int64, n int) (tat, frac int64) {
	tat, frac = b.tat, b.frac
	if tat < now {
		tat, frac = now, 0
	}
	c := int64(n) * 1e9 // n is at most a TPDU plus headers: no overflow
	tat += c / b.rate
	frac += c % b.rate
	if frac >= b.rate {
		tat++
		frac -= b.rate
	}
	return tat, frac
}

// readyAt is the earliest time >= now at which n bytes may be sent.
func (b *txBucket) readyAt(now int64, n int) int64 {
	if b.rate == 0 {
		return now
	}
	tat, frac := b.after(now, n)
	if frac > 0 {
		tat++
	}
	return max(tat-b.burstNs, now)
}

// take charges n bytes at now and reports true if they fit; otherwise it
// charges nothing and reports false.
func (b *txBucket) take(now int64, n int) bool {
	if b.rate == 0 {
		return true
	}
	if b.readyAt(now, n) > now {
		return false
	}
	b.tat, b.frac = b.after(now, n)
	return true
}
