//go:build unix

package main

import (
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// --dump writes a new file or replaces a regular one, and refuses anything else before the
// model loads, leaving it as it was: a rename over a symlink, FIFO or device would replace
// the entry itself (as root, --dump /dev/null would break /dev/null).
func TestDumpRefusesNonRegularTargets(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.txt")
	if err := os.WriteFile(target, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	args, _ := goldenArgs(t, filepath.Join(golden, "tiny-text"))
	for _, tt := range []struct{ path, kind string }{
		{link, "symbolic link"}, {fifo, "named pipe"}, {sub, "directory"},
	} {
		before, _ := os.Lstat(tt.path)
		code, _, stderr := cli(t, "", append(args, "--json", "--dump", tt.path)...)
		want := "cogvlm generate: --dump " + tt.path + ": is a " + tt.kind + ", not a regular file; refusing to replace it\n"
		if code != exitError || stderr != want {
			t.Errorf("--dump %s: exit %d, stderr %q; want 1, %q", tt.kind, code, stderr, want)
		}
		if after, err := os.Lstat(tt.path); err != nil || after.Mode() != before.Mode() {
			t.Errorf("--dump %s: the entry changed from %v to %v (%v)", tt.kind, before.Mode(), after.Mode(), err)
		}
	}
	if data, _ := os.ReadFile(target); string(data) != "keep me" {
		t.Errorf("the symlink's target now holds %q", data)
	}
	// A regular file is replaced, a new name created.
	for _, p := range []string{target, filepath.Join(dir, "new.safetensors")} {
		if code, _, stderr := cli(t, "", append(args, "--json", "--dump", p)...); code != exitOK {
			t.Errorf("--dump %s: exit %d: %s", p, code, stderr)
		}
		if info, err := os.Lstat(p); err != nil || !info.Mode().IsRegular() || info.Size() < 100 {
			t.Errorf("--dump %s: %v, %v; want the dump", p, info, err)
		}
	}
}

// SIGTERM stops a conversion as Ctrl-C does: the partial folder is removed, the output is
// not created, and the message names the signal. The test sends SIGTERM to its own
// process until the command returns; its own signal.Notify keeps the test binary alive
// whether or not the command handles the signal (before the fix it did not, and the
// conversion ran to the end).
func TestConvertStopsOnSIGTERM(t *testing.T) {
	caught := make(chan os.Signal, 1)
	signal.Notify(caught, syscall.SIGTERM) // never stopped: a late SIGTERM must not kill the test binary
	go func() {
		for range caught {
		}
	}()
	root := t.TempDir()
	out := filepath.Join(root, "pkg")
	done := make(chan struct{})
	var code int
	var stderr string
	go func() {
		defer close(done)
		code, _, stderr = cli(t, "", "convert", "--in", filepath.Join(golden, "tiny-chat", "model"), "--out", out)
	}()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case <-tick.C:
			syscall.Kill(os.Getpid(), syscall.SIGTERM)
		}
	}
	want := "cogvlm convert: conversion stopped before it finished (terminated signal received); nothing was written to " + out + "\n"
	if code != exitError || stderr != want {
		t.Errorf("convert under SIGTERM: exit %d, stderr %q; want 1, %q", code, stderr, want)
	}
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		t.Errorf("left behind: %s", e.Name())
	}
	if strings.Contains(stderr, "context canceled") {
		t.Errorf("stderr %q says context canceled", stderr)
	}
}
