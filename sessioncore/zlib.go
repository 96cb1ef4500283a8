package sessioncore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/adler32"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zlib"
)

// The zlib form of the codecs whose frameworks compress their cookies
// (Flask, Django): one home for both.

// MaxInflatedPayload bounds what a compressed cookie may inflate to.
const MaxInflatedPayload = 256 << 10

// zlibHeader starts every zlib stream a codec writes: deflate with a 32
// KiB window, "fastest" level (RFC 1950). Python's zlib reads any level.
var zlibHeader = []byte{0x78, 0x01}

// Deflate compresses b into a zlib stream, for the codecs whose frameworks
// compress their cookies (Flask, Django). A stateless deflater keeps no
// window or hash tables between calls, which a session of a few hundred
// bytes does not need, and picks the block type whose output is smallest:
// for a small session that is usually a fixed-Huffman block, which also
// inflates without building any tables.
func Deflate(b []byte) []byte {
	buf := bytes.NewBuffer(make([]byte, 0, len(b)+16))
	buf.Write(zlibHeader)
	_ = flate.StatelessDeflate(buf, b, true, nil) // a bytes.Buffer does not fail
	return binary.BigEndian.AppendUint32(buf.Bytes(), adler32.Checksum(b))
}

// zlibReaders are reused: a new one allocates its window and tables.
var zlibReaders sync.Pool

// Inflate decompresses a zlib stream of at most MaxInflatedPayload bytes:
// a forged cookie cannot make the gateway inflate a bomb.
func Inflate(compressed []byte) ([]byte, error) {
	src := bytes.NewReader(compressed)
	var r io.ReadCloser
	if pooled, ok := zlibReaders.Get().(io.ReadCloser); ok {
		if err := pooled.(zlib.Resetter).Reset(src, nil); err != nil {
			return nil, errors.New("payload is not zlib")
		}
		r = pooled
	} else {
		var err error
		if r, err = zlib.NewReader(src); err != nil {
			return nil, errors.New("payload is not zlib")
		}
	}
	defer zlibReaders.Put(r)
	inflated, err := io.ReadAll(io.LimitReader(r, MaxInflatedPayload+1))
	if err != nil {
		return nil, errors.New("payload is not valid zlib")
	}
	if len(inflated) > MaxInflatedPayload {
		return nil, fmt.Errorf("payload inflates beyond %d bytes", MaxInflatedPayload)
	}
	return inflated, nil
}
