//go:build !(js && wasm)

package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// browserForbidden are the packages web/cogvlm.wasm must not link, as paths inside the
// module: the converter, calibration and the native package reader (model/pkg), the
// safetensors checkpoint reader, and GPTQ. The browser reads packages through model/format
// and decodes weights with model/quant.
var browserForbidden = []string{"model/pkg", "model/safetensors", "model/quant/gptq"}

// TestBrowserBuildLinksNoConverter lists the js/wasm dependencies of this command (the
// engine's build, as build.sh's build_wasm makes it) and fails on any package of
// browserForbidden, or below one, or any package or Go file of this module named for GPTQ
// or calibration, naming the chain of imports that brings it in. It runs natively: `go list` answers for js/wasm
// from any machine.
func TestBrowserBuildLinksNoConverter(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to list the js/wasm build's packages")
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{.ImportPath}}\t{{with .Module}}{{.Path}}{{end}}\t{{join .Imports \" \"}}\t{{join .GoFiles \" \"}}", ".")
	cmd.Env = append(cmd.Environ(), "GOOS=js", "GOARCH=wasm")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = strings.TrimSpace(string(ee.Stderr))
		}
		t.Fatalf("GOOS=js GOARCH=wasm go list -deps .: %v: %s", err, stderr)
	}
	imports, files := map[string][]string{}, map[string][]string{}
	var order []string // go list -deps: dependencies first, this command last
	module := ""
	for line := range strings.Lines(strings.TrimSpace(string(out))) {
		fields := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(fields) != 4 {
			t.Fatalf("go list printed %q, want four tab-separated fields", line)
		}
		path := fields[0]
		imports[path], files[path] = strings.Fields(fields[2]), strings.Fields(fields[3])
		order = append(order, path)
		if fields[1] != "" {
			module = fields[1]
		}
	}
	if module == "" || len(order) == 0 {
		t.Fatalf("go list named no package of this module:\n%s", out)
	}
	root := order[len(order)-1]
	// What the browser does import must be there, so that an empty or wrong listing
	// cannot pass.
	if _, ok := imports[module+"/wasm/engine"]; !ok {
		t.Fatalf("%s/wasm/engine is not among the js/wasm dependencies of %s: is this the engine's command?", module, root)
	}
	if _, ok := imports[module+"/model/format"]; !ok {
		t.Errorf("the browser build (%s) does not import %s/model/format, the package manifest's reader", root, module)
	}
	calibration := func(name string) bool { return strings.Contains(name, "gptq") || strings.Contains(name, "calibrat") }
	for _, path := range order {
		rel, ok := strings.CutPrefix(path, module+"/")
		if !ok {
			continue
		}
		chain := strings.Join(importChain(imports, root, path), " → ")
		chain = strings.ReplaceAll(chain, module+"/", "")
		bad := calibration(rel)
		for _, f := range browserForbidden {
			bad = bad || rel == f || strings.HasPrefix(rel, f+"/")
		}
		if bad {
			t.Errorf("the browser build (GOOS=js GOARCH=wasm) links %s, through %s; it must read packages through model/format only", rel, chain)
		}
		for _, f := range files[path] {
			if calibration(strings.ToLower(f)) {
				t.Errorf("the browser build (GOOS=js GOARCH=wasm) links %s/%s, through %s: calibration belongs to the converter's packages", rel, f, chain)
			}
		}
	}
}

// importChain is a shortest chain of imports from one package to another (both ends
// included), found breadth first over the listing's import lists.
func importChain(imports map[string][]string, from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == to {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, q := range imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return []string{from, "…", to}
}
