// Package shaders holds the engine's WGSL compute shaders, one file per op family, embedded
// into the binary. Shaders are standard WGSL: no preprocessor; they are tuned with
// `override` constants at pipeline creation, and each has one `Params` struct that the Go
// side writes field by field in the same order.
package shaders

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.wgsl
var files embed.FS

// Source returns the WGSL source of name (e.g. "add.wgsl").
func Source(name string) (string, error) {
	b, err := files.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("shader %s: %w", name, err)
	}
	return string(b), nil
}

// Names lists the embedded shader files, sorted.
func Names() []string {
	entries, _ := fs.Glob(files, "*.wgsl")
	sort.Strings(entries)
	return entries
}

// Op returns the op name of a shader file ("add.wgsl" → "add").
func Op(name string) string { return strings.TrimSuffix(name, ".wgsl") }
