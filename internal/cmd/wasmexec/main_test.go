package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/internal/browser"
)

// TestRun runs a small wasm program in Chromium and checks that its output and exit code
// come through unchanged.
func TestRun(t *testing.T) {
	if _, err := browser.Find(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	prog := filepath.Join(t.TempDir(), "prog.wasm")
	build := exec.Command("go", "build", "-o", prog, "./testdata/prog")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		arg      string
		code     int
		inStderr string
	}{
		{"0", 0, "err: line"},
		{"3", 3, "err: line"},
		{"panic", 2, "panic: boom"},
	} {
		var stdout, stderr bytes.Buffer
		code, err := run(prog, []string{tc.arg}, &stdout, &stderr)
		if err != nil {
			t.Fatalf("%s: %v", tc.arg, err)
		}
		if code != tc.code {
			t.Errorf("%s: exit code %d, want %d (stderr: %s)", tc.arg, code, tc.code, stderr.String())
		}
		if stdout.String() != "out: héllo 世界\n" {
			t.Errorf("%s: stdout %q", tc.arg, stdout.String())
		}
		if !strings.Contains(stderr.String(), tc.inStderr) {
			t.Errorf("%s: stderr %q lacks %q", tc.arg, stderr.String(), tc.inStderr)
		}
	}
	// A program that never exits is stopped at its -test.timeout plus a minute; check the
	// arithmetic rather than waiting a minute.
	if d := timeout([]string{"-test.timeout=2s"}); d.Seconds() != 62 {
		t.Errorf("timeout = %v, want 1m2s", d)
	}
}
