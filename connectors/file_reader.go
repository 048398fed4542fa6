package connectors

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
	"unicode/utf8"
)

// Formats of the file source.
const (
	formatLines = "lines"
	formatJSONL = "jsonl"
	formatCSV   = "csv"
)

// readChunk is how much a fileReader reads at a time; a longer record
// grows its buffer.
const readChunk = 1 << 20

// fileReader reads the records of one file from a byte offset. A record is
// a line; in CSV, a line break inside a quoted field continues the record.
// Only complete records are returned, unless the file is final: then its
// unterminated last line is a record too.
type fileReader struct {
	f        *os.File
	ordinal  uint64
	path     string
	pathMeta any // path, boxed once for every message's metadata
	csv      bool

	data   []byte
	r, w   int   // data[r:w] is read and not consumed
	off    int64 // the file offset of data[r]
	eof    bool  // the last fill read nothing
	final  bool
	idleAt time.Time // when the reader last found nothing new; zero while reading

	header   [][]byte // CSV: each column's JSON key, quoted, with its colon
	fields   []csvField
	skipping bool // CSV: the next record is the header
}

// openFileReader opens id's file at offset. A CSV file's header is read
// first when the offset is past it.
func openFileReader(id fileID, offset int64, format string) (*fileReader, error) {
	f, err := os.Open(id.Path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if dev, ino := devInode(id.Path, fi); dev != id.Dev || ino != id.Inode {
		f.Close()
		return nil, fmt.Errorf("%w: %s is another file now", errFileGone, id.Path)
	}
	r := &fileReader{f: f, ordinal: id.Ordinal, path: id.Path, pathMeta: id.Path, csv: format == formatCSV, off: offset}
	if r.csv {
		r.skipping = true
		if offset > 0 {
			if err := r.readHeader(); err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	return r, nil
}

var errFileGone = errors.New("connectors: file gone")

func (r *fileReader) close() {
	if r != nil && r.f != nil {
		r.f.Close()
	}
}

// fill reads more of the file and returns how many bytes it read.
func (r *fileReader) fill() (int, error) {
	if r.data == nil {
		r.data = make([]byte, readChunk)
	}
	if r.r > 0 && (r.w == len(r.data) || r.r >= len(r.data)/2) {
		r.w = copy(r.data, r.data[r.r:r.w])
		r.r = 0
	}
	if r.w == len(r.data) {
		grown := make([]byte, 2*len(r.data))
		r.w = copy(grown, r.data[r.r:r.w])
		r.r, r.data = 0, grown
	}
	n, err := r.f.ReadAt(r.data[r.w:], r.off+int64(r.w-r.r))
	r.w += n
	r.eof = n == 0
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("connectors: reading %s: %w", r.path, err)
	}
	return n, nil
}

// next returns the next record, without its line ending, and consumes it.
// The slice is valid until the next fill.
func (r *fileReader) next() ([]byte, bool) {
	b := r.data[r.r:r.w]
	end := -1
	if r.csv {
		end = csvRecordEnd(b)
	} else {
		end = bytes.IndexByte(b, '\n')
	}
	var rec []byte
	switch {
	case end >= 0:
		rec = b[:end]
		r.consume(end + 1)
	case r.final && r.eof && len(b) > 0:
		rec = b
		r.consume(len(b))
	default:
		return nil, false
	}
	if n := len(rec); n > 0 && rec[n-1] == '\r' {
		rec = rec[:n-1]
	}
	return rec, true
}

func (r *fileReader) consume(n int) {
	r.r += n
	r.off += int64(n)
}

// csvRecordEnd returns the index of the line break that ends the first CSV
// record of b, or -1: a line break ends a record where the record so far
// holds an even number of quotes, since a quoted field's quotes, escaped
// ones included, come in pairs.
func csvRecordEnd(b []byte) int {
	quotes := 0
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1
		}
		quotes += bytes.Count(b[i:i+j], []byte{'"'})
		if quotes%2 == 0 {
			return i + j
		}
		i += j + 1
	}
}

// readHeader reads a CSV file's header record from the start of the file,
// for a reader opened past it.
func (r *fileReader) readHeader() error {
	h := &fileReader{f: r.f, path: r.path, csv: true}
	for {
		if rec, ok := h.next(); ok {
			if len(bytes.TrimSpace(rec)) == 0 {
				continue
			}
			r.setHeader(rec)
			r.skipping = false
			return nil
		}
		if h.eof {
			return fmt.Errorf("connectors: %s has no CSV header", r.path)
		}
		if _, err := h.fill(); err != nil {
			return err
		}
	}
}

// setHeader takes a CSV header record.
func (r *fileReader) setHeader(rec []byte) {
	rec = bytes.TrimPrefix(rec, []byte("\xef\xbb\xbf")) // a byte order mark
	r.fields, _ = splitCSV(rec, r.fields[:0])
	r.header = r.header[:0]
	for _, f := range r.fields {
		k := appendJSONString(nil, f.raw, f.quoted)
		r.header = append(r.header, append(k, ':'))
	}
}

// appendRecord converts a record to a message's content, appended to dst.
// It reports false for a record that makes no message: a blank line, or a
// CSV file's header. A CSV row whose fields do not match the header passes
// as its raw bytes, for validation downstream to reject.
func (r *fileReader) appendRecord(dst, rec []byte) ([]byte, bool) {
	if len(bytes.TrimSpace(rec)) == 0 {
		return dst, false
	}
	if !r.csv {
		return append(dst, rec...), true
	}
	if r.skipping {
		r.setHeader(rec)
		r.skipping = false
		return dst, false
	}
	var ok bool
	r.fields, ok = splitCSV(rec, r.fields[:0])
	if !ok || len(r.fields) != len(r.header) {
		return append(dst, rec...), true
	}
	dst = append(dst, '{')
	for i, f := range r.fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, r.header[i]...)
		dst = appendJSONString(dst, f.raw, f.quoted)
	}
	return append(dst, '}'), true
}

// csvField is one field of a CSV record: its bytes between the quotes, if
// quoted, with doubled quotes still doubled.
type csvField struct {
	raw    []byte
	quoted bool
}

// splitCSV splits a record into fields (RFC 4180: comma-separated, a
// quoted field may hold commas, line breaks and doubled quotes). A quote
// inside an unquoted field is taken literally. It reports false for a
// quoted field that is not closed or is followed by anything but a comma.
func splitCSV(rec []byte, dst []csvField) ([]csvField, bool) {
	for i := 0; ; {
		if i < len(rec) && rec[i] == '"' {
			j := i + 1
			for {
				k := bytes.IndexByte(rec[j:], '"')
				if k < 0 {
					return dst, false
				}
				j += k
				if j+1 < len(rec) && rec[j+1] == '"' {
					j += 2
					continue
				}
				break
			}
			dst = append(dst, csvField{raw: rec[i+1 : j], quoted: true})
			i = j + 1
			if i == len(rec) {
				return dst, true
			}
			if rec[i] != ',' {
				return dst, false
			}
			i++
			continue
		}
		k := bytes.IndexByte(rec[i:], ',')
		if k < 0 {
			return append(dst, csvField{raw: rec[i:]}), true
		}
		dst = append(dst, csvField{raw: rec[i : i+k]})
		i += k + 1
	}
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string; with quoted, a doubled
// quote (a CSV escape) becomes one. Invalid UTF-8 becomes U+FFFD, as
// encoding/json does.
func appendJSONString(dst, s []byte, quoted bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			rn, size := utf8.DecodeRune(s[i:])
			if rn == utf8.RuneError && size == 1 {
				dst = append(dst, s[start:i]...)
				dst = append(dst, `\ufffd`...)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		if c >= 0x20 && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch {
		case c == '"':
			dst = append(dst, '\\', '"')
			if quoted && i+1 < len(s) && s[i+1] == '"' {
				i++
			}
		case c == '\\':
			dst = append(dst, '\\', '\\')
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
