package cli

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
)

// Observability holds the flags mcsend and mcrecv share for logs and
// metrics: --log-level, --log-format and --metrics.
type Observability struct {
	level   slog.Level
	format  string
	logging bool // --log-level or --log-format was given
	// Metrics is the --metrics address (host:port); empty: no endpoint.
	Metrics string
}

// levelFlag is a flag.Value for --log-level.
type levelFlag struct{ o *Observability }

func (l levelFlag) String() string {
	if l.o == nil {
		return ""
	}
	return strings.ToLower(l.o.level.String())
}

func (l levelFlag) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		l.o.level = slog.LevelDebug
	case "info":
		l.o.level = slog.LevelInfo
	case "warn", "warning":
		l.o.level = slog.LevelWarn
	case "error":
		l.o.level = slog.LevelError
	default:
		return fmt.Errorf("%q is not a log level; write debug, info, warn or error", s)
	}
	l.o.logging = true
	return nil
}

// formatFlag is a flag.Value for --log-format.
type formatFlag struct{ o *Observability }

func (f formatFlag) String() string {
	if f.o == nil {
		return ""
	}
	return f.o.format
}

func (f formatFlag) Set(s string) error {
	switch v := strings.ToLower(strings.TrimSpace(s)); v {
	case "text", "json":
		f.o.format = v
	default:
		return fmt.Errorf("%q is not a log format; write text or json", s)
	}
	f.o.logging = true
	return nil
}

// metricsFlag is a flag.Value for --metrics: a host:port to listen on.
type metricsFlag struct{ o *Observability }

func (m metricsFlag) String() string {
	if m.o == nil {
		return ""
	}
	return m.o.Metrics
}

func (m metricsFlag) Set(s string) error {
	s = strings.TrimSpace(s)
	_, port, err := net.SplitHostPort(s)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT; write e.g. 127.0.0.1:9464 (or :9464 for every address)", s)
	}
	m.o.Metrics = s
	return nil
}

// Register adds the flags to fs.
func (o *Observability) Register(fs *flag.FlagSet) {
	o.level, o.format = slog.LevelInfo, "text"
	fs.Var(levelFlag{o}, "log-level", "structured log on stderr from `LEVEL` up: debug (each NAK), info (sources new, gone, restarted), warn (losses, receivers NAKing data already gone, socket errors) or error (default: no structured log)")
	fs.Var(formatFlag{o}, "log-format", "structured log `FORMAT` on stderr: text (key=value) or json (one object per line); alone, it logs from info up")
	fs.Var(metricsFlag{o}, "metrics", "serve Prometheus metrics on http://`HOST:PORT`/metrics, e.g. 127.0.0.1:9464 (default: off)")
}

// Logging reports whether a structured log was asked for.
func (o *Observability) Logging() bool { return o.logging }

// Logger returns the structured logger the flags ask for, writing to w,
// or nil if neither --log-level nor --log-format was given.
func (o *Observability) Logger(w io.Writer) *slog.Logger {
	if !o.logging {
		return nil
	}
	opts := &slog.HandlerOptions{Level: o.level}
	if o.format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
