package xfer

import (
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/relmcast/relmcast/mcast"
)

var (
	srcA = mcast.SourceID{GSI: [6]byte{1}, Port: 1}
	srcB = mcast.SourceID{GSI: [6]byte{2}, Port: 2}
)

// feeder builds events for a Receiver and collects its results.
type feeder struct {
	t       *testing.T
	r       *Receiver
	results []Result
	seq     uint32
}

func newFeeder(t *testing.T) *feeder {
	f := &feeder{t: t}
	f.r = &Receiver{Dir: t.TempDir(), Done: func(res Result) { f.results = append(f.results, res) }}
	return f
}

func (f *feeder) msg(src mcast.SourceID, b []byte) {
	f.seq++
	f.r.Handle(&mcast.Event{Kind: mcast.EventData, Source: src, Data: b, Seq: f.seq, LastSeq: f.seq})
}

func (f *feeder) header(src mcast.SourceID, name string, content []byte) {
	b, err := AppendHeader(nil, &Header{Name: name, Size: uint64(len(content)), SHA256: sha256.Sum256(content)})
	if err != nil {
		f.t.Fatal(err)
	}
	f.msg(src, b)
}

// chunks sends content in data messages of n bytes.
func (f *feeder) chunks(src mcast.SourceID, content []byte, n int) {
	for c := range slices.Chunk(content, n) {
		f.msg(src, append([]byte{KindData}, c...))
	}
}

func (f *feeder) file(src mcast.SourceID, name string, content []byte) {
	f.header(src, name, content)
	f.chunks(src, content, 7)
}

// dir returns the names in the directory, hidden ones included.
func (f *feeder) dir() []string {
	es, err := os.ReadDir(f.r.Dir)
	if err != nil {
		f.t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func (f *feeder) wantFile(name string, content []byte) {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.r.Dir, name))
	if err != nil || string(b) != string(content) {
		f.t.Errorf("%s: %q, %v; want %q", name, b, err, content)
	}
}

func TestReceiverFiles(t *testing.T) {
	f := newFeeder(t)
	one, two := []byte("the first file, in several chunks"), []byte("second")
	// Joined mid-file: data before any header is skipped.
	f.chunks(srcA, []byte("tail of a file we missed"), 5)
	f.file(srcA, "one.txt", one)
	// Two sources interleaved, and an empty file.
	f.header(srcA, "two", two)
	f.header(srcB, "empty", nil)
	f.msg(srcB, nil) // an empty message outside a file: skipped
	f.chunks(srcA, two, 100)
	if len(f.results) != 3 {
		t.Fatalf("results %+v", f.results)
	}
	for i, want := range []string{"one.txt", "empty", "two"} {
		r := f.results[i]
		if r.Err != nil || r.Header.Name != want || r.Path != filepath.Join(f.r.Dir, want) || r.Received != r.Header.Size {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	f.wantFile("one.txt", one)
	f.wantFile("two", two)
	f.wantFile("empty", nil)
	if f.r.Skipped != 5+1 {
		t.Errorf("skipped %d", f.r.Skipped)
	}
	if got := f.dir(); !slices.Equal(got, []string{"empty", "one.txt", "two"}) {
		t.Errorf("dir %q", got)
	}
	// The same name again: numbered, the first untouched.
	f.file(srcB, "one.txt", two)
	f.file(srcB, "one.txt", []byte("3"))
	f.wantFile("one.txt", one)
	f.wantFile("one.txt.1", two)
	f.wantFile("one.txt.2", []byte("3"))
	if n := len(f.results); n != 5 || f.results[4].Path != filepath.Join(f.r.Dir, "one.txt.2") {
		t.Errorf("results %+v", f.results)
	}
}

func TestReceiverFailures(t *testing.T) {
	content := []byte("0123456789abcdefghij")
	for _, tc := range []struct {
		name string
		hit  func(f *feeder) // after the header and 7 bytes
		want error
	}{
		{"loss", func(f *feeder) {
			f.r.Handle(&mcast.Event{Kind: mcast.EventLoss, Source: srcA, Seq: 9, LastSeq: 9, Lost: 1, LossReason: mcast.LossRetriesExhausted})
		}, ErrLoss},
		{"gone", func(f *feeder) {
			f.r.Handle(&mcast.Event{Kind: mcast.EventSourceGone, Source: srcA, GoneReason: mcast.GoneFIN})
		}, ErrSourceEnd},
		{"restart", func(f *feeder) {
			f.r.Handle(&mcast.Event{Kind: mcast.EventSourceRestart, Source: mcast.SourceID{GSI: [6]byte{3}}, Prev: srcA})
		}, ErrRestart},
		{"next-file", func(f *feeder) { f.header(srcA, "other", nil) }, ErrNextFile},
		{"unexpected", func(f *feeder) { f.msg(srcA, []byte("Xjunk")) }, ErrUnexpected},
		{"too-long", func(f *feeder) { f.chunks(srcA, make([]byte, 14), 14) }, ErrTooLong},
		{"hash", func(f *feeder) { f.chunks(srcA, []byte("0123456789abX"), 13) }, ErrHash},
		{"stopped", func(f *feeder) { f.r.Close() }, ErrStopped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFeeder(t)
			f.header(srcA, "victim", content)
			f.chunks(srcA, content[:7], 7)
			// Another source's file in progress is not hurt (but by Close).
			f.header(srcB, "bystander", content)
			f.chunks(srcB, content[:3], 3)
			tc.hit(f)
			if len(f.results) == 0 {
				t.Fatalf("no result")
			}
			r := f.results[0]
			for _, x := range f.results { // Close fails every file, in no order
				if x.Header.Name == "victim" {
					r = x
				}
			}
			if !errors.Is(r.Err, tc.want) || r.Path != "" || r.Header.Name != "victim" {
				t.Errorf("result %+v; want error %v", r, tc.want)
			}
			t.Logf("%v", r.Err)
			// What follows in the failed file is skipped; the next header
			// starts afresh.
			f.chunks(srcA, content[7:], 5)
			f.file(srcA, "after", content)
			f.wantFile("after", content)
			if tc.want != ErrStopped {
				f.chunks(srcB, content[3:], 6)
				f.wantFile("bystander", content)
			}
			for _, n := range f.dir() {
				if n == "victim" || filepath.Ext(n) == ".part" {
					t.Errorf("left %s in the directory: %q", n, f.dir())
				}
			}
		})
	}
}

func TestReceiverBadHeader(t *testing.T) {
	f := newFeeder(t)
	b, _ := AppendHeader(nil, &Header{Name: "x", Size: 3})
	b = append(b[:HeaderFixed-2], 0, 5)
	b = append(b, "../up"...)
	f.msg(srcA, b)
	f.chunks(srcA, []byte("abc"), 3)
	if len(f.results) != 1 || !errors.Is(f.results[0].Err, ErrBadName) || f.r.Skipped != 1 || len(f.dir()) != 0 {
		t.Errorf("results %+v skipped %d dir %q", f.results, f.r.Skipped, f.dir())
	}
	// Not a header at all (another application's message): skipped.
	f.msg(srcA, []byte("Hello"))
	if len(f.results) != 1 || f.r.Skipped != 2 {
		t.Errorf("results %+v skipped %d", f.results, f.r.Skipped)
	}
}

func TestReceiverTooMany(t *testing.T) {
	f := newFeeder(t)
	for i := range MaxOpen + 1 {
		f.header(mcast.SourceID{GSI: [6]byte{byte(i)}, Port: 9}, "f", []byte("x"))
	}
	if len(f.results) != 1 || !errors.Is(f.results[0].Err, ErrTooMany) || f.r.InProgress() != MaxOpen {
		t.Errorf("results %+v in progress %d", f.results, f.r.InProgress())
	}
	f.r.Close()
	if len(f.results) != MaxOpen+1 || len(f.dir()) != 0 {
		t.Errorf("%d results, dir %q", len(f.results), f.dir())
	}
}

// TestReceiverAllocs: a data message costs no allocation.
func TestReceiverAllocs(t *testing.T) {
	f := newFeeder(t)
	f.r.Handle(&mcast.Event{Kind: mcast.EventSourceNew, Source: srcA})
	big := make([]byte, 1<<30)
	b, _ := AppendHeader(nil, &Header{Name: "big", Size: uint64(len(big))})
	f.msg(srcA, b)
	ev := mcast.Event{Kind: mcast.EventData, Source: srcA, Data: append([]byte{KindData}, make([]byte, 1400)...)}
	if n := testing.AllocsPerRun(1000, func() { f.r.Handle(&ev) }); n != 0 {
		t.Errorf("%v allocations per data message", n)
	}
	f.r.Close()
}

// TestRemoveTemps: the temporary files of files in progress go.
func TestRemoveTemps(t *testing.T) {
	f := newFeeder(t)
	f.header(srcA, "a", []byte("abc"))
	f.header(srcB, "b", []byte("abc"))
	if n := len(f.dir()); n != 2 {
		t.Fatalf("%d temporary files", n)
	}
	f.r.RemoveTemps()
	if n := len(f.dir()); n != 0 {
		t.Errorf("left %q", f.dir())
	}
}

// FuzzReceiver feeds arbitrary messages and events: no panic, no
// temporary file left after Close, and every file written has the size
// and hash of its header.
func FuzzReceiver(f *testing.F) {
	h, _ := AppendHeader(nil, &Header{Name: "f", Size: 3, SHA256: sha256.Sum256([]byte("abc"))})
	seed := func(msgs ...[]byte) []byte {
		var b []byte
		for _, m := range msgs {
			b = append(b, byte(len(m)))
			b = append(b, m...)
		}
		return b
	}
	f.Add(seed(h, []byte("Dab"), []byte("Dc")))
	f.Add(seed(h, []byte("Dabcd")))
	f.Add(seed([]byte("Dx"), h, []byte{0xff}, []byte("Dabc")))
	f.Fuzz(func(t *testing.T, in []byte) {
		dir := t.TempDir()
		var results []Result
		r := &Receiver{Dir: dir, Done: func(res Result) { results = append(results, res) }}
		for len(in) > 0 {
			n := int(in[0])
			in = in[1:]
			src := mcast.SourceID{Port: uint16(n & 1)}
			switch {
			case n == 0xff: // a loss
				r.Handle(&mcast.Event{Kind: mcast.EventLoss, Source: src})
				continue
			case n > len(in):
				n = len(in)
			}
			r.Handle(&mcast.Event{Kind: mcast.EventData, Source: src, Data: in[:n]})
			in = in[n:]
		}
		r.Close()
		for _, res := range results {
			if res.Err != nil {
				continue
			}
			b, err := os.ReadFile(res.Path)
			if err != nil || uint64(len(b)) != res.Header.Size || sha256.Sum256(b) != res.Header.SHA256 {
				t.Fatalf("%s: %d bytes, %v; header %+v", res.Path, len(b), err, res.Header)
			}
		}
		es, _ := os.ReadDir(dir)
		for _, e := range es {
			if filepath.Ext(e.Name()) == ".part" {
				t.Fatalf("left %s", e.Name())
			}
		}
	})
}

// BenchmarkReceiverData: the cost of a data message of one packet's
// content (1447 bytes): hash and buffered write to a file.
func BenchmarkReceiverData(b *testing.B) {
	r := &Receiver{Dir: b.TempDir()}
	h, _ := AppendHeader(nil, &Header{Name: "big", Size: 1 << 50})
	r.Handle(&mcast.Event{Kind: mcast.EventData, Source: srcA, Data: h})
	ev := mcast.Event{Kind: mcast.EventData, Source: srcA, Data: append([]byte{KindData}, make([]byte, 1447)...)}
	b.SetBytes(1447)
	b.ReportAllocs()
	for b.Loop() {
		r.Handle(&ev)
	}
	b.StopTimer()
	r.Close()
}
