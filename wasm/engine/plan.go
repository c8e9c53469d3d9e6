//go:build js && wasm

package engine

import (
	"fmt"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// Plan is a list of dispatches recorded once and replayed: a decode step's plan never
// changes, only the per-step uniform values do.
type Plan struct {
	Steps []Step
}

// Add appends steps.
func (p *Plan) Add(s ...Step) { p.Steps = append(p.Steps, s...) }

// Encode records the plan into one compute pass.
func (p *Plan) Encode(pass *gpu.ComputePass) error {
	for _, s := range p.Steps {
		if err := pass.SetPipeline(s.Pipeline); err != nil {
			return fmt.Errorf("%s: %w", s.Label, err)
		}
		if err := pass.SetBindGroup(0, s.Group); err != nil {
			return fmt.Errorf("%s: %w", s.Label, err)
		}
		if err := pass.Dispatch(s.X, s.Y, s.Z); err != nil {
			return fmt.Errorf("%s: %w", s.Label, err)
		}
	}
	return nil
}

// Run encodes the plan into one command buffer and submits it: one submit per step.
func (k *Kernels) Run(p *Plan) error {
	enc, err := k.Dev.CreateCommandEncoder("plan")
	if err != nil {
		return err
	}
	pass, err := enc.BeginComputePass("plan", nil)
	if err != nil {
		return err
	}
	if err := p.Encode(pass); err != nil {
		return err
	}
	if err := pass.End(); err != nil {
		return err
	}
	cb, err := enc.Finish()
	if err != nil {
		return err
	}
	return k.Dev.Submit(cb)
}
