package main

import (
	"fmt"
	"io"

	"github.com/relmcast/relmcast/internal/cli"
	"github.com/relmcast/relmcast/mcast"
)

// verifier checks the numbered messages of mcsend --count: per source,
// numbers 0, 1, 2, ... in order, each with its pattern.
type verifier struct {
	w       io.Writer // reports the first problems
	next    map[mcast.SourceID]*uint64
	lastSrc mcast.SourceID
	lastNxt *uint64 // next of lastSrc: spares a map lookup per message

	ok, bad, outOfOrder, missing uint64
	reported                     int
}

// maxReports bounds the problems reported one by one.
const maxReports = 10

func (v *verifier) init(w io.Writer) {
	v.w = w
	v.next = make(map[mcast.SourceID]*uint64)
}

func (v *verifier) problems() uint64 { return v.bad + v.outOfOrder + v.missing }

// event starts a source over at message 0.
func (v *verifier) event(ev *mcast.Event) {
	switch ev.Kind {
	case mcast.EventSourceNew, mcast.EventSourceRestart:
		n := new(uint64)
		v.next[ev.Source] = n
		if v.lastNxt != nil && v.lastSrc == ev.Source {
			v.lastNxt = n
		}
	}
}

// check checks one message; it allocates nothing but for a source it has
// not seen an event of.
func (v *verifier) check(ev *mcast.Event) {
	next := v.lastNxt
	if next == nil || v.lastSrc != ev.Source {
		next = v.next[ev.Source]
		if next == nil {
			next = new(uint64)
			v.next[ev.Source] = next
		}
		v.lastSrc, v.lastNxt = ev.Source, next
	}
	n, ok := cli.CheckNumbered(ev.Data)
	switch {
	case !ok:
		v.bad++
		if len(ev.Data) < cli.NumberedHeader {
			v.report("message seq %d from %v: %d bytes, too short for a numbered message", ev.Seq, ev.Source, len(ev.Data))
		} else {
			v.report("message seq %d from %v: #%d has the wrong content", ev.Seq, ev.Source, n)
		}
	case n == *next:
		v.ok++
		*next = n + 1
	case n > *next:
		v.ok++
		v.missing += n - *next
		v.report("message #%d from %v, expected #%d: %d missing", n, ev.Source, *next, n-*next)
		*next = n + 1
	default:
		v.outOfOrder++
		v.report("message #%d from %v out of order: expected #%d", n, ev.Source, *next)
	}
}

func (v *verifier) report(format string, args ...any) {
	if v.reported++; v.reported > maxReports {
		if v.reported == maxReports+1 {
			fmt.Fprintln(v.w, "mcrecv: verify: more problems; see the summary")
		}
		return
	}
	fmt.Fprintf(v.w, "mcrecv: verify: "+format+"\n", args...)
}

func (v *verifier) summary() {
	verdict := "ok"
	if v.problems() > 0 {
		verdict = "FAILED"
	}
	fmt.Fprintf(v.w, "mcrecv: verify %s: %d in order, %d bad content, %d out of order, %d missing\n",
		verdict, v.ok, v.bad, v.outOfOrder, v.missing)
}
