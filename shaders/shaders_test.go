package shaders

import (
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestEmbedded(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Fatal("no shaders embedded")
	}
	if !slices.IsSorted(names) {
		t.Errorf("Names() = %v, not sorted", names)
	}
	for _, n := range names {
		if shared(n) {
			t.Errorf("Names lists the shared file %s", n)
		}
		src, err := Source(n)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(src, "@compute") {
			t.Errorf("%s has no @compute entry point", n)
		}
		if !strings.Contains(file(t, n), "CPU twin:") {
			t.Errorf("%s does not name its CPU twin (a comment \"CPU twin: model.X\")", n)
		}
	}
	for _, bad := range []string{"missing.wgsl", Common, "common_quant.wgsl"} {
		if _, err := Source(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("Source(%s) error = %v, want one naming the file", bad, err)
		}
	}
}

// TestSourceJoins checks the joined module: the op's file first, unchanged (its `enable`
// directives first, its line numbers those of the file), then Common and its families.
func TestSourceJoins(t *testing.T) {
	for _, n := range Names() {
		src, err := Source(n)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(src, file(t, n)) {
			t.Errorf("%s: Source does not start with the op's file", n)
		}
		for _, part := range Parts(n)[1:] {
			if !strings.Contains(src, file(t, part)) {
				t.Errorf("%s: Source lacks %s", n, part)
			}
		}
	}
}

// TestFamilies checks the families table against the files: every shared file is joined
// onto some op, every op in the table exists, and each op's file names the families it
// takes, so that a reader of the op knows where its other declarations are.
func TestFamilies(t *testing.T) {
	used := map[string]bool{Common: true}
	for op, fams := range families {
		if !slices.Contains(Names(), op) {
			t.Errorf("families names %s, which is no op file", op)
		}
		for _, f := range fams {
			used[f] = true
			if !shared(f) {
				t.Errorf("%s: family %s is not named common*.wgsl", op, f)
			}
			if !strings.Contains(file(t, op), f) {
				t.Errorf("%s takes %s but does not say so", op, f)
			}
		}
	}
	all := allFiles(t)
	for _, f := range all {
		if shared(f) && !used[f] {
			t.Errorf("%s is joined onto no op", f)
		}
		if shared(f) && strings.Contains(stripComments(file(t, f)), "enable ") {
			t.Errorf("%s has an enable directive: directives must open a module, and a shared file is joined after the op's", f)
		}
	}
}

// TestDeclaredOnce fails on a function or struct name declared in two files (other than
// each op's own main and Params): what several ops share is declared in a shared file, and
// variants that differ are named apart (dot8, dot8_f16). Within each joined module, no
// module-scope name may be declared twice.
func TestDeclaredOnce(t *testing.T) {
	where := map[string]string{}
	for _, f := range allFiles(t) {
		for _, d := range declarations(file(t, f)) {
			if (d.kind != "fn" && d.kind != "struct") || d.name == "main" || d.name == "Params" {
				continue
			}
			if prev, ok := where[d.name]; ok && prev != f {
				t.Errorf("%s %s is declared in %s and %s: declare it once, in a shared file", d.kind, d.name, prev, f)
			}
			where[d.name] = f
		}
	}
	for _, n := range Names() {
		src, _ := Source(n)
		seen := map[string]bool{}
		for _, d := range declarations(src) {
			if seen[d.name] {
				t.Errorf("%s: %s declared twice in the joined module (%v)", n, d.name, Parts(n))
			}
			seen[d.name] = true
		}
		if !seen["main"] || !seen["Params"] {
			t.Errorf("%s: the joined module has no main or no Params", n)
		}
	}
}

// TestDeclarationsParser checks the scanner the tests above rely on.
func TestDeclarationsParser(t *testing.T) {
	src := `enable f16;
// fn commented() {}
struct Params { n: u32, }
override A: u32 = 1u; // a comment
const B = 2u;
@group(0) @binding(0) var<uniform> params: Params;
var<workgroup> w: array<f32, 4>;
/* fn block() {} */
fn f(x: u32) -> u32 {
    let inner = x;
    if (x > 0u) { return 1u; }
    return inner;
}
@compute @workgroup_size(1)
fn main() {}
`
	var got []string
	for _, d := range declarations(src) {
		got = append(got, d.kind+" "+d.name)
	}
	want := []string{"struct Params", "override A", "const B", "var params", "var w", "fn f", "fn main"}
	if !slices.Equal(got, want) {
		t.Errorf("declarations = %q, want %q", got, want)
	}
}

type decl struct{ kind, name string }

var (
	comments = regexp.MustCompile(`(?s)//[^\n]*|/\*.*?\*/`)
	declRe   = regexp.MustCompile(`^(?:@[a-z_]+(?:\([^)]*\))?\s*)*(fn|struct|override|const|var|alias)\b(?:<[^>]*>)?\s+([A-Za-z_][A-Za-z0-9_]*)`)
)

func stripComments(src string) string { return comments.ReplaceAllString(src, "") }

// declarations lists the module-scope declarations of WGSL source: the statements that
// begin at brace depth 0.
func declarations(src string) []decl {
	src = stripComments(src)
	var out []decl
	depth, stmt := 0, 0 // stmt: where the current top-level statement begins
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '{':
			if depth == 0 {
				if m := declRe.FindStringSubmatch(strings.TrimSpace(src[stmt:i])); m != nil {
					out = append(out, decl{m[1], m[2]})
				}
			}
			depth++
		case '}':
			depth--
			if depth == 0 {
				stmt = i + 1
			}
		case ';':
			if depth == 0 {
				if m := declRe.FindStringSubmatch(strings.TrimSpace(src[stmt:i])); m != nil {
					out = append(out, decl{m[1], m[2]})
				}
				stmt = i + 1
			}
		}
	}
	return out
}

func file(t *testing.T, name string) string {
	t.Helper()
	b, err := files.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// allFiles lists every embedded file, ops and shared ones.
func allFiles(t *testing.T) []string {
	t.Helper()
	names, err := fs.Glob(files, "*.wgsl")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded files (%v)", err)
	}
	return names
}
