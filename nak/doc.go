// Package nak is the receiver's NAK state machine (RFC 3208 §5.3, OpenPGM's
// nak_rb/nak_rpt/nak_rdata states): for every missing sequence number of one
// source it decides when to send a NAK, when an NCF or a repair is overdue,
// and when to give up and declare the sequence lost.
//
// It is sans-IO: no sockets, goroutines, locks or clock. Time is passed in,
// randomness comes from an injected generator, and the caller asks for the
// next deadline.
//
// # States
//
// Each missing sequence goes through the states of OpenPGM (see
// research/openpgm.md §6.2):
//
//	   Missing
//	      │
//	      ▼          back-off expires: NAK
//	┌─► BACK_OFF ─────────────────────────────► WAIT_NCF
//	│     │                                      │   │
//	│     │ NCF: our NAK is suppressed       NCF │   │ RepeatIvl expires:
//	│     ▼                                      │   │ ncf retries++
//	│   WAIT_DATA ◄──────────────────────────────┘   │
//	│     │ RdataIvl expires: data retries++         │
//	└─────┴──────────────────────────────────────────┘
//
// An NCF in WAIT_DATA pushes its deadline back. Repaired removes a sequence
// in any state. A sequence whose NCF retries reach NCFRetries, or whose data
// retries reach DataRetries, is given up and reported lost. The counters are
// cumulative, as in OpenPGM.
//
// # Use
//
// A session owns one Tracker per source and drives it from its event loop:
//
//	tr := nak.New(cfg, rand.New(rand.NewPCG(seed1, seed2)))
//	...
//	tr.Missing(now, lead+1, sqn-1)   // ODATA/RDATA/SPM/NCF revealed a gap
//	tr.Repaired(sqn)                 // ODATA, RDATA or FEC filled one
//	if !tr.NCF(now, sqn) { ... }     // NCF, or another receiver's NAK
//	tr.Forget(trail)                 // the source's trail moved on
//	naks, lost = tr.Advance(now, naks[:0], lost[:0])
//	// send naks (already sorted: pack up to 63 per NAK packet), report lost
//	if d := tr.NextDeadline(); !d.IsZero() {
//		timer.Reset(d.Sub(now))      // d may be <= now: Advance again at once
//	}
//
// Sequence numbers are uint64: the caller extends PGM's 32-bit wire numbers
// before handing them over, so there is no wrap-around here.
//
// # Bounds
//
// Nothing here grows with the input beyond Config.MaxPending: a gap of 2^40
// sequences tracks the newest MaxPending and gives up the rest at once as a
// single Lost range. The steady-state operations do not allocate.
package nak
