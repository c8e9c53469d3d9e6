package main

import (
	"fmt"
	"strconv"
	"strings"
)

// maxRanges caps the ranges one request may ask for. The app asks for one at a time; a
// few more serve resuming clients. Hundreds of small ranges would turn one request into
// hundreds of multipart parts, each with its own headers and seek.
const maxRanges = 16

// checkRange tightens two cases where http.ServeContent is more lenient than RFC 9110
// allows: a suffix range of length zero ("bytes=-0") is unsatisfiable (§14.1.1), and
// ServeContent would answer it with an empty 206; and a request for more than maxRanges
// ranges is refused. It returns the Range header to serve instead and true, or false to
// serve the header as it is. The replacement is a range that starts at size, which
// ServeContent answers with 416 and "Content-Range: bytes */size" after it has evaluated
// the preconditions (If-Range, If-None-Match), exactly as for any other unsatisfiable range;
// a header whose zero-length suffix ranges sit beside satisfiable ones loses just those.
// A header that is not a byte range at all is left to ServeContent (which answers 416).
func checkRange(header string, size int64) (string, bool) {
	spec, ok := strings.CutPrefix(header, "bytes=")
	if !ok {
		return "", false
	}
	var kept []string
	n, dropped := 0, false
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue // ServeContent skips empty elements too
		}
		n++
		if zeroSuffix(part) {
			dropped = true
			continue
		}
		kept = append(kept, part)
	}
	switch {
	case n > maxRanges || (dropped && len(kept) == 0):
		return fmt.Sprintf("bytes=%d-", size), true
	case dropped:
		return "bytes=" + strings.Join(kept, ","), true
	}
	return "", false
}

// zeroSuffix reports whether one range-spec is a suffix range of length zero ("-0",
// "-000"), parsed as ServeContent parses it.
func zeroSuffix(part string) bool {
	start, end, ok := strings.Cut(part, "-")
	if !ok || strings.TrimSpace(start) != "" {
		return false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(end), 10, 64)
	return err == nil && n == 0
}
