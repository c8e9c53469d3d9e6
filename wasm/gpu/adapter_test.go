//go:build js && wasm

package gpu

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hack-pad/safejs"
)

// TestAdapter names the WebGPU implementation the tests run on: ./build.sh runs it with -v
// at the head of each browser-test step (Chromium on SwiftShader, Dawn for Node on
// lavapipe), so the log says which adapter, which of its features and which subgroup sizes
// every later result was obtained with. COGVLM_REQUIRE_FEATURES (comma-separated) names
// features the device must be granted: the lavapipe step requires shader-f16 and subgroups,
// so a driver or Dawn update that loses them fails there instead of silently testing less.
func TestAdapter(t *testing.T) {
	d := testDevice(t)
	t.Logf("adapter: vendor=%q architecture=%q device=%q description=%q fallback=%v cpu=%v subgroup sizes %d..%d",
		d.Info.Vendor, d.Info.Architecture, d.Info.Device, d.Info.Description, d.Info.Fallback, d.Info.CPU(),
		d.Info.SubgroupMinSize, d.Info.SubgroupMaxSize)
	all, err := adapterFeatures()
	if err != nil {
		t.Fatalf("reading the adapter's features: %v", err)
	}
	t.Logf("adapter features: %s", strings.Join(all, " "))
	var granted []string
	for _, f := range optionalFeatures {
		if d.Has(f) {
			granted = append(granted, string(f))
		}
	}
	t.Logf("granted to the engine: %s", strings.Join(granted, " "))

	for _, f := range strings.Split(os.Getenv("COGVLM_REQUIRE_FEATURES"), ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !slices.Contains(optionalFeatures, Feature(f)) {
			t.Errorf("COGVLM_REQUIRE_FEATURES: %q is not a feature the engine requests (%v)", f, optionalFeatures)
		} else if !d.Has(Feature(f)) {
			t.Errorf("the device was not granted %q (COGVLM_REQUIRE_FEATURES); the adapter offers: %s", f, strings.Join(all, " "))
		}
	}
	if d.Has(FeatureSubgroups) && (d.Info.SubgroupMinSize < 1 || d.Info.SubgroupMaxSize < d.Info.SubgroupMinSize) {
		t.Errorf("subgroups granted but the adapter reports subgroup sizes %d..%d", d.Info.SubgroupMinSize, d.Info.SubgroupMaxSize)
	}
}

// adapterFeatures lists every feature of a fresh adapter (not only those the engine asks
// for), sorted.
func adapterFeatures() ([]string, error) {
	nav, err := safejs.Global().Get("navigator")
	if err != nil {
		return nil, err
	}
	g, err := nav.Get("gpu")
	if err != nil {
		return nil, err
	}
	p, err := g.Call("requestAdapter", map[string]any{"powerPreference": "high-performance"})
	if err != nil {
		return nil, err
	}
	a, err := Await(p)
	if err != nil {
		return nil, err
	}
	feats, err := a.Get("features")
	if err != nil {
		return nil, err
	}
	// A GPUSupportedFeatures is a set-like object: Array.from turns it into an array.
	array, err := safejs.Global().Get("Array")
	if err != nil {
		return nil, err
	}
	list, err := array.Call("from", feats)
	if err != nil {
		return nil, err
	}
	n, err := list.Length()
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		v, err := list.Index(i)
		if err != nil {
			return nil, err
		}
		s, err := v.String()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out, nil
}
