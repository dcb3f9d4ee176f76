package xfer

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/relmcast/relmcast/mcast"
)

// MaxOpen bounds the files a Receiver writes at once (one per source):
// each holds a file descriptor and a write buffer.
const MaxOpen = 64

// maxSuffix bounds the numbered names tried when a name is taken.
const maxSuffix = 999

// writeBuffer is the write buffer of each file in progress.
const writeBuffer = 64 << 10

// Result is the outcome of one file.
type Result struct {
	Source   mcast.SourceID
	Header   Header
	Path     string // where it was written; "" if it failed
	Received uint64 // content bytes received
	Err      error  // nil: written, complete, hash verified
}

// Failure reasons, wrapped in Result.Err.
var (
	ErrLoss       = errors.New("data lost")
	ErrSourceEnd  = errors.New("source ended before the end of the file")
	ErrRestart    = errors.New("source restarted")
	ErrHash       = errors.New("SHA-256 mismatch")
	ErrTooLong    = errors.New("more data than the header's size")
	ErrNextFile   = errors.New("the next file began before the end of this one")
	ErrUnexpected = errors.New("unexpected message in a file")
	ErrStopped    = errors.New("receiver stopped before the end of the file")
	ErrTooMany    = errors.New("too many files at once")
	ErrNameTaken  = errors.New("name and its numbered variants all taken")
)

// Receiver writes the files of every source into one directory. It is fed
// a Receiver's events in order with Handle, and is not safe for concurrent
// use.
//
// A file is written to a hidden temporary file in Dir while it is hashed;
// when its size is reached and the hash matches, it is linked under its
// name and the temporary file removed, so a file appears whole or not at
// all, mode 0644. An existing file is never overwritten: the new one takes the first
// free name of NAME.1, NAME.2, ... NAME.999. A file hit by a loss, the end
// or restart of its source, a hash mismatch or a write error is reported
// failed and its temporary file removed.
type Receiver struct {
	Dir string
	// Start, if not nil, is called when a file begins.
	Start func(src mcast.SourceID, h Header)
	// Done is called with the outcome of each file.
	Done func(Result)

	files   map[mcast.SourceID]*inFile
	lastSrc mcast.SourceID
	last    *inFile

	// Skipped counts data messages outside any file: the rest of a file
	// that failed, or that began before this receiver joined.
	Skipped uint64

	tmpMu sync.Mutex          // guards temps, which RemoveTemps reads
	temps map[string]struct{} // temporary files of files in progress
}

// inFile is one source's file in progress.
type inFile struct {
	h    Header
	tmp  *os.File
	w    *bufio.Writer
	sum  hash.Hash
	got  uint64
	werr error
}

// Handle processes one event.
func (r *Receiver) Handle(ev *mcast.Event) {
	switch ev.Kind {
	case mcast.EventData:
		r.data(ev.Source, ev.Data)
	case mcast.EventLoss:
		r.fail(ev.Source, fmt.Errorf("%w: seq %d-%d, %v", ErrLoss, ev.Seq, ev.LastSeq, ev.LossReason))
	case mcast.EventSourceGone:
		r.fail(ev.Source, fmt.Errorf("%w (%v)", ErrSourceEnd, ev.GoneReason))
	case mcast.EventSourceRestart:
		r.fail(ev.Prev, ErrRestart)
		r.fail(ev.Source, ErrRestart)
	}
}

// InProgress returns how many files are being received.
func (r *Receiver) InProgress() int { return len(r.files) }

// Close fails every file in progress with ErrStopped.
func (r *Receiver) Close() {
	for src := range r.files {
		r.fail(src, ErrStopped)
	}
}

func (r *Receiver) data(src mcast.SourceID, msg []byte) {
	f := r.last
	if f == nil || r.lastSrc != src {
		f = r.files[src]
		if f == nil && Kind(msg) != KindHeader {
			r.Skipped++
			return
		}
		r.lastSrc, r.last = src, f
	}
	switch Kind(msg) {
	case KindData:
		r.write(src, f, msg[DataOverhead:])
	case KindHeader:
		if f != nil {
			r.fail(src, ErrNextFile)
		}
		r.begin(src, msg)
	default:
		r.fail(src, fmt.Errorf("%w: kind %#x", ErrUnexpected, Kind(msg)))
	}
}

func (r *Receiver) begin(src mcast.SourceID, msg []byte) {
	h, err := ParseHeader(msg)
	if err != nil {
		if errors.Is(err, ErrNotHeader) {
			r.Skipped++
			return
		}
		r.done(Result{Source: src, Header: h, Err: err})
		return
	}
	if r.Start != nil {
		r.Start(src, h)
	}
	if len(r.files) >= MaxOpen {
		r.done(Result{Source: src, Header: h, Err: fmt.Errorf("%w: %d", ErrTooMany, MaxOpen)})
		return
	}
	tmp, err := os.CreateTemp(r.Dir, ".mcrecv-*.part")
	if err != nil {
		r.done(Result{Source: src, Header: h, Err: err})
		return
	}
	r.tmpMu.Lock()
	if r.temps == nil {
		r.temps = make(map[string]struct{})
	}
	r.temps[tmp.Name()] = struct{}{}
	r.tmpMu.Unlock()
	f := &inFile{h: h, tmp: tmp, w: bufio.NewWriterSize(tmp, writeBuffer), sum: sha256.New()}
	if r.files == nil {
		r.files = make(map[mcast.SourceID]*inFile)
	}
	r.files[src] = f
	r.lastSrc, r.last = src, f
	if h.Size == 0 {
		r.finish(src, f)
	}
}

func (r *Receiver) write(src mcast.SourceID, f *inFile, p []byte) {
	if uint64(len(p)) > f.h.Size-f.got {
		r.fail(src, ErrTooLong)
		return
	}
	f.got += uint64(len(p))
	f.sum.Write(p)
	if _, err := f.w.Write(p); err != nil {
		r.fail(src, err)
		return
	}
	if f.got == f.h.Size {
		r.finish(src, f)
	}
}

// finish checks a complete file and gives it its name.
func (r *Receiver) finish(src mcast.SourceID, f *inFile) {
	r.forget(src)
	res := Result{Source: src, Header: f.h, Received: f.got}
	var sum [32]byte
	f.sum.Sum(sum[:0])
	// Flushed, synced and readable by all (as files that cp makes, but
	// regardless of the umask) before it gets its name.
	err := f.w.Flush()
	if err == nil {
		err = f.tmp.Sync()
	}
	if err == nil {
		err = f.tmp.Chmod(0o644)
	}
	if e := f.tmp.Close(); err == nil {
		err = e
	}
	switch {
	case err != nil:
	case sum != f.h.SHA256:
		err = fmt.Errorf("%w: got %s, header says %s", ErrHash, hex.EncodeToString(sum[:]), hex.EncodeToString(f.h.SHA256[:]))
	default:
		res.Path, err = r.place(f.tmp.Name(), f.h.Name)
	}
	r.removeTemp(f.tmp.Name())
	res.Err = err
	r.done(res)
}

// place links tmp under name in r.Dir, or the first free numbered
// variant, and returns the path. Linking fails rather than replace a
// file, so no existing file is overwritten, even by a race.
func (r *Receiver) place(tmp, name string) (string, error) {
	for i := 0; i <= maxSuffix; i++ {
		n := name
		if i > 0 {
			n = name + "." + strconv.Itoa(i)
		}
		dst := filepath.Join(r.Dir, n)
		err := os.Link(tmp, dst)
		if err == nil {
			return dst, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("%w: %s", ErrNameTaken, name)
}

// fail reports src's file in progress, if any, as failed and removes its
// temporary file.
func (r *Receiver) fail(src mcast.SourceID, why error) {
	f := r.files[src]
	if f == nil {
		return
	}
	r.forget(src)
	f.tmp.Close()
	r.removeTemp(f.tmp.Name())
	r.done(Result{Source: src, Header: f.h, Received: f.got, Err: why})
}

func (r *Receiver) removeTemp(name string) {
	r.tmpMu.Lock()
	defer r.tmpMu.Unlock()
	os.Remove(name)
	delete(r.temps, name)
}

// RemoveTemps removes the temporary files of the files in progress, for a
// process about to exit without Close (a second signal). Unlike the other
// methods it may be called from any goroutine, once: the Receiver is not
// usable after it.
func (r *Receiver) RemoveTemps() {
	r.tmpMu.Lock()
	defer r.tmpMu.Unlock()
	for name := range r.temps {
		os.Remove(name)
	}
	clear(r.temps)
}

func (r *Receiver) forget(src mcast.SourceID) {
	delete(r.files, src)
	if r.lastSrc == src {
		r.last = nil
	}
}

func (r *Receiver) done(res Result) {
	if r.Done != nil {
		r.Done(res)
	}
}
