//go:build unix

package main

import (
	"net/http"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO in the root must be refused, not opened: opening one blocks until a writer comes.
func TestFIFOIsNotServed(t *testing.T) {
	f := newFixture(t)
	if err := syscall.Mkfifo(filepath.Join(f.web, "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	done := make(chan int, 1)
	go func() { done <- do(f.h, "GET", "/pipe").Code }()
	select {
	case code := <-done:
		if code != http.StatusNotFound {
			t.Errorf("GET /pipe: status %d, want 404", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("GET /pipe: still blocked after 5s")
	}
}
