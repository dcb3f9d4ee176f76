package xfer

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
)

// Hash reads the file at path once and returns its header: base name,
// size and SHA-256. The file is streamed, never held in memory; a done
// ctx stops it.
func Hash(ctx context.Context, path string) (Header, error) {
	h := Header{Name: filepath.Base(path)}
	if err := CheckName(h.Name); err != nil {
		return h, err
	}
	f, err := os.Open(path)
	if err != nil {
		return h, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return h, err
	}
	if !fi.Mode().IsRegular() {
		return h, fmt.Errorf("%s: not a regular file", path)
	}
	d := sha256.New()
	n, err := io.Copy(d, ctxReader{ctx, f})
	if err != nil {
		return h, err
	}
	h.Size = uint64(n)
	d.Sum(h.SHA256[:0])
	return h, nil
}

// SendFile sends the file at path with send: a header (after reading the
// file once for its hash), then the content in data messages of at most
// chunk bytes of content each (chunk+DataOverhead bytes in all). It adds
// the content bytes to sent as they are handed to send, for a progress
// display. send must not keep the message after it returns (mcast's
// Sender.Send copies it).
//
// If the file changes between the two reads, SendFile stops at the size
// it announced, or sends less, and returns an error: receivers then fail
// the file on its hash or its end.
func SendFile(ctx context.Context, path string, chunk int, send func(context.Context, []byte) error, sent *atomic.Uint64) (Header, error) {
	if chunk < 1 {
		return Header{}, fmt.Errorf("xfer: chunk %d: want at least 1 byte", chunk)
	}
	h, err := Hash(ctx, path)
	if err != nil {
		return h, err
	}
	hdr, err := AppendHeader(nil, &h)
	if err != nil {
		return h, err
	}
	f, err := os.Open(path)
	if err != nil {
		return h, err
	}
	defer f.Close()
	if err := send(ctx, hdr); err != nil {
		return h, err
	}
	buf := make([]byte, DataOverhead+chunk)
	buf[0] = KindData
	d := sha256.New()
	left := h.Size
	for left > 0 {
		want := min(uint64(chunk), left)
		n, err := io.ReadFull(f, buf[DataOverhead:DataOverhead+want])
		if n > 0 {
			d.Write(buf[DataOverhead : DataOverhead+n])
			if err := send(ctx, buf[:DataOverhead+n]); err != nil {
				return h, err
			}
			left -= uint64(n)
			if sent != nil {
				sent.Add(uint64(n))
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return h, fmt.Errorf("%s: shrank while it was sent: %d of %d bytes", path, h.Size-left, h.Size)
		}
		if err != nil {
			return h, err
		}
	}
	var sum [32]byte
	if d.Sum(sum[:0]); sum != h.SHA256 {
		return h, fmt.Errorf("%s: changed while it was sent (SHA-256 differs)", path)
	}
	return h, nil
}

// ctxReader is a reader that fails once its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
