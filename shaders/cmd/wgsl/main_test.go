package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/shaders"
)

func TestRunWritesJoinedModules(t *testing.T) {
	dir := t.TempDir()
	names := []string{"matvec_q4.wgsl", "matmul_q4_rows.wgsl"}
	if err := run(dir, names); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		got, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := shaders.Source(n)
		if string(got) != want {
			t.Errorf("%s: wrote %d bytes, not shaders.Source's %d", n, len(got), len(want))
		}
	}
}

func TestRunErrors(t *testing.T) {
	for _, tc := range []struct {
		dir   string
		names []string
		want  string
	}{
		{"", nil, "want one op file name"},
		{"", []string{"add.wgsl", "gelu.wgsl"}, "want one op file name"},
		{t.TempDir(), []string{"common.wgsl"}, "common.wgsl: a shared file"},
		{t.TempDir(), []string{"nope.wgsl"}, "nope.wgsl"},
	} {
		if err := run(tc.dir, tc.names); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("run(%q, %v) = %v, want an error with %q", tc.dir, tc.names, err, tc.want)
		}
	}
}
