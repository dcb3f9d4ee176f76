package xfer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{Name: "a", Size: 0},
		{Name: "report 2026.pdf", Size: 8 << 20, SHA256: [32]byte{1, 2, 3, 31: 0xff}},
		{Name: "ünïcödé ✓", Size: 1<<64 - 1},
		{Name: strings.Repeat("n", MaxName), Size: 1},
	} {
		b, err := AppendHeader([]byte("keep"), &h)
		if err != nil {
			t.Fatalf("%q: %v", h.Name, err)
		}
		if !bytes.HasPrefix(b, []byte("keep")) || len(b) != 4+HeaderFixed+len(h.Name) {
			t.Fatalf("%q: %d bytes", h.Name, len(b))
		}
		if Kind(b[4:]) != KindHeader {
			t.Errorf("kind %q", Kind(b[4:]))
		}
		got, err := ParseHeader(b[4:])
		if err != nil || got != h {
			t.Errorf("round trip: %+v, %v; want %+v", got, err, h)
		}
	}
}

func TestBadNames(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "/etc/passwd", "../x", `a\b`, "nul\x00", "\xff\xfe", strings.Repeat("n", MaxName+1)} {
		if err := CheckName(name); !errors.Is(err, ErrBadName) {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
		if _, err := AppendHeader(nil, &Header{Name: name}); !errors.Is(err, ErrBadName) {
			t.Errorf("AppendHeader(%q) = %v", name, err)
		}
		// A header crafted by someone else is refused too.
		b, _ := AppendHeader(nil, &Header{Name: "x"})
		b = append(b[:HeaderFixed-2], byte(len(name)>>8), byte(len(name)))
		b = append(b, name...)
		if _, err := ParseHeader(b); !errors.Is(err, ErrBadName) {
			t.Errorf("ParseHeader with name %q = %v", name, err)
		}
	}
	for _, name := range []string{"..a", "a..", "...", ".hidden", "a b", "x.tar.gz"} {
		if err := CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	good, _ := AppendHeader(nil, &Header{Name: "file", Size: 5})
	for _, tc := range []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrNotHeader},
		{"data", []byte("Dhello"), ErrNotHeader},
		{"magic", append([]byte("HRMXG"), good[5:]...), ErrNotHeader},
		{"short", good[:HeaderFixed-1], ErrNotHeader},
		{"name short", good[:len(good)-1], ErrNotHeader},
		{"name long", append(good, 'x'), ErrNotHeader},
		{"version", append(append([]byte("HRMXF"), 2), good[6:]...), ErrVersion},
	} {
		if _, err := ParseHeader(tc.msg); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
	}
}

// FuzzParseHeader: any input either fails cleanly or decodes to a header
// with a safe name that encodes back to the same bytes.
func FuzzParseHeader(f *testing.F) {
	for _, h := range []Header{{Name: "a"}, {Name: "file.bin", Size: 1 << 33, SHA256: [32]byte{9}}} {
		b, _ := AppendHeader(nil, &h)
		f.Add(b)
	}
	f.Add([]byte("HRMXF"))
	f.Add([]byte("Dpayload"))
	f.Add(append([]byte("HRMXF\x01"), make([]byte, 42)...))
	f.Fuzz(func(t *testing.T, msg []byte) {
		h, err := ParseHeader(msg)
		if err != nil {
			return
		}
		if CheckName(h.Name) != nil {
			t.Fatalf("accepted unsafe name %q", h.Name)
		}
		b, err := AppendHeader(nil, &h)
		if err != nil || !bytes.Equal(b, msg) {
			t.Fatalf("re-encoded %x, %v; input %x", b, err, msg)
		}
	})
}

func TestHashCanceled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("data"), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	h, err := Hash(ctx, p)
	if err != nil || h.Size != 4 || h.Name != "f" {
		t.Errorf("%+v, %v", h, err)
	}
	cancel()
	if _, err := Hash(ctx, p); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
}
