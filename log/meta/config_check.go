package meta

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/samsa-io/samsa/log/partition"
)

// The validators of the config table. Each returns "" for an acceptable
// value, else the reason it is refused; like Kafka, numbers and booleans
// may carry surrounding spaces.

func parseInt(v string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	return n, err == nil
}

func longAtLeast(min int64) func(string) string {
	return func(v string) string {
		n, ok := parseInt(v)
		switch {
		case !ok:
			return "not a whole number"
		case n < min:
			return fmt.Sprintf("must be at least %d", min)
		}
		return ""
	}
}

func intIn(min, max int64) func(string) string {
	return func(v string) string {
		n, ok := parseInt(v)
		switch {
		case !ok:
			return "not a whole number"
		case n < min || n > max:
			return fmt.Sprintf("must be between %d and %d", min, max)
		}
		return ""
	}
}

func checkMaxMessageBytes(v string) string {
	n, ok := parseInt(v)
	switch {
	case !ok:
		return "not a whole number"
	case n < 0 || n > partition.MaxBatchBytes:
		return fmt.Sprintf("must be between 0 and %d: 64 MiB is the largest batch Samsa's storage engine stores", partition.MaxBatchBytes)
	}
	return ""
}

func oneOf(values ...string) func(string) string {
	return func(v string) string {
		for _, ok := range values {
			if v == ok {
				return ""
			}
		}
		return "must be one of " + strings.Join(values, ", ")
	}
}

func parseBool(v string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func checkBool(v string) string {
	if _, ok := parseBool(v); !ok {
		return "must be true or false"
	}
	return ""
}

func onlyFalse(why string) func(string) string {
	return func(v string) string {
		b, ok := parseBool(v)
		switch {
		case !ok:
			return "must be true or false"
		case b:
			return "only false is supported: " + why
		}
		return ""
	}
}

func checkCleanupPolicy(v string) string {
	for p := range strings.SplitSeq(v, ",") {
		switch strings.TrimSpace(p) {
		case "delete":
		case "compact":
			return "log compaction is not supported yet; the only policy is delete"
		default:
			return "must be delete (compaction is not supported yet)"
		}
	}
	return ""
}

func checkCompression(v string) string {
	switch v {
	case "producer":
		return ""
	case "uncompressed", "gzip", "snappy", "lz4", "zstd":
		return "only producer is supported: Samsa stores batches as produced and never recompresses"
	}
	return "unknown compression type; only producer is supported"
}

func checkRatio(v string) string {
	r, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || !(r >= 0 && r <= 1) {
		return "must be a number between 0 and 1"
	}
	return ""
}

// checkThrottled accepts Kafka's throttled-replicas list: empty, "*", or
// partition:broker pairs separated by commas.
func checkThrottled(v string) string {
	v = strings.TrimSpace(v)
	if v == "" || v == "*" {
		return ""
	}
	for pair := range strings.SplitSeq(v, ",") {
		p, b, found := strings.Cut(strings.TrimSpace(pair), ":")
		pn, ok1 := parseInt(p)
		bn, ok2 := parseInt(b)
		if !found || !ok1 || !ok2 || pn < 0 || bn < 0 {
			return "must be empty, * or partition:broker pairs separated by commas"
		}
	}
	return ""
}
