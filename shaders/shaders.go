// Package shaders holds the engine's WGSL compute shaders, one file per op, embedded into
// the binary. Shaders are standard WGSL: no preprocessor; they are tuned with `override`
// constants at pipeline creation, and each has one `Params` struct that the Go side writes
// field by field in the same order.
//
// What several ops declare alike is written once, in common.wgsl (every op) and the family
// files common_*.wgsl (the ops named in families). Source joins them after the op's own
// file into one module: WGSL's module-scope declarations may come in any order, so the op's
// `enable` directives stay first and its lines keep their numbers in compiler messages.
package shaders

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
)

//go:embed *.wgsl
var files embed.FS

// Common is joined after every op's file.
const Common = "common.wgsl"

// families lists the family files joined after an op's file (after Common), by op file.
// A family file names bindings or Params fields that only its ops have, so it cannot be in
// Common; each op's header says which families it takes (TestFamiliesNamed).
var families = map[string][]string{
	"attention.wgsl":               {"common_attention.wgsl"},
	"attention_tiled.wgsl":         {"common_attention.wgsl"},
	"embedding_q4.wgsl":            {"common_quant.wgsl"},
	"embedding_q8.wgsl":            {"common_quant.wgsl"},
	"matmul.wgsl":                  {"common_linear.wgsl"},
	"matmul_q4.wgsl":               {"common_linear.wgsl", "common_quant.wgsl"},
	"matmul_q4_f16.wgsl":           {"common_linear.wgsl", "common_quant.wgsl"},
	"matmul_q4_rows.wgsl":          {"common_linear.wgsl", "common_rows.wgsl", "common_quant.wgsl"},
	"matmul_q4_rows_f16.wgsl":      {"common_linear.wgsl", "common_rows.wgsl", "common_quant.wgsl"},
	"matmul_q8_rows.wgsl":          {"common_linear.wgsl", "common_rows.wgsl", "common_quant.wgsl"},
	"matvec.wgsl":                  {"common_linear.wgsl", "common_matvec.wgsl"},
	"matvec_q4.wgsl":               {"common_linear.wgsl", "common_matvec.wgsl", "common_quant.wgsl"},
	"matvec_q8.wgsl":               {"common_linear.wgsl", "common_matvec.wgsl", "common_quant.wgsl"},
	"matvec_q4_subgroups.wgsl":     {"common_linear.wgsl", "common_subgroups.wgsl", "common_quant.wgsl"},
	"matvec_q4_subgroups_f16.wgsl": {"common_linear.wgsl", "common_subgroups.wgsl", "common_quant.wgsl"},
	"matvec_q8_subgroups.wgsl":     {"common_linear.wgsl", "common_subgroups.wgsl", "common_quant.wgsl"},
}

// shared reports whether name is a shared file (Common or a family), not an op.
func shared(name string) bool { return strings.HasPrefix(name, "common") }

// Parts lists the files Source joins for the op file name, in order: the op's file, Common,
// then its families.
func Parts(name string) []string {
	return append([]string{name, Common}, families[name]...)
}

// Source returns the WGSL module of the op file name (e.g. "add.wgsl"): its file with
// Common and its family files joined after it, each after a comment line naming it.
func Source(name string) (string, error) {
	if shared(name) {
		return "", fmt.Errorf("shader %s: a shared file, not an op (Source joins it onto the ops)", name)
	}
	var b strings.Builder
	for i, part := range Parts(name) {
		src, err := files.ReadFile(part)
		if err != nil {
			return "", fmt.Errorf("shader %s: %w", name, err)
		}
		if i > 0 {
			fmt.Fprintf(&b, "\n// ---- %s (joined by shaders.Source) ----\n", part)
		}
		b.Write(src)
	}
	return b.String(), nil
}

// Names lists the embedded op files, sorted (not the shared ones): fs.Glob lists them in
// the sorted order of the embedded directory.
func Names() []string {
	entries, _ := fs.Glob(files, "*.wgsl")
	ops := entries[:0]
	for _, e := range entries {
		if !shared(e) {
			ops = append(ops, e)
		}
	}
	return ops
}

// Op returns the op name of a shader file ("add.wgsl" → "add").
func Op(name string) string { return strings.TrimSuffix(name, ".wgsl") }
