package nak

import (
	"math"
	"time"
)

// Defaults used for the zero value of each Config field.
const (
	DefaultBackoffIvl  = 50 * time.Millisecond  // NAK_BO_IVL
	DefaultRepeatIvl   = 200 * time.Millisecond // NAK_RPT_IVL
	DefaultRdataIvl    = 400 * time.Millisecond // NAK_RDATA_IVL
	DefaultNCFRetries  = 10                     // NAK_NCF_RETRIES
	DefaultDataRetries = 10                     // NAK_DATA_RETRIES
	DefaultMaxPending  = 65536
)

// Limits applied to Config values.
const (
	// MinBackoff is the shortest back-off ever drawn. OpenPGM draws
	// NAK_RB_IVL uniformly in [1µs, NAK_BO_IVL); a back-off of zero would let
	// every receiver NAK at once and defeat suppression.
	MinBackoff = time.Microsecond

	// MaxRetries caps NCFRetries and DataRetries (per-sequence counters are
	// 16-bit; OpenPGM itself only accepts 1..255).
	MaxRetries = math.MaxUint16

	// MaxMaxPending caps MaxPending so that a mistyped configuration cannot
	// ask for gigabytes of state.
	MaxMaxPending = 1 << 24
)

// Config holds the NAK timers and limits of a [Tracker].
//
// The zero value of each field selects its default; so does a negative value.
// A Config must not be modified after it has been passed to [New] (New copies
// it, so later changes have no effect anyway).
type Config struct {
	// BackoffIvl (NAK_BO_IVL) is the upper bound of the random back-off
	// before the first NAK for a gap, and before each repeat. Each back-off is
	// drawn uniformly in [MinBackoff, BackoffIvl). Default 50ms.
	BackoffIvl time.Duration

	// RepeatIvl (NAK_RPT_IVL) is how long to wait for an NCF after a NAK
	// before going back to BACK_OFF for another NAK. Default 200ms.
	RepeatIvl time.Duration

	// RdataIvl (NAK_RDATA_IVL) is how long to wait for the repair after an
	// NCF (or after overhearing another receiver's NAK) before NAKing again.
	// Default 400ms.
	RdataIvl time.Duration

	// RdataFirst, when set and shorter than RdataIvl, is the wait for the
	// repair after the first NCF of a sequence; it doubles with each of its
	// WAIT_DATA time-outs, up to RdataIvl. On a LAN a repair follows its
	// NCF within milliseconds, so a lost repair is NAKed again soon, yet a
	// repair held up by a busy sender still gets as long as before: the
	// waits of 10 retries with RdataFirst = RdataIvl/8 add up to 80% of
	// ten times RdataIvl. Zero (the default) means RdataIvl every time,
	// as in OpenPGM.
	RdataFirst time.Duration

	// NCFRetries (NAK_NCF_RETRIES) is how many WAIT_NCF time-outs a sequence
	// may suffer before it is given up; with no NCF ever heard, that is the
	// number of NAKs sent for it. Default 10, at most MaxRetries.
	NCFRetries int

	// DataRetries (NAK_DATA_RETRIES) is how many WAIT_DATA time-outs (NCF
	// received, repair never came) a sequence may suffer before it is given
	// up. Default 10, at most MaxRetries.
	DataRetries int

	// MaxPending is the most sequences tracked at once. When Missing would
	// exceed it, the oldest tracked sequences are given up with reason
	// Overflow, so memory stays bounded whatever the input. Default 65536, at
	// most MaxMaxPending.
	MaxPending int
}

// config is Config with defaults and limits applied, in the units the
// tracker works in.
type config struct {
	backoff     int64 // nanoseconds
	repeat      int64
	rdata       int64
	rdataFirst  int64 // at most rdata
	ncfRetries  int
	dataRetries int
	maxPending  int
}

func (c Config) resolve() config {
	rdata := durationOr(c.RdataIvl, DefaultRdataIvl)
	return config{
		backoff:     int64(durationOr(c.BackoffIvl, DefaultBackoffIvl)),
		repeat:      int64(durationOr(c.RepeatIvl, DefaultRepeatIvl)),
		rdata:       int64(rdata),
		rdataFirst:  int64(durationOr(min(c.RdataFirst, rdata), rdata)),
		ncfRetries:  intOr(c.NCFRetries, DefaultNCFRetries, MaxRetries),
		dataRetries: intOr(c.DataRetries, DefaultDataRetries, MaxRetries),
		maxPending:  intOr(c.MaxPending, DefaultMaxPending, MaxMaxPending),
	}
}

func durationOr(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

func intOr(v, def, limit int) int {
	if v <= 0 {
		return def
	}
	return min(v, limit)
}
