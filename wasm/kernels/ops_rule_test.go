//go:build !js

package kernels

import (
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// shaderOps maps every kernel of shaders/ to its op: the name of its Kernels method, of
// its CPU twin in package model and of its test here. Variants of one op (matvec and
// tiled, f16, subgroups, the split attention's passes) map to the same op.
var shaderOps = map[string]string{
	"add.wgsl":                     "Add",
	"argmax.wgsl":                  "Argmax",
	"attention.wgsl":               "Attention",
	"attention_tiled.wgsl":         "Attention",
	"attention_combine.wgsl":       "Attention", // AttentionSplit's second pass
	"copy.wgsl":                    "Copy",
	"copy_f32.wgsl":                "Copy",
	"embedding.wgsl":               "Embedding",
	"embedding_q4.wgsl":            "EmbeddingQ4",
	"embedding_q8.wgsl":            "EmbeddingQ8",
	"f16_to_f32.wgsl":              "F16ToF32",
	"gelu.wgsl":                    "GELU",
	"layernorm.wgsl":               "LayerNorm",
	"matmul.wgsl":                  "MatMul",
	"matvec.wgsl":                  "MatMul",
	"matmul_q4.wgsl":               "MatMulQ4",
	"matmul_q4_f16.wgsl":           "MatMulQ4",
	"matmul_q4_rows.wgsl":          "MatMulQ4",
	"matmul_q4_rows_f16.wgsl":      "MatMulQ4",
	"matvec_q4.wgsl":               "MatMulQ4",
	"matvec_q4_subgroups.wgsl":     "MatMulQ4",
	"matvec_q4_subgroups_f16.wgsl": "MatMulQ4",
	"matmul_q8_rows.wgsl":          "MatMulQ8",
	"matvec_q8.wgsl":               "MatMulQ8",
	"matvec_q8_subgroups.wgsl":     "MatMulQ8",
	"qkv_rope.wgsl":                "QKVRoPE",
	"rmsnorm.wgsl":                 "RMSNorm",
	"sample.wgsl":                  "Sample",
	"silu_mul.wgsl":                "SiLUMul",
	"split_qkv.wgsl":               "SplitQKV",
	"vision_embed.wgsl":            "VisionEmbed",
}

// goFunc is a function or method declaration found in a package's sources.
type goFunc struct {
	params []string // parameter names in order
	body   string   // source text
	file   string
}

// parseFuncs reads the top-level functions of the Go files in dir (tests only when
// tests is set): methods on *Kernels under "Kernels.Name", the rest under "Name".
func parseFuncs(t *testing.T, dir string, tests bool) map[string]goFunc {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no Go files in %s (%v)", dir, err)
	}
	funcs := map[string]goFunc{}
	fset := token.NewFileSet()
	for _, path := range paths {
		if strings.HasSuffix(path, "_test.go") != tests {
			continue
		}
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, path, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			name := fd.Name.Name
			if fd.Recv != nil {
				star, ok := fd.Recv.List[0].Type.(*ast.StarExpr)
				if !ok {
					continue
				}
				if id, ok := star.X.(*ast.Ident); !ok || id.Name != "Kernels" {
					continue
				}
				name = "Kernels." + name
			}
			var params []string
			for _, field := range fd.Type.Params.List {
				for _, n := range field.Names {
					params = append(params, n.Name)
				}
			}
			body := string(src[fset.Position(fd.Pos()).Offset:fset.Position(fd.End()).Offset])
			funcs[name] = goFunc{params: params, body: body, file: filepath.Base(path)}
		}
	}
	return funcs
}

// commonOrder reports whether the parameter names a and b share appear in the same order.
func commonOrder(a, b []string) (shared []string, ok bool) {
	var inB []string
	for _, n := range a {
		if slices.Contains(b, n) {
			shared = append(shared, n)
		}
	}
	for _, n := range b {
		if slices.Contains(a, n) {
			inB = append(inB, n)
		}
	}
	return shared, slices.Equal(shared, inB)
}

// TestEveryOpInFourPlaces holds the op layer to its rule: every kernel in shaders/ (a
// .wgsl file with an @compute entry point) belongs to an op X in shaderOps, and X exists
// four times under that name: shaders/*.wgsl, func (k *Kernels) X in wasm/kernels, its
// CPU twin func X in package model, and func TestX here. The shader's file name appears
// in Kernels.X (or a variant of it, Kernels.X…, as AttentionSplit), and the parameters
// Kernels.X and model.X share come in the same order.
func TestEveryOpInFourPlaces(t *testing.T) {
	kernels := parseFuncs(t, ".", false)
	tests := parseFuncs(t, ".", true)
	cpu := parseFuncs(t, filepath.Join("..", "..", "model"), false)

	wgsl, err := filepath.Glob(filepath.Join("..", "..", "shaders", "*.wgsl"))
	if err != nil || len(wgsl) == 0 {
		t.Fatalf("no shaders/*.wgsl (%v)", err)
	}
	compute := regexp.MustCompile(`@compute`)
	seen := map[string]bool{}
	for _, path := range wgsl {
		file := filepath.Base(path)
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !compute.Match(src) {
			continue // WGSL joined onto the kernels, not a kernel of its own
		}
		seen[file] = true
		op, ok := shaderOps[file]
		if !ok {
			t.Errorf("shaders/%s: a kernel of no op: add it to shaderOps", file)
			continue
		}
		named := false
		for name, f := range kernels {
			if strings.HasPrefix(name, "Kernels."+op) && strings.Contains(f.body, strconv.Quote(file)) {
				named = true
			}
		}
		if !named {
			t.Errorf("shaders/%s: no Kernels.%s (or Kernels.%s…) dispatches it", file, op, op)
		}
	}
	for file := range shaderOps {
		if !seen[file] {
			t.Errorf("shaderOps names shaders/%s, which is not a kernel in shaders/", file)
		}
	}

	ops := map[string]bool{}
	for _, op := range shaderOps {
		ops[op] = true
	}
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		k, hasK := kernels["Kernels."+op]
		m, hasM := cpu[op]
		if !hasK {
			t.Errorf("op %s: no func (k *Kernels) %s in wasm/kernels", op, op)
		}
		if !hasM {
			t.Errorf("op %s: no CPU twin func %s in package model", op, op)
		}
		if _, ok := tests["Test"+op]; !ok {
			t.Errorf("op %s: no func Test%s in wasm/kernels", op, op)
		}
		if hasK && hasM {
			if shared, ok := commonOrder(k.params, m.params); !ok {
				t.Errorf("op %s: Kernels.%s%v and model.%s%v take their shared arguments %v in different orders",
					op, op, k.params, op, m.params, shared)
			}
		}
	}
}
