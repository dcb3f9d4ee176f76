package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
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
