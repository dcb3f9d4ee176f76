// Package xfer is the file framing of mcsend --file and mcrecv --out: a
// file goes out as one header message (name, size, SHA-256), then its
// content in data messages, in order, on one PGM source. A receiver
// writes the content to a temporary file as it arrives and keeps the file
// only when the size is reached and the hash matches; a loss event, a
// restart or the end of the source fails it.
//
// Each message begins with one kind byte. A header is
//
//	'H' "RMXF" version(1) size(8, big-endian) sha256(32) namelen(2) name
//
// and a data message is 'D' followed by up to a packet's worth of content
// (one byte of overhead per message). Data carries no offset: PGM delivers
// a source's messages in order or reports the hole, and the hole fails the
// file. A receiver that joins in the middle of a file skips data until the
// next header.
package xfer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Message kinds: the first byte of every message.
const (
	KindHeader byte = 'H'
	KindData   byte = 'D'
)

// Version is the header version this package writes and reads.
const Version = 1

const magic = "RMXF"

// HeaderFixed is the size of a header without its name.
const HeaderFixed = 1 + len(magic) + 1 + 8 + 32 + 2

// MaxName bounds a file name: what common file systems take.
const MaxName = 255

// DataOverhead is the size of a data message beyond its content.
const DataOverhead = 1

// Header describes one file.
type Header struct {
	Name   string // base name only: no path separator, not "." or ".."
	Size   uint64
	SHA256 [32]byte
}

// Errors of ParseHeader and CheckName.
var (
	ErrNotHeader = errors.New("xfer: not a file header")
	ErrVersion   = errors.New("xfer: unsupported header version")
	ErrBadName   = errors.New("xfer: bad file name")
)

// CheckName reports whether name is a plain file name that is safe to
// create in a directory: not empty, not "." or "..", no '/', '\\' or NUL,
// valid UTF-8, at most MaxName bytes. It refuses rather than sanitises, so
// that a receiver never writes a name the sender did not mean.
func CheckName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w %q", ErrBadName, name)
	case len(name) > MaxName:
		return fmt.Errorf("%w: %d bytes, more than %d", ErrBadName, len(name), MaxName)
	case strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("%w %q: a path, not a base name", ErrBadName, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w %q: not UTF-8", ErrBadName, name)
	}
	return nil
}

// AppendHeader appends h encoded as a header message to b. It refuses a
// name that CheckName refuses.
func AppendHeader(b []byte, h *Header) ([]byte, error) {
	if err := CheckName(h.Name); err != nil {
		return b, err
	}
	b = append(b, KindHeader)
	b = append(b, magic...)
	b = append(b, Version)
	b = binary.BigEndian.AppendUint64(b, h.Size)
	b = append(b, h.SHA256[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(h.Name)))
	return append(b, h.Name...), nil
}

// ParseHeader decodes a header message. It returns ErrNotHeader for a
// message that is not one (wrong kind or magic), ErrVersion for a newer
// version, and an error wrapping ErrBadName for a name CheckName refuses.
func ParseHeader(msg []byte) (Header, error) {
	var h Header
	if len(msg) < 1+len(magic) || msg[0] != KindHeader || string(msg[1:1+len(magic)]) != magic {
		return h, ErrNotHeader
	}
	if len(msg) < HeaderFixed {
		return h, fmt.Errorf("%w: %d bytes, shorter than %d", ErrNotHeader, len(msg), HeaderFixed)
	}
	p := msg[1+len(magic):]
	if p[0] != Version {
		return h, fmt.Errorf("%w %d", ErrVersion, p[0])
	}
	h.Size = binary.BigEndian.Uint64(p[1:9])
	copy(h.SHA256[:], p[9:41])
	n := int(binary.BigEndian.Uint16(p[41:43]))
	name := p[43:]
	if len(name) != n {
		return Header{}, fmt.Errorf("%w: name of %d bytes announced, %d present", ErrNotHeader, n, len(name))
	}
	if err := CheckName(string(name)); err != nil {
		return Header{}, err
	}
	h.Name = string(name)
	return h, nil
}

// Kind returns the kind byte of msg, 0 for an empty message.
func Kind(msg []byte) byte {
	if len(msg) == 0 {
		return 0
	}
	return msg[0]
}
