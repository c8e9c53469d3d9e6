//go:build js && wasm

package engine

import "github.com/cogvlm-web/cogvlm-web/wasm/kernels"

// recorder records a forward pass's steps into a plan, naming its weights by their
// checkpoint names (model/names.go) in the package; it keeps the first error of the ops
// and the look-ups, so that a pass reads as a list of ops.
type recorder struct {
	pkg  *Package
	plan kernels.Plan
	err  error
}

// add appends the steps of one op (most ops are one step, split attention several).
func (r *recorder) add(steps []kernels.Step, err error) {
	if r.err == nil && err != nil {
		r.err = err
	}
	r.plan.Add(steps...)
}

// op appends one op's step.
func (r *recorder) op(s kernels.Step, err error) { r.add([]kernels.Step{s}, err) }

// weight is the named tensor of the package.
func (r *recorder) weight(name string) kernels.Weight {
	w, err := r.pkg.Weight(name)
	if r.err == nil && err != nil {
		r.err = err
	}
	return w
}

// bias is the named tensor as a Linear's bias.
func (r *recorder) bias(name string) *kernels.Weight {
	w := r.weight(name)
	return &w
}

// done is the recorded plan, or the first error.
func (r *recorder) done() (*kernels.Plan, error) {
	if r.err != nil {
		return nil, r.err
	}
	return &r.plan, nil
}
