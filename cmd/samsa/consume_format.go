package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordFormat is a parsed --format: literal text and kcat-style verbs,
// written once per record.
type recordFormat []formatPart

// formatPart is literal text, or a verb when verb is not zero.
type formatPart struct {
	lit  string
	verb byte
}

const formatVerbs = "%k key, %v (or %s) value, %t topic, %p partition, %o offset, %T timestamp in ms, %h headers as k=v,..., %K key length, %S value length, %% a percent sign"

// parseFormat reads a kcat-style format: the verbs of formatVerbs and the
// escapes \n, \t, \r and \\. A format that does not end in a newline gets
// one, so that each record is on its own line unless asked otherwise.
func parseFormat(s string) (recordFormat, error) {
	var out recordFormat
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, formatPart{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '\\':
			if i+1 == len(s) {
				return nil, errors.New(`--format: a lone \ at the end; write \\ for a backslash`)
			}
			i++
			switch s[i] {
			case 'n':
				lit.WriteByte('\n')
			case 't':
				lit.WriteByte('\t')
			case 'r':
				lit.WriteByte('\r')
			case '\\':
				lit.WriteByte('\\')
			default:
				return nil, fmt.Errorf(`--format: unknown escape \%c; use \n, \t, \r or \\`, s[i])
			}
		case '%':
			if i+1 == len(s) {
				return nil, fmt.Errorf("--format: a lone %% at the end; use %s", formatVerbs)
			}
			i++
			switch v := s[i]; v {
			case '%':
				lit.WriteByte('%')
			case 'k', 'v', 's', 't', 'p', 'o', 'T', 'h', 'K', 'S':
				flush()
				if v == 's' {
					v = 'v'
				}
				out = append(out, formatPart{verb: v})
			default:
				return nil, fmt.Errorf("--format: unknown verb %%%c; use %s", v, formatVerbs)
			}
		default:
			lit.WriteByte(c)
		}
	}
	if !strings.HasSuffix(lit.String(), "\n") {
		lit.WriteByte('\n')
	}
	flush()
	return out, nil
}

// write prints r; w is buffered by the caller, so errors surface at flush.
func (f recordFormat) write(w io.Writer, r *kgo.Record) {
	var num [20]byte
	for _, p := range f {
		switch p.verb {
		case 0:
			io.WriteString(w, p.lit)
		case 'k':
			w.Write(r.Key)
		case 'v':
			w.Write(r.Value)
		case 't':
			io.WriteString(w, r.Topic)
		case 'p':
			w.Write(strconv.AppendInt(num[:0], int64(r.Partition), 10))
		case 'o':
			w.Write(strconv.AppendInt(num[:0], r.Offset, 10))
		case 'T':
			w.Write(strconv.AppendInt(num[:0], r.Timestamp.UnixMilli(), 10))
		case 'K':
			w.Write(strconv.AppendInt(num[:0], int64(len(r.Key)), 10))
		case 'S':
			w.Write(strconv.AppendInt(num[:0], int64(len(r.Value)), 10))
		case 'h':
			for i, h := range r.Headers {
				if i > 0 {
					io.WriteString(w, ",")
				}
				io.WriteString(w, h.Key)
				io.WriteString(w, "=")
				w.Write(h.Value)
			}
		}
	}
}

// startOffset is a parsed --offset: N from the start of the log, or N
// before its end when fromEnd.
type startOffset struct {
	n       int64
	fromEnd bool
}

func parseOffset(s string) (startOffset, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return startOffset{}, fmt.Errorf("--offset: %q is not an offset; give N (an offset) or -N (N records before the end)", s)
	}
	if n < 0 || strings.HasPrefix(strings.TrimSpace(s), "-") {
		return startOffset{n: -n, fromEnd: true}, nil
	}
	return startOffset{n: n}, nil
}

// within places o in a partition holding offsets [start, end).
func (o startOffset) within(start, end int64) int64 {
	at := o.n
	if o.fromEnd {
		at = end - o.n
	}
	return max(start, min(at, end))
}

// parseSince reads --since: an RFC 3339 time, or a duration meaning that
// long before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since: %q is neither an RFC 3339 time (like 2024-05-01T12:00:00Z) nor a duration ago (like 15m or 2h30m)", s)
}
