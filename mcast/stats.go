package mcast

import (
	"context"
	"log/slog"
	"net/netip"
	"time"

	"github.com/relmcast/relmcast/internal/wire"
	"github.com/relmcast/relmcast/session"
)

// LatencyHistogram counts durations in fixed log-spaced buckets
// (session.LatencyBounds: 100µs to 10s, 1-2-5) with their sum and
// maximum; Quantile estimates p50 or p99 from them.
type LatencyHistogram = session.LatencyHistogram

// LatencyBounds are the upper bounds of a LatencyHistogram's buckets; its
// last bucket is unbounded.
var LatencyBounds = session.LatencyBounds

// SourceState is where a source is in its life on a Receiver.
type SourceState = session.SourceState

// The states of a source.
const (
	SourceActive    = session.SourceActive    // sending, or silent but not yet expired
	SourceFinishing = session.SourceFinishing // sent FIN; its last repairs may still come
	SourceClosing   = session.SourceClosing   // gone or restarted; its last events wait to be read
)

// LateNAKer is a receiver that NAKed data the Sender no longer holds (or
// never sent): the sign of a receiver that cannot keep up.
type LateNAKer = session.LateNAKer

// SourceStats are the counters and gauges of one source on a Receiver:
// what was delivered and lost, the NAK traffic, repairs and their
// latency, and how full its receive window is. See session.SourceStats
// for each field.
type SourceStats struct {
	Source SourceID
	session.SourceStats
}

// Sources returns a snapshot of the stats of every source the Receiver
// tracks now, in order of arrival. A source is listed from its first
// packet until its EventSourceGone has been read; after Close there are
// none. The snapshot is taken by the goroutine that owns the protocol
// state, like Stats; call it at monitoring rates (per second), not per
// message.
func (r *Receiver) Sources() []SourceStats {
	c := make(chan []SourceStats, 1)
	select {
	case r.srcReq <- c:
		return <-c
	case <-r.done:
		return nil
	}
}

// sourceStats converts the core's source stats, in the loop goroutine.
func (r *Receiver) sourceStats() []SourceStats {
	r.srcBuf = r.core.Sources(r.srcBuf[:0])
	out := make([]SourceStats, len(r.srcBuf))
	for i := range r.srcBuf {
		out[i] = SourceStats{Source: SourceID(r.srcBuf[i].TSI), SourceStats: r.srcBuf[i]}
	}
	return out
}

// Rate is the data rate between two snapshots of the same Sender, prev
// taken before s: messages and ODATA+RDATA bytes (PGM payload, headers
// included) per second. Zero if no time passed.
func (s SenderStats) Rate(prev SenderStats) (msgsPerSec, bytesPerSec float64) {
	d := (s.Uptime - prev.Uptime).Seconds()
	if d <= 0 {
		return 0, 0
	}
	return float64(s.Messages-prev.Messages) / d,
		float64(s.ODATABytes+s.RDATABytes-prev.ODATABytes-prev.RDATABytes) / d
}

// logEvent logs a Receiver event that is not a message: a source new,
// gone or restarted at Info, a loss at Warn.
func logEvent(l *slog.Logger, e *Event) {
	ctx := context.Background()
	switch e.Kind {
	case EventData:
	case EventLoss:
		if l.Enabled(ctx, slog.LevelWarn) {
			l.LogAttrs(ctx, slog.LevelWarn, "mcast: loss", slog.String("source", e.Source.String()),
				slog.Any("addr", e.Addr), slog.Uint64("first", uint64(e.Seq)), slog.Uint64("last", uint64(e.LastSeq)),
				slog.Uint64("lost", e.Lost), slog.String("reason", e.LossReason.String()))
		}
	case EventSourceNew:
		l.LogAttrs(ctx, slog.LevelInfo, "mcast: source new", slog.String("source", e.Source.String()), slog.Any("addr", e.Addr))
	case EventSourceRestart:
		l.LogAttrs(ctx, slog.LevelInfo, "mcast: source restart", slog.String("source", e.Source.String()),
			slog.Any("addr", e.Addr), slog.String("prev", e.Prev.String()))
	case EventSourceGone:
		l.LogAttrs(ctx, slog.LevelInfo, "mcast: source gone", slog.String("source", e.Source.String()),
			slog.Any("addr", e.Addr), slog.String("reason", e.GoneReason.String()))
	}
}

// logNAK logs, at Debug, a NAK (or SPMR) a Receiver sends, or one a
// Sender receives (sent false).
func logNAK(l *slog.Logger, sent bool, pkt []byte, peer netip.AddrPort) {
	ctx := context.Background()
	if l == nil || !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	var p wire.Packet
	if wire.Parse(pkt, &p) != nil {
		return
	}
	logNAKPacket(l, sent, &p, peer)
}

func logNAKPacket(l *slog.Logger, sent bool, p *wire.Packet, peer netip.AddrPort) {
	ctx := context.Background()
	if l == nil || !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	if p.Type != wire.TypeNAK && p.Type != wire.TypeSPMR {
		return
	}
	msg, dir := "mcast: NAK received", "from"
	if sent {
		msg, dir = "mcast: NAK sent", "to"
	}
	if p.Type == wire.TypeSPMR {
		msg = "mcast: SPMR sent"
	}
	l.LogAttrs(ctx, slog.LevelDebug, msg, slog.String("source", p.TSI().String()), slog.Any(dir, peer),
		slog.Uint64("seq", uint64(p.Seq)), slog.Int("count", 1+p.NAKListLen),
		slog.Bool("parity", p.Options&wire.OptParity != 0))
}

// lateNAKWarn warns, at most once per lateNAKEvery, that receivers NAK
// data the Sender no longer holds.
type lateNAKWarn struct {
	l    *slog.Logger
	seen uint64 // NAKsOutsideWindow at the last check
	last time.Time
}

const lateNAKEvery = 10 * time.Second

func (w *lateNAKWarn) check(now time.Time, st *session.SenderStats) {
	if w.l == nil || st.NAKsOutsideWindow == w.seen || now.Sub(w.last) < lateNAKEvery {
		return
	}
	w.l.LogAttrs(context.Background(), slog.LevelWarn,
		"mcast: NAKs for data no longer in the window: a receiver cannot keep up (or the window is too short)",
		slog.Any("naker", st.LastOutsideNAKer), slog.Uint64("naks", st.NAKsOutsideWindow-w.seen),
		slog.Uint64("total", st.NAKsOutsideWindow))
	w.seen, w.last = st.NAKsOutsideWindow, now
}
