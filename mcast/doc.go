// Package mcast is reliable multicast over UDP: PGM (RFC 3208) in UDP
// encapsulation, byte-compatible with OpenPGM 5.3 and ZeroMQ epgm.
//
// A Sender numbers, windows, rate-limits and fragments messages, answers
// NAKs with NCFs and repairs, and sends SPMs so receivers can track it. A
// Receiver gets the messages of every source on a group. Receivers, not
// senders, find the gaps: each NAKs what it misses, recovers it, or, when
// no repair can come, says exactly where the hole is. With Config.Batch a
// Sender packs small messages into shared packets, in a session that
// plain PGM receivers do not see; Receivers unpack them by themselves.
//
// The reliability contract, per source: every message is delivered once,
// whole and in order, or an EventLoss takes its place in the stream, right
// after the last message before the hole, saying which sequence numbers
// are gone and why (the source's window moved past them, the NAKs went
// unanswered, the source went away or restarted, or the application read
// too slowly and the receive window overflowed). New, gone and restarted
// sources come through the same ordered stream. Nothing is lost silently,
// duplicated, or delivered out of order.
package mcast
