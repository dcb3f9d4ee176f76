package mcast

// byteFIFO holds byte strings, taken and given back in first-in
// first-out order, in one buffer allocated once: the data of a queue of
// messages. A queue that kept one buffer per entry would keep each
// entry's largest message for ever (a Receiver's 4096 queued events
// held 31 MB after a stream of mixed sizes up to 20 KB); this one holds
// what is queued, within a fixed size, and allocates nothing.
//
// The bytes in use are [start, end), or after a wrap [start, limit) and
// [0, end): a string never wraps, one that does not fit at the end goes
// to the front, and the bytes from limit on are unused until start
// passes them.
type byteFIFO struct {
	buf               []byte
	start, end, limit int
	wrapped           bool
}

func newByteFIFO(size int) byteFIFO { return byteFIFO{buf: make([]byte, size)} }

// alloc returns n bytes at the back of the FIFO, or false if they do not
// fit now. An empty FIFO fits anything up to its size.
func (f *byteFIFO) alloc(n int) ([]byte, bool) {
	switch {
	case !f.wrapped && f.end+n <= len(f.buf):
	case !f.wrapped && n <= f.start:
		f.limit, f.wrapped, f.end = f.end, true, 0
	case f.wrapped && f.end+n <= f.start:
	default:
		return nil, false
	}
	b := f.buf[f.end : f.end+n : f.end+n]
	f.end += n
	return b, true
}

// free gives back the n bytes at the front: the oldest string, which was
// n bytes long.
func (f *byteFIFO) free(n int) {
	f.start += n
	if f.wrapped && f.start == f.limit {
		f.start, f.limit, f.wrapped = 0, 0, false
	}
	if !f.wrapped && f.start == f.end {
		f.start, f.end = 0, 0 // empty: start over at the front
	}
}
