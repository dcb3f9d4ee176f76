package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Terminal reports whether f is a terminal, and its width in columns
// (80 when it cannot be read).
func Terminal(f *os.File) (tty bool, width int) {
	fd := int(f.Fd())
	if !term.IsTerminal(fd) {
		return false, 0
	}
	w, _, err := term.GetSize(fd)
	if err != nil || w <= 0 {
		w = 80
	}
	return true, w
}

// clearLine returns the cursor to the start of the line and erases it
// (carriage return, then ANSI "erase to end of line").
const clearLine = "\r\x1b[K"

// Status draws a one-line status on a terminal, redrawn in place every
// period until Stop. Everything else written to the terminal must go
// through Status.Write, which erases the status line first, so that
// messages never land after it on the same line; the next tick draws it
// again below them.
type Status struct {
	mu    sync.Mutex
	w     io.Writer
	line  func() string
	width int
	shown bool
	stop  chan struct{}
	done  chan struct{}
}

// NewStatus returns a Status for w, a terminal of width columns. Until
// Start it draws nothing and its Write writes through.
func NewStatus(w io.Writer, width int) *Status {
	return &Status{w: w, width: width, stop: make(chan struct{}), done: make(chan struct{})}
}

// StartStatus is NewStatus then Start.
func StartStatus(w io.Writer, width int, period time.Duration, line func() string) *Status {
	s := NewStatus(w, width)
	s.Start(period, line)
	return s
}

// Start draws line() every period, cut to width-1 columns so that it
// never wraps (which would break the redraw in place). Call it once.
func (s *Status) Start(period time.Duration, line func() string) {
	s.line = line
	go s.run(period)
}

func (s *Status) run(period time.Duration) {
	defer close(s.done)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Draw()
		}
	}
}

// Draw draws the status line now.
func (s *Status) Draw() {
	l := s.line()
	if s.width > 1 && len(l) > s.width-1 {
		l = l[:s.width-1]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	io.WriteString(s.w, clearLine+l)
	s.shown = true
}

// Write erases the status line if it is shown, then writes p.
func (s *Status) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		io.WriteString(s.w, clearLine)
		s.shown = false
	}
	return s.w.Write(p)
}

// Stop stops the redraws and erases the line. It is safe to call more
// than once.
func (s *Status) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
		if s.line == nil {
			close(s.done) // never started
		}
	}
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		io.WriteString(s.w, clearLine)
		s.shown = false
	}
}

// Meter turns counter totals into rates per second between two calls.
type Meter struct {
	t               time.Time
	msgs, bytes     uint64
	msgRate, byRate float64
}

// Update records totals at now and returns the rates since the last
// update (0 on the first).
func (m *Meter) Update(now time.Time, msgs, bytes uint64) (msgsPerSec, bytesPerSec float64) {
	if !m.t.IsZero() {
		if secs := now.Sub(m.t).Seconds(); secs > 0 {
			m.msgRate = float64(msgs-m.msgs) / secs
			m.byRate = float64(bytes-m.bytes) / secs
		}
	}
	m.t, m.msgs, m.bytes = now, msgs, bytes
	return m.msgRate, m.byRate
}

// ProgressBar formats done of total bytes as a bar of width cells, the
// percentage and the bytes, e.g. "[#####.....]  50% 4.2/8.4 MB".
func ProgressBar(done, total uint64, width int) string {
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	n := int(frac * float64(width))
	return fmt.Sprintf("[%s%s] %3.0f%% %s/%s", strings.Repeat("#", n), strings.Repeat(".", width-n),
		frac*100, MB(done), MB(total))
}

// MB formats a byte count in decimal megabytes (as the summaries' MB/s).
func MB(b uint64) string {
	return fmt.Sprintf("%.1f MB", float64(b)/1e6)
}

// ETA formats the time left at a rate in bytes per second ("--:--" when
// the rate is 0).
func ETA(left uint64, rate float64) string {
	if rate <= 0 {
		return "--:--"
	}
	d := time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%d:%02d:%02d", h, m, s)
	}
	return fmt.Sprintf("%d:%02d", m, s)
}
