package lossy

import (
	"flag"
	"math"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		cfg     Config
		wantErr string // substring; "" = valid
	}{
		{Config{}, ""},
		{Config{Loss: 1, BurstLoss: 0.5, BurstLen: 3, Reorder: 0, Duplicate: 1}, ""},
		{Config{Loss: -0.1}, "Config.Loss = -0.1 is not a probability"},
		{Config{Loss: 1.5}, "Config.Loss = 1.5"},
		{Config{BurstLoss: 2}, "Config.BurstLoss = 2"},
		{Config{Reorder: math.NaN()}, "Config.Reorder = NaN"},
		{Config{Duplicate: math.Inf(1)}, "Config.Duplicate = +Inf"},
		{Config{BurstLen: -1}, "Config.BurstLen = -1 is negative"},
	} {
		err := tt.cfg.Validate()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%+v: Validate() = %v, want nil", tt.cfg, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%+v: Validate() = %v, want error containing %q", tt.cfg, err, tt.wantErr)
		}
	}
}

func TestActive(t *testing.T) {
	if (Config{Seed: 9, BurstLen: 3}).Active() {
		t.Error("Config with only Seed and BurstLen is Active")
	}
	for _, c := range []Config{{Loss: 0.1}, {BurstLoss: 0.1}, {Reorder: 0.1}, {Duplicate: 0.1}} {
		if !c.Active() {
			t.Errorf("%+v is not Active", c)
		}
	}
}

func TestParseSpec(t *testing.T) {
	for _, tt := range []struct {
		spec string
		want Config
	}{
		{"", Config{}},
		{"   ", Config{}},
		{"0", Config{}},
		{"0.05", Config{Loss: 0.05}},
		{"5%", Config{Loss: 0.05}},
		{"1", Config{Loss: 1}},
		{"loss=0.05", Config{Loss: 0.05}},
		{"loss=0.05,burst=0.01,burstlen=8,reorder=0.02,dup=0.01,seed=7",
			Config{Loss: 0.05, BurstLoss: 0.01, BurstLen: 8, Reorder: 0.02, Duplicate: 0.01, Seed: 7}},
		{" LOSS = 2.5% , seed=010 ", Config{Loss: 0.025, Seed: 10}},
		{"0.1,seed=3", Config{Loss: 0.1, Seed: 3}},
		{"burstloss=0.5,duplicate=0.25", Config{BurstLoss: 0.5, Duplicate: 0.25}},
		{"burst=0.01", Config{BurstLoss: 0.01}},
		{"seed=18446744073709551615", Config{Seed: math.MaxUint64}},
	} {
		got, err := ParseSpec(tt.spec)
		if err != nil {
			t.Errorf("ParseSpec(%q): %v", tt.spec, err)
			continue
		}
		if got.String() != tt.want.String() || !approx(got, tt.want) {
			t.Errorf("ParseSpec(%q) = %+v, want %+v", tt.spec, got, tt.want)
		}
	}
}

func approx(a, b Config) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-12 }
	return eq(a.Loss, b.Loss) && eq(a.BurstLoss, b.BurstLoss) && eq(a.Reorder, b.Reorder) &&
		eq(a.Duplicate, b.Duplicate) && a.BurstLen == b.BurstLen && a.Seed == b.Seed
}

func TestParseSpecErrors(t *testing.T) {
	for _, tt := range []struct {
		spec string
		want []string // substrings the error must contain
	}{
		{"abc", []string{`"abc" is not a number`, "0.05"}},
		{"1.5", []string{`"1.5" is more than 1`, "loss=1.5%"}},
		{"50", []string{"more than 1", "loss=50%"}},
		{"loss=-0.1", []string{"loss=-0.1 is out of range", "from 0 to 1"}},
		{"loss=150%", []string{"loss=150% is out of range"}},
		{"loss=NaN", []string{"loss=NaN is not a number"}},
		{"loss=", []string{"loss= is not a number"}},
		{"lose=0.1", []string{`unknown key "lose"`, "loss, burst, burstlen, reorder, dup and seed"}},
		{"loss=0.1,,seed=1", []string{"empty item"}},
		{"loss=0.1,", []string{"empty item"}},
		{"loss=0.1,loss=0.2", []string{"loss is given twice"}},
		{"0.1,loss=0.2", []string{"loss is given twice"}},
		{"dup=0.1,duplicate=0.2", []string{"dup is given twice"}},
		{"burst=0.1,burstlen=0", []string{"burstlen=0 is not a positive whole number", "burstlen=8"}},
		{"burst=0.1,burstlen=x", []string{"burstlen=x is not a positive"}},
		{"burstlen=4", []string{"burstlen has no effect without burst", "burst=0.01"}},
		{"seed=-1", []string{"seed=-1 is not an unsigned 64-bit integer", "seed=7"}},
		{"seed=0x10", []string{"seed=0x10 is not an unsigned 64-bit integer"}},
		{"reorder=yes", []string{"reorder=yes is not a number", "reorder=0.05"}},
	} {
		_, err := ParseSpec(tt.spec)
		if err == nil {
			t.Errorf("ParseSpec(%q) succeeded, want error", tt.spec)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseSpec(%q) error %q does not contain %q", tt.spec, err, w)
			}
		}
		if !strings.HasPrefix(err.Error(), "lossy: bad impairment spec ") {
			t.Errorf("ParseSpec(%q) error %q does not quote the spec", tt.spec, err)
		}
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, c := range []Config{
		{},
		{Loss: 0.05},
		{Loss: 0.05, BurstLoss: 0.01, BurstLen: 8, Reorder: 0.02, Duplicate: 0.01, Seed: 7},
		{Reorder: 1, Seed: math.MaxUint64},
	} {
		s := c.String()
		got, err := ParseSpec(s)
		if err != nil {
			t.Errorf("ParseSpec(%q) (from %+v): %v", s, c, err)
			continue
		}
		if got.String() != s || !approx(got, c) {
			t.Errorf("round trip %+v -> %q -> %+v", c, s, got)
		}
	}
}

func TestFlagValue(t *testing.T) {
	filter := func([]byte) bool { return true }
	cfg := Config{Filter: filter}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	fs.Var(&cfg, "loss", "impairments")
	if err := fs.Parse([]string{"-loss", "loss=0.25,seed=4"}); err != nil {
		t.Fatal(err)
	}
	if cfg.Loss != 0.25 || cfg.Seed != 4 || cfg.Filter == nil {
		t.Errorf("after -loss: %+v (Filter kept: %v)", cfg, cfg.Filter != nil)
	}
	err := fs.Parse([]string{"-loss", "loss=2"})
	if err == nil || !strings.Contains(err.Error(), "loss=2 is more than 1") {
		t.Errorf("-loss loss=2: err = %v", err)
	}
}
