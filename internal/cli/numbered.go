package cli

import (
	"encoding/binary"
	"fmt"
	"time"
)

// NumberedHeader is the size of a numbered message's header: the message
// number, big-endian. A numbered message is at least this long.
const NumberedHeader = 8

// patternStart is the first pattern byte of message n; byte i (i >= 8) of
// the message is patternStart(n) + i, modulo 256. It depends on n so that a
// message with a right header and another message's body is caught.
func patternStart(n uint64) byte { return byte((n * 0x9E3779B97F4A7C15) >> 56) }

// FillNumbered fills b (len(b) >= NumberedHeader) as message number n: the
// first 8 bytes are n, big-endian; the rest is a pattern derived from n.
func FillNumbered(b []byte, n uint64) {
	binary.BigEndian.PutUint64(b, n)
	p := patternStart(n) + NumberedHeader
	for i := NumberedHeader; i < len(b); i++ {
		b[i] = p
		p++
	}
}

// CheckNumbered returns the number of the numbered message b and whether
// its body is the pattern FillNumbered wrote. It does not allocate.
func CheckNumbered(b []byte) (n uint64, ok bool) {
	if len(b) < NumberedHeader {
		return 0, false
	}
	n = binary.BigEndian.Uint64(b)
	p := patternStart(n) + NumberedHeader
	for _, c := range b[NumberedHeader:] {
		if c != p {
			return n, false
		}
		p++
	}
	return n, true
}

// PerSecond formats count per second over secs seconds ("-" when secs
// is 0).
func PerSecond(count float64, secs float64) string {
	if secs <= 0 {
		return "-"
	}
	v := count / secs
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// RoundDuration rounds d for a summary line: to the millisecond from 10ms
// up, to the microsecond below.
func RoundDuration(d time.Duration) time.Duration {
	if d >= 10*time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
