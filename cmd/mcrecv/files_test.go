package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relmcast/relmcast/internal/xfer"
	"github.com/relmcast/relmcast/mcast"
)

// fileMsgs frames a file as mcsend --file does, with chunk bytes of
// content per message; sum, if not nil, replaces the true hash.
func fileMsgs(t *testing.T, name string, content []byte, chunk int, sum *[32]byte) [][]byte {
	h := xfer.Header{Name: name, Size: uint64(len(content)), SHA256: sha256.Sum256(content)}
	if sum != nil {
		h.SHA256 = *sum
	}
	b, err := xfer.AppendHeader(nil, &h)
	if err != nil {
		t.Fatal(err)
	}
	msgs := [][]byte{b}
	for c := range slices.Chunk(content, chunk) {
		msgs = append(msgs, append([]byte{xfer.KindData}, c...))
	}
	return msgs
}

// TestRunOut: mcrecv --out writes the files of a source under loss,
// exactly, and reports them; --files ends it.
func TestRunOut(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 300_000)
	for i := range big {
		big[i] = byte(i ^ i>>8)
	}
	var msgs [][]byte
	msgs = append(msgs, []byte("a message before any file: skipped"))
	msgs = append(msgs, fileMsgs(t, "empty", nil, 1447, nil)...)
	msgs = append(msgs, fileMsgs(t, "big.bin", big, 1447, nil)...)
	code, out, errs := memRun(t, []string{"--out", dir, "--files", "2", "--timeout", "20s"}, "loss=0.05,seed=8", msgs)
	if code != 0 || out != "" {
		t.Fatalf("exit %d, stdout %q; stderr:\n%s", code, out, errs)
	}
	for name, want := range map[string][]byte{"empty": nil, "big.bin": big} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || !bytes.Equal(b, want) {
			t.Errorf("%s: %d bytes, %v", name, len(b), err)
		}
	}
	for _, want := range []string{`file "big.bin" from `, ": 300000 bytes, sha256 ", "written to " + filepath.Join(dir, "big.bin") + ": 300000 bytes, sha256 ok",
		"files: 2 written, 0 failed; 1 messages outside files skipped"} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errs)
		}
	}
}

// TestRunOutFailed: a file whose hash does not match is not written, is
// reported (here in JSON), and makes the exit status 3; the next file of
// the same name is written under its name.
func TestRunOutFailed(t *testing.T) {
	dir := t.TempDir()
	var bad [32]byte
	msgs := fileMsgs(t, "f.txt", []byte("corrupt content"), 4, &bad)
	msgs = append(msgs, fileMsgs(t, "f.txt", []byte("good content"), 4, nil)...)
	code, out, errs := memRun(t, []string{"--out", dir, "--json", "--files", "2", "--timeout", "20s"}, "", msgs)
	if code != 3 {
		t.Errorf("exit %d; want 3; stderr:\n%s", code, errs)
	}
	var types []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		types = append(types, m["type"].(string))
		switch m["type"] {
		case "file-failed":
			if m["name"] != "f.txt" || m["size"] != 15.0 || m["received"] != 15.0 || !strings.Contains(m["error"].(string), "SHA-256 mismatch") {
				t.Errorf("%s", sc.Text())
			}
		case "file":
			if m["path"] != filepath.Join(dir, "f.txt") || m["sha256"] != "" && len(m["sha256"].(string)) != 64 {
				t.Errorf("%s", sc.Text())
			}
		}
	}
	if got := strings.Join(types, " "); got != "source-new file-start file-failed file-start file" {
		t.Errorf("types %q", got)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "f.txt")); string(b) != "good content" {
		t.Errorf("f.txt: %q, %v", b, err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("dir: %v", es)
	}
}

func TestParseOut(t *testing.T) {
	dir := t.TempDir()
	if o, err := parseArgs([]string{"--out", dir, "--files", "3"}, io.Discard); err != nil || o.out != dir || o.files != 3 {
		t.Errorf("%+v, %v", o, err)
	}
	for _, tc := range []struct{ args, hint string }{
		{"--out " + dir + " --zmq", "excludes"},
		{"--out " + dir + " --verify", "excludes"},
		{"--files 2", "with --out"},
		{"--out " + dir + " --files 0", "at least 1"},
		{"--out " + filepath.Join(dir, "nosuch"), "not a directory"},
	} {
		if _, err := parseArgs(strings.Fields(tc.args), io.Discard); err == nil || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("%s: %v; want %q", tc.args, err, tc.hint)
		}
	}
}

// TestOutAllocs: a file's data message costs no allocation.
func TestOutAllocs(t *testing.T) {
	o := &options{mode: modeQuiet, out: t.TempDir()}
	a := newApp(o, io.Discard, io.Discard, time.Now())
	b, _ := xfer.AppendHeader(nil, &xfer.Header{Name: "big", Size: 1 << 40})
	a.handle(&mcast.Event{Kind: mcast.EventSourceNew, Source: testSource})
	a.handle(&mcast.Event{Kind: mcast.EventData, Source: testSource, Data: b})
	ev := mcast.Event{Kind: mcast.EventData, Source: testSource, Data: append([]byte{xfer.KindData}, make([]byte, 1447)...)}
	if n := testing.AllocsPerRun(1000, func() { a.handle(&ev) }); n != 0 {
		t.Errorf("%v allocations per data message", n)
	}
	a.f.rx.Close()
}
