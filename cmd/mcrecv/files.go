package main

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/relmcast/relmcast/internal/cli"
	"github.com/relmcast/relmcast/internal/xfer"
	"github.com/relmcast/relmcast/mcast"
)

// files receives the files of mcsend --file into --out DIR.
type files struct {
	a  *app
	rx xfer.Receiver
	// Counts, read by the status line from another goroutine.
	ok, failed atomic.Uint64
}

func (f *files) init(a *app, dir string) {
	f.a = a
	f.rx = xfer.Receiver{Dir: dir, Start: f.start, Done: f.done}
}

func (f *files) handled() uint64 { return f.ok.Load() + f.failed.Load() }

func (f *files) start(src mcast.SourceID, h xfer.Header) {
	switch f.a.o.mode {
	case modeJSON:
		b := f.jsonHead("file-start", src, h)
		f.a.out.Write(append(b, "}\n"...))
		f.a.json.buf = b
	case modeText:
		f.a.flush()
		fmt.Fprintf(f.a.stderr, "mcrecv: file %q from %v: %d bytes, sha256 %x\n", h.Name, src, h.Size, h.SHA256)
	}
}

func (f *files) done(r xfer.Result) {
	if r.Err != nil {
		f.failed.Add(1)
	} else {
		f.ok.Add(1)
	}
	if f.a.o.mode == modeJSON {
		kind := "file"
		if r.Err != nil {
			kind = "file-failed"
		}
		b := f.jsonHead(kind, r.Source, r.Header)
		b = append(b, `,"received":`...)
		b = strconv.AppendUint(b, r.Received, 10)
		if r.Err != nil {
			b = append(b, `,"error":`...)
			b = appendString(b, []byte(r.Err.Error()))
		} else {
			b = append(b, `,"path":`...)
			b = appendString(b, []byte(r.Path))
		}
		f.a.out.Write(append(b, "}\n"...))
		f.a.json.buf = b
		return
	}
	f.a.flush()
	if r.Err != nil {
		fmt.Fprintf(f.a.stderr, "mcrecv: file %q from %v FAILED after %d of %d bytes: %v; nothing written\n",
			r.Header.Name, r.Source, r.Received, r.Header.Size, r.Err)
		return
	}
	fmt.Fprintf(f.a.stderr, "mcrecv: file %q from %v written to %s: %d bytes, sha256 ok\n", r.Header.Name, r.Source, r.Path, r.Received)
}

// jsonHead formats the common fields of a file event, without the
// closing brace, in the JSON writer's buffer.
func (f *files) jsonHead(kind string, src mcast.SourceID, h xfer.Header) []byte {
	j := &f.a.json
	b := append(j.buf[:0], `{"type":"`...)
	b = append(b, kind...)
	b = append(b, `","source":"`...)
	b = append(b, j.source(src)...)
	b = append(b, `","name":`...)
	b = appendString(b, []byte(h.Name))
	b = append(b, `,"size":`...)
	b = strconv.AppendUint(b, h.Size, 10)
	b = append(b, `,"sha256":"`...)
	b = fmt.Appendf(b, "%x", h.SHA256)
	return append(b, '"')
}

func (f *files) summary() {
	fmt.Fprintf(f.a.stderr, "mcrecv: files: %d written, %d failed; %d messages outside files skipped\n",
		f.ok.Load(), f.failed.Load(), f.rx.Skipped)
}

// statusLine returns the status line of a terminal: rates, messages,
// NAKs and repairs, packets lost, sources, and files with --out.
func statusLine(r *mcast.Receiver, a *app) func() string {
	var m cli.Meter
	m.Update(time.Now(), 0, 0)
	return func() string {
		st := r.Stats()
		mps, bps := m.Update(time.Now(), st.Messages, st.Bytes)
		// Short enough for 80 columns (but with --out); a narrower
		// terminal cuts the end.
		l := fmt.Sprintf("mcrecv: %.0f msgs/s %.1f MB/s | %d msgs | %d NAKs, %d repairs | %d lost | %d sources",
			mps, bps/1e6, st.Messages, st.NAKPackets, st.Repairs, st.Lost, st.Sources)
		if a.o.out != "" {
			l += fmt.Sprintf(" | files %d ok, %d failed", a.f.ok.Load(), a.f.failed.Load())
		}
		return l
	}
}
