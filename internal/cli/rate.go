package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseRate parses a rate in bits per second: a decimal number with an
// optional SI suffix k, M or G (powers of 1000, either case), optionally
// followed by "bit/s", "bit", "bps" or "b/s": "100M", "1.5G", "250kbit",
// "1000000". "0" means unlimited and is returned as 0; the result is
// otherwise at least 1. Byte units ("MB", "MB/s") are refused with a hint
// to convert to bits.
func ParseRate(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty rate; write bits per second such as 100M, 1.5G or 0 for unlimited")
	}
	low := strings.ToLower(s)
	// Unit after the multiplier.
	for _, u := range []string{"bit/s", "bits/s", "bps", "b/s", "bit", "bits"} {
		if strings.HasSuffix(low, u) {
			if strings.HasSuffix(s, "B/s") || strings.HasSuffix(s, "Bps") {
				return 0, byteUnitErr(orig)
			}
			low = low[:len(low)-len(u)]
			s = s[:len(s)-len(u)]
			break
		}
	}
	switch {
	case strings.HasSuffix(s, "B"):
		return 0, byteUnitErr(orig)
	case strings.HasSuffix(s, "b"): // "100Mb": megabits
		s, low = s[:len(s)-1], low[:len(low)-1]
	}
	mult := 1.0
	if n := len(low); n > 0 {
		switch low[n-1] {
		case 'k':
			mult = 1e3
		case 'm':
			mult = 1e6
		case 'g':
			mult = 1e9
		case 't':
			mult = 1e12
		}
		if mult != 1 {
			low = low[:n-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(low), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("rate %q is not a number of bits per second; write e.g. 100M, 1.5G, 500k or 0 for unlimited", orig)
	}
	if v < 0 {
		return 0, fmt.Errorf("rate %q is negative; write a positive rate such as 100M, or 0 for unlimited", orig)
	}
	bps := v * mult
	switch {
	case bps == 0:
		return 0, nil
	case bps < 1:
		return 0, fmt.Errorf("rate %q is below 1 bit/s; write 0 for unlimited or a rate such as 1M", orig)
	case bps >= math.MaxInt64:
		return 0, fmt.Errorf("rate %q is too large; write 0 for unlimited", orig)
	}
	return int64(math.Round(bps)), nil
}

func byteUnitErr(s string) error {
	return fmt.Errorf("rate %q is in bytes; rates are in bits per second: multiply by 8 (100 MB/s is 800M)", s)
}

// FormatRate formats bits per second with an SI suffix, as ParseRate
// reads it back: 100000000 is "100M", 1500000000 is "1.5G"; 0 is
// "unlimited".
func FormatRate(bps int64) string {
	if bps <= 0 {
		return "unlimited"
	}
	for _, u := range []struct {
		div float64
		suf string
	}{{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}} {
		if float64(bps) >= u.div {
			return strconv.FormatFloat(float64(bps)/u.div, 'f', -1, 64) + u.suf
		}
	}
	return strconv.FormatInt(bps, 10)
}

// RateFlag is a flag.Value for a rate in bits per second (see ParseRate).
// The zero RateFlag is unset.
type RateFlag struct {
	BPS   int64 // 0: unlimited (when IsSet)
	IsSet bool
}

// Set implements flag.Value.
func (r *RateFlag) Set(s string) error {
	v, err := ParseRate(s)
	if err != nil {
		return err
	}
	r.BPS, r.IsSet = v, true
	return nil
}

// String implements flag.Value.
func (r *RateFlag) String() string {
	if r == nil || !r.IsSet {
		return ""
	}
	if r.BPS == 0 {
		return "0"
	}
	return FormatRate(r.BPS)
}

// ConfigRate maps the flag onto mcast.Config.Rate: unset is 0 (the
// library default), 0 (unlimited) is -1, anything else is itself.
func (r *RateFlag) ConfigRate() int64 {
	switch {
	case !r.IsSet:
		return 0
	case r.BPS == 0:
		return -1
	}
	return r.BPS
}
