//go:build js && wasm

package gpu

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hack-pad/safejs"
)

// ShaderModule is a compiled WGSL module.
type ShaderModule struct {
	v     safejs.Value
	Label string
}

// CompileError is one compilation message of type error, positioned in the WGSL source.
type CompileError struct {
	Shader     string
	Line, Col  int
	Message    string
	SourceLine string
}

func (e CompileError) Error() string {
	s := fmt.Sprintf("%s:%d:%d: %s", e.Shader, e.Line, e.Col, e.Message)
	if e.SourceLine != "" {
		s += " (in: " + strings.TrimSpace(e.SourceLine) + ")"
	}
	return s
}

// ShaderError lists every error message of one module.
type ShaderError struct{ Errors []CompileError }

func (e *ShaderError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, c := range e.Errors {
		msgs[i] = c.Error()
	}
	return "WGSL compilation failed: " + strings.Join(msgs, "; ")
}

// CreateShaderModule compiles WGSL. Compilation errors come back as a *ShaderError whose
// messages carry the label, line and column.
func (d *Device) CreateShaderModule(label, code string) (*ShaderModule, error) {
	m := &ShaderModule{Label: label}
	var info safejs.Value
	err := d.scoped("shader "+label, func() error {
		v, err := d.v.Call("createShaderModule", map[string]any{"label": label, "code": code})
		if err != nil {
			return err
		}
		m.v = v
		p, err := v.Call("getCompilationInfo")
		if err != nil {
			return err
		}
		info, err = Await(p)
		return err
	})
	var serr *ShaderError
	if info.Type() == safejs.TypeObject {
		serr = compileErrors(label, code, info)
	}
	if serr != nil {
		return nil, serr // the positioned messages say more than the scope's copy
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

func compileErrors(label, code string, info safejs.Value) *ShaderError {
	msgs, err := info.Get("messages")
	if err != nil {
		return nil
	}
	n, err := msgs.Length()
	if err != nil {
		return nil
	}
	lines := strings.Split(code, "\n")
	var out []CompileError
	for i := 0; i < n; i++ {
		m, err := msgs.Index(i)
		if err != nil || stringProp(m, "type") != "error" {
			continue
		}
		ce := CompileError{Shader: label, Message: stringProp(m, "message")}
		if v, err := m.Get("lineNum"); err == nil {
			ce.Line, _ = v.Int()
		}
		if v, err := m.Get("linePos"); err == nil {
			ce.Col, _ = v.Int()
		}
		if ce.Line >= 1 && ce.Line <= len(lines) {
			ce.SourceLine = lines[ce.Line-1]
		}
		out = append(out, ce)
	}
	if len(out) == 0 {
		return nil
	}
	return &ShaderError{Errors: out}
}

// ComputePipeline is a compute pipeline with an automatic layout.
type ComputePipeline struct {
	v     safejs.Value
	Label string
}

// PipelineDesc describes a compute pipeline. Constants set the shader's `override`
// declarations (workgroup sizes, tile sizes, feature switches).
type PipelineDesc struct {
	Label      string
	Module     *ShaderModule
	EntryPoint string // default "main"
	Constants  map[string]float64
}

// CreateComputePipeline builds a pipeline; invalid constants or entry points become errors.
func (d *Device) CreateComputePipeline(desc PipelineDesc) (*ComputePipeline, error) {
	if desc.Module == nil {
		return nil, errors.New("pipeline " + desc.Label + ": no shader module")
	}
	entry := desc.EntryPoint
	if entry == "" {
		entry = "main"
	}
	compute := map[string]any{"module": desc.Module.v, "entryPoint": entry}
	if len(desc.Constants) > 0 {
		c := map[string]any{}
		for k, v := range desc.Constants {
			c[k] = v
		}
		compute["constants"] = c
	}
	p := &ComputePipeline{Label: desc.Label}
	err := d.scoped("pipeline "+desc.Label, func() error {
		promise, err := d.v.Call("createComputePipelineAsync", map[string]any{
			"label": desc.Label, "layout": "auto", "compute": compute,
		})
		if err != nil {
			return err
		}
		p.v, err = Await(promise)
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// JS returns the underlying GPUComputePipeline.
func (p *ComputePipeline) JS() safejs.Value { return p.v }
