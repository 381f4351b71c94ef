package vulndb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Bodies are JSON compressed with zstd: the records are text-heavy and
// compress about fivefold, which keeps the file small enough to carry to an
// air-gapped site, while one body still decodes in microseconds.
var (
	encOnce sync.Once
	enc     *zstd.Encoder
	dec     *zstd.Decoder
)

func codecs() {
	encOnce.Do(func() {
		var err error
		enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err)
		}
		dec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(256<<20))
		if err != nil {
			panic(err)
		}
	})
}

func encode(v any) ([]byte, error) {
	codecs()
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return enc.EncodeAll(data, make([]byte, 0, len(data)/3)), nil
}

// encodeSmall stores small bodies as plain JSON, since compressing them
// costs more than it saves, and compresses the rest.
func encodeSmall(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil || len(data) < 512 {
		return data, err
	}
	codecs()
	return enc.EncodeAll(data, make([]byte, 0, len(data)/3)), nil
}

var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

func decode(body []byte, v any) error {
	data := body
	if bytes.HasPrefix(body, zstdMagic) {
		codecs()
		var err error
		if data, err = dec.DecodeAll(body, nil); err != nil {
			return fmt.Errorf("vulndb: corrupt body: %w", err)
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("vulndb: corrupt body: %w", err)
	}
	return nil
}
