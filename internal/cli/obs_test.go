package cli

import (
	"flag"
	"io"
	"strings"
	"testing"
)

func TestObservability(t *testing.T) {
	parse := func(args ...string) (*Observability, error) {
		var o Observability
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.Register(fs)
		return &o, fs.Parse(args)
	}
	o, _ := parse()
	if o.Logger(io.Discard) != nil || o.Logging() || o.Metrics != "" {
		t.Error("no flags: a logger or metrics")
	}
	var b strings.Builder
	o, err := parse("--log-level", "warn", "--metrics", "127.0.0.1:9464")
	if err != nil || o.Metrics != "127.0.0.1:9464" {
		t.Fatalf("%v %q", err, o.Metrics)
	}
	l := o.Logger(&b)
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	if got := b.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `level=WARN msg=shown k=1`) {
		t.Errorf("text log %q", got)
	}
	b.Reset()
	o, _ = parse("--log-format", "json")
	l = o.Logger(&b)
	l.Debug("hidden")
	l.Info("shown")
	if got := b.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"level":"INFO","msg":"shown"`) {
		t.Errorf("json log %q", got)
	}
	for _, bad := range [][]string{{"--log-level", "trace"}, {"--log-format", "logfmt"}, {"--metrics", "localhost"}, {"--metrics", ":99999"}} {
		if _, err := parse(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if _, err := parse("--log-level", "DEBUG"); err != nil {
		t.Errorf("DEBUG: %v", err)
	}
}
