package kafka

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Errors that end a connection: the peer is not speaking the protocol.
var (
	errFrameTooLarge = errors.New("kafka: request larger than socket.request.max.bytes")
	errMalformed     = errors.New("kafka: malformed request")
	errUnknownAPI    = errors.New("kafka: unknown API key")
	errVersion       = errors.New("kafka: unsupported API version")
)

const (
	apiVersionsKey = 18
	minRequestSize = 2 + 2 + 4 + 2 // key, version, correlation id, client id length
)

// readFrame reads one size-prefixed request. The size is checked before
// anything is allocated.
func readFrame(r *bufio.Reader, max int32) ([]byte, error) {
	var size [4]byte
	if _, err := io.ReadFull(r, size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	switch {
	case n > max:
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errFrameTooLarge, n, max)
	case n < int32(minRequestSize):
		return nil, fmt.Errorf("%w: a frame of %d bytes", errMalformed, n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(r, frame); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%w: frame of %d bytes cut short", errMalformed, n)
		}
		return nil, err
	}
	return frame, nil
}

// header is a request header (v1, or v2 for flexible requests).
type header struct {
	key      int16
	version  int16
	corr     int32
	clientID string
}

// flexibleHeader reports whether the response header carries a tagged
// field byte: flexible responses do, except ApiVersions, which a client
// must parse before it knows what the broker supports.
func (h header) flexibleResponse(resp kmsg.Response) bool {
	return h.key != apiVersionsKey && resp.IsFlexible()
}

// parseHeader decodes a request's header and returns the body after it.
// For a known API at a supported version it also returns the request
// type, with its version set, ready for ReadFrom.
func parseHeader(frame []byte, apis map[int16]*api) (header, kmsg.Request, []byte, error) {
	r := kbin.Reader{Src: frame}
	h := header{key: r.Int16(), version: r.Int16(), corr: r.Int32()}
	if id := r.NullableString(); id != nil {
		h.clientID = *id
	}
	if !r.Ok() {
		return h, nil, nil, fmt.Errorf("%w: header cut short", errMalformed)
	}
	a := apis[h.key]
	if a == nil {
		return h, nil, nil, fmt.Errorf("%w: %d", errUnknownAPI, h.key)
	}
	if h.version < a.min || h.version > a.max {
		// ApiVersions answers an unknown version itself (with v0 and the
		// error); anything else is refused.
		if h.key == apiVersionsKey {
			return h, nil, nil, nil
		}
		return h, nil, nil, fmt.Errorf("%w: %s v%d (supported v%d-v%d)", errVersion, kmsg.NameForKey(h.key), h.version, a.min, a.max)
	}
	req := kmsg.RequestForKey(h.key)
	req.SetVersion(h.version)
	if req.IsFlexible() {
		skipTags(&r)
		if !r.Ok() {
			return h, nil, nil, fmt.Errorf("%w: header tagged fields", errMalformed)
		}
	}
	return h, req, r.Src, nil
}

// skipTags skips a tagged-field section: a count, then per field a tag,
// a size and that many bytes.
func skipTags(r *kbin.Reader) {
	for n := r.Uvarint(); n > 0 && r.Ok(); n-- {
		r.Uvarint()
		r.Span(int(r.Uvarint()))
	}
}

// appendResponse appends a whole response frame: size, correlation id,
// the tagged-field byte of flexible headers, and the body.
func appendResponse(dst []byte, h header, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = kbin.AppendInt32(dst, h.corr)
	if h.flexibleResponse(resp) {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}
