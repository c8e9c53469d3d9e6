package shaders

import (
	"strings"
	"testing"
)

func TestEmbedded(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("no shaders embedded")
	}
	for _, n := range names {
		src, err := Source(n)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(src, "@compute") {
			t.Errorf("%s has no @compute entry point", n)
		}
		if !strings.Contains(src, "CPU twin:") {
			t.Errorf("%s does not name its CPU twin (a comment \"CPU twin: model.X\")", n)
		}
	}
	if _, err := Source("missing.wgsl"); err == nil || !strings.Contains(err.Error(), "missing.wgsl") {
		t.Errorf("Source(missing.wgsl) error = %v, want one naming the file", err)
	}
}
