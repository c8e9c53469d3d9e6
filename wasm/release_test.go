//go:build !(js && wasm)

package main

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReleaseBuildHasNoTwins builds cogvlm.wasm as build.sh does (-tags cogvlm_release,
// here without -s so that the function names stay) and fails if any function of the
// debug mode's CPU twins is linked: only tests run the debug mode, and the page should not
// download it (bench/README.md, "Size of web/cogvlm.wasm").
func TestReleaseBuildHasNoTwins(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to build the js/wasm binary")
	}
	if testing.Short() {
		t.Skip("builds cogvlm.wasm")
	}
	out := filepath.Join(t.TempDir(), "cogvlm.wasm")
	cmd := exec.Command(goTool, "build", "-trimpath", "-tags", "cogvlm_release", "-o", out, ".")
	cmd.Env = append(cmd.Environ(), "GOOS=js", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go build -tags cogvlm_release: %v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	names, err := wasmFunctionNames(b)
	if err != nil {
		t.Fatal(err)
	}
	var kernels int
	for _, n := range names {
		if !strings.Contains(n, "wasm_kernels.") && !strings.Contains(n, "wasm/kernels.") {
			continue
		}
		kernels++
		if strings.Contains(n, "twin") {
			t.Errorf("the release build links %s", n)
		}
	}
	if kernels == 0 { // a name section this test cannot read must not pass
		t.Fatalf("no function of wasm/kernels among the %d names of %s", len(names), out)
	}
}

// wasmFunctionNames reads the function names of a WebAssembly binary's "name" custom
// section (subsection 1).
func wasmFunctionNames(b []byte) ([]string, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return nil, errors.New("not a WebAssembly binary")
	}
	r := wasmReader{b: b, i: 8}
	for r.i < len(b) {
		id := r.byte()
		size := r.uleb()
		end := r.i + int(size)
		if r.err != nil || end > len(b) {
			return nil, errors.New("truncated section")
		}
		if id == 0 && r.name() == "name" {
			for r.i < end && r.err == nil {
				sub, subSize := r.byte(), r.uleb()
				subEnd := r.i + int(subSize)
				if sub == 1 {
					var names []string
					for n := r.uleb(); n > 0 && r.err == nil; n-- {
						r.uleb() // function index
						names = append(names, r.name())
					}
					return names, r.err
				}
				r.i = subEnd
			}
		}
		r.i = end
	}
	return nil, errors.New("no function names (built with -ldflags=-s?)")
}

type wasmReader struct {
	b   []byte
	i   int
	err error
}

func (r *wasmReader) byte() byte {
	if r.i >= len(r.b) {
		r.err = errors.New("truncated")
		return 0
	}
	r.i++
	return r.b[r.i-1]
}

func (r *wasmReader) uleb() uint64 {
	if r.i > len(r.b) {
		r.err = errors.New("truncated")
		return 0
	}
	v, n := binary.Uvarint(r.b[r.i:])
	if n <= 0 {
		r.err = errors.New("bad LEB128")
		return 0
	}
	r.i += n
	return v
}

func (r *wasmReader) name() string {
	n := int(r.uleb())
	if r.err != nil || r.i+n > len(r.b) {
		r.err = errors.New("truncated name")
		return ""
	}
	r.i += n
	return string(r.b[r.i-n : r.i])
}
