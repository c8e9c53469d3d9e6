//go:build js && wasm

package gpu

import (
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/shaders"
)

// TestShadersCompile compiles every op's module as the engine does (shaders.Source: the
// op's file with common.wgsl and its family files joined) and builds its pipeline with the
// default override constants, so a shared declaration that breaks one op fails here even
// when no kernel test reaches that op. Modules that enable a feature the device lacks are
// skipped.
func TestShadersCompile(t *testing.T) {
	d := testDevice(t)
	for _, name := range shaders.Names() {
		t.Run(shaders.Op(name), func(t *testing.T) {
			src, err := shaders.Source(name)
			if err != nil {
				t.Fatal(err)
			}
			for feature, f := range map[string]Feature{"enable f16;": FeatureShaderF16, "enable subgroups;": FeatureSubgroups} {
				if strings.Contains(src, feature) && !d.Has(f) {
					t.Skipf("needs %s", f)
				}
			}
			mod, err := d.CreateShaderModule(name, src)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := d.CreateComputePipeline(PipelineDesc{Label: name, Module: mod}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestUnusedOverride records what this adapter does with a pipeline constant that names an
// override the module declares but its entry point does not use (common.wgsl's OFFSETS in
// add.wgsl). The engine never sets one (it sets OFFSETS only for kernels that read their
// starts), so either answer is safe; WebGPU's rule is that a key must name an override of
// the module, used or not.
func TestUnusedOverride(t *testing.T) {
	d := testDevice(t)
	src, _ := shaders.Source("add.wgsl")
	mod, err := d.CreateShaderModule("add.wgsl", src)
	if err != nil {
		t.Fatal(err)
	}
	_, err = d.CreateComputePipeline(PipelineDesc{Label: "add, OFFSETS set", Module: mod, Constants: map[string]float64{"OFFSETS": 1}})
	t.Logf("%+v: a constant naming a declared override the entry point does not use: error = %v", d.Info, err)
}
