package source

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// walkBlob decompresses a layer blob by its magic (gzip, zstd or a plain
// tar), checks the uncompressed stream against the diff id as it goes, and
// walks the tar.
func walkBlob(ctx context.Context, blob io.Reader, diffID v1.Hash, limit int64, n *int64, lim Limits, warn func(string), fn WalkFunc) error {
	br := bufio.NewReaderSize(blob, 1<<20)
	head, _ := br.Peek(4)
	var r io.Reader = br
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	h := sha256.New()
	cr := &countingReader{r: io.TeeReader(r, h), n: n, limit: limit, what: "layer"}
	if err := walkTar(ctx, cr, lim, warn, fn); err != nil {
		return err
	}
	// The tar's end-of-archive marker may leave padding unread: hash it too.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return err
	}
	if diffID.Algorithm == "sha256" && diffID.Hex != "" {
		if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
			return fmt.Errorf("the layer's content (sha256:%s) fails its diff id", got[:12])
		}
	}
	return nil
}
