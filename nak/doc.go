// Package nak is the receiver's NAK state machine (RFC 3208 §5.3, OpenPGM's
// nak_rb/nak_rpt/nak_rdata states): for every missing sequence number of one
// source it decides when to send a NAK, when an NCF or a repair is overdue,
// and when to give up and declare the sequence lost.
//
// It is sans-IO: no sockets, goroutines, locks or clock. Time is passed in,
// randomness comes from an injected generator, and the caller asks for the
// next deadline.
package nak
