package mcast

import (
	"fmt"
	"net/netip"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/session"
)

// SourceID identifies one source session: PGM's TSI, the sender's GSI
// and its data-source port. A restarted sender has a new SourceID.
type SourceID wire.TSI

// String formats the ID as OpenPGM does: g0.g1.g2.g3.g4.g5.port.
func (id SourceID) String() string { return wire.TSI(id).String() }

// EventKind says what an Event reports.
type EventKind = session.EventKind

// The kinds of Event.
const (
	EventData          = session.EventData
	EventLoss          = session.EventLoss
	EventSourceNew     = session.EventSourceNew
	EventSourceGone    = session.EventSourceGone
	EventSourceRestart = session.EventSourceRestart
)

// LossReason says why messages were lost.
type LossReason = session.LossReason

// The reasons for an EventLoss.
const (
	LossWindowPassed     = session.LossWindowPassed
	LossRetriesExhausted = session.LossRetriesExhausted
	LossSourceGone       = session.LossSourceGone
	LossOverrun          = session.LossOverrun
	LossSourceRestart    = session.LossSourceRestart
	LossMalformed        = session.LossMalformed
)

// GoneReason says why a source is gone.
type GoneReason = session.GoneReason

// The reasons for an EventSourceGone.
const (
	GoneExpired = session.GoneExpired
	GoneFIN     = session.GoneFIN
	GoneEvicted = session.GoneEvicted
)

// Event is one item of a Receiver's stream: a message, a loss, or a change
// of source. For each source, events come in order: EventSourceNew (or
// EventSourceRestart), then messages and losses exactly in sequence order,
// then EventSourceGone.
type Event struct {
	Kind   EventKind
	Source SourceID
	// Addr is the source's unicast address.
	Addr netip.Addr
	// Data is the message (EventData). Read copies the message into
	// Data's capacity (growing it if needed): see Receiver.Read.
	Data []byte
	// Seq and LastSeq are the PGM sequence numbers of the message's first
	// and last packet (EventData), or of the first and last lost
	// (EventLoss). They wrap at 2^32. The messages of one batch (a
	// sender's Config.Batch) share their packet's number.
	Seq, LastSeq uint32
	// Lost counts the sequence numbers lost (EventLoss): each is at most
	// one message, and a message larger than a packet spans several;
	// from a batching sender, each may be a batch of several messages.
	Lost       uint64
	LossReason LossReason
	GoneReason GoneReason
	// Prev is the session a restarted source replaces (EventSourceRestart).
	Prev SourceID
}

// String formats the event for logs: one line.
func (e *Event) String() string {
	switch e.Kind {
	case EventData:
		return fmt.Sprintf("data from %v seq %d: %d bytes", e.Source, e.Seq, len(e.Data))
	case EventLoss:
		return fmt.Sprintf("loss from %v seq %d-%d: %d packets, %v", e.Source, e.Seq, e.LastSeq, e.Lost, e.LossReason)
	case EventSourceNew:
		return fmt.Sprintf("source new %v at %v", e.Source, e.Addr)
	case EventSourceGone:
		return fmt.Sprintf("source gone %v at %v: %v", e.Source, e.Addr, e.GoneReason)
	case EventSourceRestart:
		return fmt.Sprintf("source restart %v at %v, was %v", e.Source, e.Addr, e.Prev)
	}
	return "unknown event"
}

// copyFrom fills e from a core event, with data (a copy of c.Data made
// by the caller) as its Data.
func (e *Event) copyFrom(c *session.Event, data []byte) {
	*e = Event{
		Kind:       c.Kind,
		Source:     SourceID(c.Source),
		Addr:       c.Addr,
		Data:       data,
		Seq:        c.First,
		LastSeq:    c.Last,
		Lost:       c.Lost,
		LossReason: c.LossReason,
		GoneReason: c.GoneReason,
		Prev:       SourceID(c.Prev),
	}
}
