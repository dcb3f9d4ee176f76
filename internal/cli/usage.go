package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// PrintFlags lists fs's flags in GNU style ("--name VALUE"), each with
// its usage and its default when that is not the zero value. A flag's
// usage names its value in `backquotes`, as flag.UnquoteUsage reads it.
func PrintFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		var b strings.Builder
		b.WriteString("  --")
		b.WriteString(f.Name)
		if name != "" {
			b.WriteByte(' ')
			b.WriteString(name)
		}
		b.WriteString("\n        ")
		b.WriteString(strings.ReplaceAll(usage, "\n", "\n        "))
		if d := f.DefValue; d != "" && d != "0" && d != "false" && d != "0s" {
			fmt.Fprintf(&b, " (default %s)", d)
		}
		b.WriteByte('\n')
		io.WriteString(w, b.String())
	})
}

// UsageError is an error in the command line: the commands exit with
// status 2 on it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// FlagError turns an error of fs.Parse into a UsageError that names
// flags the way the help does ("--rate", not "-rate") and says what a
// number or a switch should look like.
func FlagError(fs *flag.FlagSet, err error) error {
	msg := err.Error()
	msg = strings.Replace(msg, "invalid boolean value", "invalid value", 1)
	msg = strings.Replace(msg, " for flag -", " for -", 1)
	msg = strings.Replace(msg, " for -", " for --", 1)
	msg = strings.Replace(msg, "flag provided but not defined: -", "unknown flag --", 1)
	msg = strings.Replace(msg, "flag needs an argument: -", "flag needs a value: --", 1)
	if rest, ok := strings.CutSuffix(msg, ": parse error"); ok {
		want := "a whole number"
		if _, name, ok := strings.Cut(rest, " for --"); ok {
			if f := fs.Lookup(name); f != nil {
				if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
					want = "true or false (or just --" + name + ")"
				}
			}
		}
		msg = rest + ": want " + want
	}
	msg = strings.Replace(msg, ": value out of range", ": out of range", 1)
	return &UsageError{Err: errors.New(msg)}
}

// DurationFlag is a flag.Value for a time.Duration whose errors say how
// to write one.
type DurationFlag struct{ D time.Duration }

// Set implements flag.Value.
func (d *DurationFlag) Set(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		if _, e := strconv.ParseFloat(s, 64); e == nil {
			return fmt.Errorf("%q has no unit; write a duration such as 500ms, 2s or 1m30s", s)
		}
		return fmt.Errorf("%q is not a duration; write one such as 500ms, 2s or 1m30s", s)
	}
	d.D = v
	return nil
}

// String implements flag.Value.
func (d *DurationFlag) String() string {
	if d == nil {
		return "0s"
	}
	return d.D.String()
}

// Parse parses args with fs. On --help it writes head and the flag list to
// out and returns flag.ErrHelp; a flag error or a stray argument becomes a
// usage error, strayHint saying what to do instead. It returns the names
// of the flags given.
func Parse(fs *flag.FlagSet, args []string, out io.Writer, head, strayHint string) (map[string]bool, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(out, head)
			PrintFlags(out, fs)
			return nil, err
		}
		return nil, FlagError(fs, err)
	}
	if fs.NArg() > 0 {
		return nil, Usagef("unexpected argument %q: %s", fs.Arg(0), strayHint)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set, nil
}
