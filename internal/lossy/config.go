// Package lossy injects seeded, reproducible network impairments (random
// loss, burst loss, reordering and duplication) into a stream of datagrams.
//
// It has two layers:
//
//   - [Impairer] is the pure decision engine. It sees one datagram at a time
//     and says what to do with it (deliver, drop, duplicate or hold back); it
//     never touches the payload and keeps no buffers, so any datagram
//     representation can use it. The in-memory network in mcast/mcasttest
//     uses one per receiving endpoint.
//   - [Wrap] applies an Impairer to the datagrams read from a udp.Transport
//     (receive side only; writes pass through), which is what the CLIs'
//     --loss testing flags use over real sockets.
//
// Decisions depend only on [Config] (including Seed) and on the sequence of
// datagrams offered, so the same seed and the same input give the same drops,
// duplicates and reorderings on every run.
package lossy

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// DefaultBurstLen is the number of datagrams dropped per burst when
// Config.BurstLoss > 0 and Config.BurstLen is 0.
const DefaultBurstLen = 10

// Config describes the impairments applied to a datagram stream. The zero
// value impairs nothing. All probabilities are per datagram, in [0, 1].
type Config struct {
	// Loss is the probability that a datagram is dropped, independently of
	// every other datagram.
	Loss float64
	// BurstLoss is the probability that a burst of drops starts at a
	// datagram. The datagram that starts the burst and the BurstLen-1 after
	// it (among those the Filter selects) are dropped.
	BurstLoss float64
	// BurstLen is the number of datagrams dropped per burst; 0 means
	// DefaultBurstLen when BurstLoss > 0.
	BurstLen int
	// Reorder is the probability that a datagram is held back and delivered
	// after the next 1 to 3 datagrams that are delivered (the count is drawn
	// uniformly). At most MaxHeld datagrams are held at once; a datagram
	// chosen for reordering when all are in use is delivered normally. A
	// held datagram waits for later traffic: if none comes, it stays held.
	Reorder float64
	// Duplicate is the probability that a datagram is delivered twice in a
	// row.
	Duplicate float64
	// Seed seeds the random source (math/rand/v2 PCG). The same Seed and
	// the same sequence of datagrams give the same decisions.
	Seed uint64
	// Filter, if not nil, selects the datagrams subject to impairment (for
	// example only ODATA packets); the others are always delivered at once
	// and consume no randomness. Filter must not retain b or modify it, and
	// must not call back into whatever is delivering the datagram.
	Filter func(b []byte) bool
}

// Active reports whether c impairs anything at all.
func (c Config) Active() bool {
	return c.Loss > 0 || c.BurstLoss > 0 || c.Reorder > 0 || c.Duplicate > 0
}

// burstLen returns the effective burst length.
func (c Config) burstLen() int {
	if c.BurstLen > 0 {
		return c.BurstLen
	}
	return DefaultBurstLen
}

// Validate reports the first field of c that is out of range, by name.
func (c Config) Validate() error {
	for _, f := range [...]struct {
		name string
		p    float64
	}{
		{"Loss", c.Loss},
		{"BurstLoss", c.BurstLoss},
		{"Reorder", c.Reorder},
		{"Duplicate", c.Duplicate},
	} {
		if !(f.p >= 0 && f.p <= 1) { // also rejects NaN
			return fmt.Errorf("lossy: Config.%s = %v is not a probability; want a value from 0 to 1 (0.05 means 5%%)", f.name, f.p)
		}
	}
	if c.BurstLen < 0 {
		return fmt.Errorf("lossy: Config.BurstLen = %d is negative; want 0 (meaning %d) or more", c.BurstLen, DefaultBurstLen)
	}
	return nil
}

// String formats c in the ParseSpec syntax, omitting zero fields (and the
// Filter, which has no textual form). The zero Config formats as "".
func (c Config) String() string {
	var b strings.Builder
	add := func(key, val string) {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(key)
		b.WriteByte('=')
		b.WriteString(val)
	}
	fmtP := func(p float64) string { return strconv.FormatFloat(p, 'g', -1, 64) }
	if c.Loss != 0 {
		add("loss", fmtP(c.Loss))
	}
	if c.BurstLoss != 0 {
		add("burst", fmtP(c.BurstLoss))
	}
	if c.BurstLen != 0 {
		add("burstlen", strconv.Itoa(c.BurstLen))
	}
	if c.Reorder != 0 {
		add("reorder", fmtP(c.Reorder))
	}
	if c.Duplicate != 0 {
		add("dup", fmtP(c.Duplicate))
	}
	if c.Seed != 0 {
		add("seed", strconv.FormatUint(c.Seed, 10))
	}
	return b.String()
}

// Set parses s with ParseSpec and stores the result in c, keeping c.Filter.
// Together with String it makes *Config a flag.Value:
//
//	var loss lossy.Config
//	flag.Var(&loss, "loss", "testing only: drop received packets, e.g. 0.05 or loss=0.05,burst=0.01,seed=7")
func (c *Config) Set(s string) error {
	nc, err := ParseSpec(s)
	if err != nil {
		return err
	}
	nc.Filter = c.Filter
	*c = nc
	return nil
}

const specKeys = "loss, burst, burstlen, reorder, dup and seed"

// ParseSpec parses an impairment spec as given to a --loss flag:
//
//	""          no impairment
//	"0.05"      5% independent loss (also "5%")
//	"loss=0.05,burst=0.01,burstlen=8,reorder=0.02,dup=0.01,seed=7"
//
// Keys are loss, burst (burst start probability), burstlen (datagrams per
// burst, default 10), reorder, dup (or duplicate) and seed; probabilities are
// numbers from 0 to 1 or percentages ("2.5%"). Spaces around items are
// ignored. The errors say which item is wrong and what to write instead.
func ParseSpec(s string) (Config, error) {
	var c Config
	s = strings.TrimSpace(s)
	if s == "" {
		return c, nil
	}
	seen := make(map[string]bool)
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return Config{}, specErr(s, "empty item; separate items with single commas, as in loss=0.05,seed=7")
		}
		key, val, hasEq := strings.Cut(item, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		val = strings.TrimSpace(val)
		if !hasEq {
			// A bare number is the loss probability.
			key, val = "loss", item
		}
		switch key {
		case "burstloss":
			key = "burst"
		case "duplicate":
			key = "dup"
		}
		if seen[key] {
			return Config{}, specErr(s, fmt.Sprintf("%s is given twice; give it once", key))
		}
		seen[key] = true
		var err error
		switch key {
		case "loss":
			c.Loss, err = parseProb(key, val, !hasEq)
		case "burst":
			c.BurstLoss, err = parseProb(key, val, false)
		case "reorder":
			c.Reorder, err = parseProb(key, val, false)
		case "dup":
			c.Duplicate, err = parseProb(key, val, false)
		case "burstlen":
			var n int64
			n, err = strconv.ParseInt(val, 10, 32)
			if err != nil || n < 1 {
				err = fmt.Errorf("burstlen=%s is not a positive whole number; write e.g. burstlen=8", val)
			}
			c.BurstLen = int(n)
		case "seed":
			c.Seed, err = strconv.ParseUint(val, 10, 64)
			if err != nil {
				err = fmt.Errorf("seed=%s is not an unsigned 64-bit integer; write e.g. seed=7", val)
			}
		default:
			if !hasEq {
				return Config{}, specErr(s, fmt.Sprintf("%q is neither a probability nor key=value; write e.g. 0.05 or loss=0.05 (keys: %s)", item, specKeys))
			}
			return Config{}, specErr(s, fmt.Sprintf("unknown key %q; the keys are %s", key, specKeys))
		}
		if err != nil {
			return Config{}, specErr(s, err.Error())
		}
	}
	if c.BurstLen != 0 && c.BurstLoss == 0 {
		return Config{}, specErr(s, "burstlen has no effect without burst; add burst=P (e.g. burst=0.01) or remove burstlen")
	}
	return c, nil
}

func specErr(spec, msg string) error {
	return fmt.Errorf("lossy: bad impairment spec %q: %s", spec, msg)
}

// parseProb parses a probability "0.05" or percentage "5%". bare says the
// value was given without a key, which only changes the wording of errors.
func parseProb(key, val string, bare bool) (float64, error) {
	name := key + "=" + val
	if bare {
		name = strconv.Quote(val)
	}
	num, pct := strings.CutSuffix(val, "%")
	p, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || math.IsNaN(p) || math.IsInf(p, 0) {
		return 0, fmt.Errorf("%s is not a number; write a probability such as %s=0.05 or a percentage such as %s=5%%", name, key, key)
	}
	if pct {
		p /= 100
	}
	if p < 0 || p > 1 {
		if !pct && p > 1 && p <= 100 {
			return 0, fmt.Errorf("%s is more than 1; probabilities go from 0 to 1 (for %v percent write %s=%v%%)", name, p, key, p)
		}
		return 0, fmt.Errorf("%s is out of range; want a probability from 0 to 1 (or 0%% to 100%%)", name)
	}
	return p, nil
}
