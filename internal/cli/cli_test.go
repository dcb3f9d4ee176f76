package cli

import (
	"errors"
	"flag"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"100M", 100_000_000},
		{"1.5G", 1_500_000_000},
		{"0", 0},
		{"0M", 0},
		{"500k", 500_000},
		{"500K", 500_000},
		{"100m", 100_000_000},
		{"100Mbit", 100_000_000},
		{"100Mbit/s", 100_000_000},
		{"100mbps", 100_000_000},
		{"100Mb", 100_000_000},
		{"2.5g", 2_500_000_000},
		{"1000000", 1_000_000},
		{" 10M ", 10_000_000},
		{"1T", 1_000_000_000_000},
	} {
		got, err := ParseRate(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, hint string }{
		{"", "100M"},
		{"fast", "100M"},
		{"1x", "100M"},
		{"-5M", "positive"},
		{"100MB", "multiply by 8"},
		{"100MB/s", "multiply by 8"},
		{"12MBps", "multiply by 8"},
		{"0.1", "0 for unlimited"},
		{"1e30G", "too large"},
		{"NaN", "100M"},
	} {
		_, err := ParseRate(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("ParseRate(%q) error %v; want one that says %q", tc.in, err, tc.hint)
		}
	}
}

func TestFormatRate(t *testing.T) {
	for bps, want := range map[int64]string{0: "unlimited", -1: "unlimited", 100e6: "100M", 1.5e9: "1.5G", 999: "999", 64e3: "64k"} {
		if got := FormatRate(bps); got != want {
			t.Errorf("FormatRate(%d) = %q; want %q", bps, got, want)
		}
		if bps > 0 {
			if back, err := ParseRate(want); err != nil || back != bps {
				t.Errorf("ParseRate(FormatRate(%d)) = %d, %v", bps, back, err)
			}
		}
	}
}

func TestRateFlag(t *testing.T) {
	var r RateFlag
	if r.ConfigRate() != 0 {
		t.Errorf("unset: ConfigRate = %d; want 0 (library default)", r.ConfigRate())
	}
	for in, want := range map[string]int64{"0": -1, "100M": 100e6, "1.5G": 1.5e9} {
		if err := r.Set(in); err != nil {
			t.Fatal(err)
		}
		if got := r.ConfigRate(); got != want {
			t.Errorf("--rate %s: ConfigRate = %d; want %d", in, got, want)
		}
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	var rf RateFlag
	fs.Var(&rf, "rate", "")
	err := fs.Parse([]string{"--rate", "lots"})
	if err == nil || !strings.Contains(FlagError(fs, err).Error(), "for --rate") {
		t.Errorf("flag error %v", err)
	}
}

func TestParseGroup(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"239.192.0.1:7500", "239.192.0.1:7500"},
		{"239.192.0.9:7600", "239.192.0.9:7600"},
		{"224.0.0.251:5353", "224.0.0.251:5353"},
		{"239.192.0.1", "239.192.0.1:7500"},
		{":7600", "239.192.0.1:7600"},
		{"[ff02::1:3%v0]:7500", "[ff02::1:3%v0]:7500"},
		{"[ff02::1:3%2]:7501", "[ff02::1:3%2]:7501"},
		{"[ff15::1]:9000", "[ff15::1]:9000"},
		{"ff02::1:3%v0", "[ff02::1:3%v0]:7500"},
		{"[ff02::1:3%v0]", "[ff02::1:3%v0]:7500"},
		{"[::ffff:239.1.2.3]:7500", "239.1.2.3:7500"},
	} {
		got, err := ParseGroup(tc.in)
		if err != nil || got != netip.MustParseAddrPort(tc.want) {
			t.Errorf("ParseGroup(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ in, hint string }{
		{"", "239.192.0.1:7500"},
		{"10.0.0.1:7500", "not a multicast address"},
		{"127.0.0.1", "224.0.0.0/4"},
		{"[fe80::1%v0]:7500", "ff00::/8"},
		{"239.192.0.1:0", "1 to 65535"},
		{"239.192.0.1:70000", "1 to 65535"},
		{"239.192.0.1:http", "1 to 65535"},
		{"localhost:7500", "not an IP address"},
		{"ff02::1:3%v0]:7500", "brackets"},
		{"239.192.0.1%eth0:7500", "IPv6 only"},
		{"239.192.0.1:7500:1", "ADDR:PORT"},
	} {
		_, err := ParseGroup(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("ParseGroup(%q) error %v; want one that says %q", tc.in, err, tc.hint)
		}
	}
}

func TestInterface(t *testing.T) {
	g := netip.MustParseAddrPort("239.192.0.1:7500")
	if ifi, err := Interface("", g); ifi != nil || err != nil {
		t.Errorf("no iface: %v, %v; want nil, nil", ifi, err)
	}
	if _, err := Interface("no-such-if0", g); err == nil || !strings.Contains(err.Error(), "ip link") {
		t.Errorf("unknown iface: %v", err)
	}
	z := netip.MustParseAddrPort("[ff02::1%no-such-if0]:7500")
	if _, err := Interface("", z); err == nil || !strings.Contains(err.Error(), "zone") {
		t.Errorf("unknown zone: %v", err)
	}
	lo, err := Interface("lo", g)
	if err != nil {
		t.Skipf("no lo: %v", err)
	}
	if ifi, err := Interface("", netip.MustParseAddrPort("[ff02::1%lo]:7500")); err != nil || ifi.Index != lo.Index {
		t.Errorf("zone lo: %v, %v", ifi, err)
	}
	if ifi, err := Interface("lo", netip.MustParseAddrPort("[ff02::1%lo]:7500")); err != nil || ifi.Index != lo.Index {
		t.Errorf("iface and zone lo: %v, %v", ifi, err)
	}
}

func TestAddrFlag(t *testing.T) {
	var a AddrFlag
	for _, ok := range []string{"127.0.0.1", "127.0.0.2", "fe80::1%v0", "[::1]"} {
		if err := a.Set(ok); err != nil {
			t.Errorf("Set(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "host", "239.192.0.1", "0.0.0.0"} {
		if err := a.Set(bad); err == nil {
			t.Errorf("Set(%q) succeeded", bad)
		}
	}
}

func TestDurationFlag(t *testing.T) {
	var d DurationFlag
	if err := d.Set("1m30s"); err != nil || d.D != 90*time.Second {
		t.Errorf("1m30s: %v %v", d.D, err)
	}
	if err := d.Set("5"); err == nil || !strings.Contains(err.Error(), "no unit") {
		t.Errorf("5: %v", err)
	}
	if err := d.Set("soon"); err == nil || !strings.Contains(err.Error(), "500ms") {
		t.Errorf("soon: %v", err)
	}
}

func TestFlagError(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.Int("count", 0, "")
	fs.Bool("json", false, "")
	for args, want := range map[string]string{
		"--count x":    `invalid value "x" for --count: want a whole number`,
		"--json=maybe": `invalid value "maybe" for --json: want true or false (or just --json)`,
		"--nope":       "unknown flag --nope",
		"--count":      "flag needs a value: --count",
	} {
		err := fs.Parse(strings.Fields(args))
		var ue *UsageError
		if fe := FlagError(fs, err); !errors.As(fe, &ue) || fe.Error() != want {
			t.Errorf("%s: %v; want %q", args, fe, want)
		}
	}
}

func TestNumbered(t *testing.T) {
	for _, size := range []int{8, 9, 100, 1000, 65535} {
		b := make([]byte, size)
		for _, n := range []uint64{0, 1, 255, 256, 1 << 40} {
			FillNumbered(b, n)
			if got, ok := CheckNumbered(b); !ok || got != n {
				t.Fatalf("size %d: CheckNumbered(FillNumbered(%d)) = %d, %v", size, n, got, ok)
			}
		}
	}
	a, b := make([]byte, 100), make([]byte, 100)
	FillNumbered(a, 5)
	FillNumbered(b, 6)
	copy(a[8:], b[8:]) // number 5 with message 6's body
	if _, ok := CheckNumbered(a); ok {
		t.Error("a body of another message passed")
	}
	FillNumbered(a, 5)
	a[99] ^= 1
	if _, ok := CheckNumbered(a); ok {
		t.Error("a flipped bit passed")
	}
	if _, ok := CheckNumbered(a[:7]); ok {
		t.Error("7 bytes passed")
	}
	if n := testing.AllocsPerRun(100, func() { CheckNumbered(b) }); n != 0 {
		t.Errorf("CheckNumbered allocates %v", n)
	}
}
