package vulndb

import (
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
		enc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
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

func decode(body []byte, v any) error {
	codecs()
	data, err := dec.DecodeAll(body, nil)
	if err != nil {
		return fmt.Errorf("vulndb: corrupt body: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("vulndb: corrupt body: %w", err)
	}
	return nil
}
