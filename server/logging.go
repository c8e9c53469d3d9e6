package main

import (
	"log"
	"net/http"
	"time"
)

// logged wraps h to log one line per request: method, path, status, body bytes, duration.
// It is off by default (--log): wrapping the ResponseWriter hides its sendfile fast path.
func logged(h http.Handler, l *log.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(rw, r)
		if rw.status == 0 {
			rw.status = http.StatusOK // nothing written: net/http sends 200
		}
		l.Printf("%s %s %d %dB %v", r.Method, r.URL.RequestURI(), rw.status, rw.bytes, time.Since(start).Round(time.Microsecond))
	})
}

// statusWriter remembers the status and counts the body bytes written through it.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
