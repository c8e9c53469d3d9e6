package pkg

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// TestCalibratedPackage: Convert with Calibrate writes the same manifest as without it
// (tensors, encodings, group sizes, places, shard sizes: only hashes differ), the same
// bytes for every tensor that is not q4, and GPTQ's levels for the q4 ones.
func TestCalibratedPackage(t *testing.T) {
	plain, err := Open(goldenPackage(t, quant.Q4))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	cal, err := Open(goldenCalibratedPackage(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cal.Close()
	if err := cal.Verify(); err != nil {
		t.Fatal(err)
	}
	pm, cm := plain.Manifest(), cal.Manifest()
	if !reflect.DeepEqual(pm.Tensors, cm.Tensors) {
		t.Errorf("the calibrated package's tensor entries differ from the plain one's")
	}
	if len(pm.Shards) != len(cm.Shards) {
		t.Fatalf("%d shards, plain %d", len(cm.Shards), len(pm.Shards))
	}
	for i := range pm.Shards {
		if pm.Shards[i].Size != cm.Shards[i].Size {
			t.Errorf("shard %d is %d bytes, plain %d", i, cm.Shards[i].Size, pm.Shards[i].Size)
		}
	}
	changed, q4 := 0, 0
	for _, e := range cm.Tensors {
		pd, ps, err1 := plain.ReadRaw(e.Name)
		cd, cs, err2 := cal.ReadRaw(e.Name)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		same := slices.Equal(pd, cd) && slices.Equal(ps, cs)
		if e.Encoding != quant.Q4 {
			if !same {
				t.Errorf("%s (%s) differs from the plain package's", e.Name, e.Encoding)
			}
			continue
		}
		q4++
		if !same {
			changed++
		}
	}
	if changed != q4 {
		t.Errorf("calibration changed %d of the %d q4 tensors, want all", changed, q4)
	}
}

// TestCalibrationIsNotGolden: no calibration prompt or image is a golden case's.
func TestCalibrationIsNotGolden(t *testing.T) {
	m, tok, _ := goldenFloatModel(t)
	cases, err := calibrationCases(m.Config, tok, DefaultCalibrationImages)
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != DefaultCalibrationImages+len(calibrationTexts) {
		t.Fatalf("%d calibration cases, want %d", len(cases), DefaultCalibrationImages+len(calibrationTexts))
	}
	for _, name := range goldenCaseNames {
		g := loadGoldenCase(t, name)
		text := g.inputs.InputIDs[1:]
		if px := g.tensors["pixel_values"]; px != nil {
			text = text[m.Config.NumImageTokens():]
		}
		for i, c := range cases {
			if slices.Equal(c.inputs.InputIDs, g.inputs.InputIDs) || containsRun(c.inputs.InputIDs, text) {
				t.Errorf("calibration prompt %d contains %s's prompt", i, name)
			}
			if px := g.tensors["pixel_values"]; c.pixels != nil && px != nil && closePixels(c.pixels, px) {
				t.Errorf("calibration image %d is %s's image", i, name)
			}
		}
	}
	for _, q := range calibrationQuestions {
		if strings.Contains(q, "What is in this image") {
			t.Errorf("calibration question %q is the golden one", q)
		}
	}
}

// containsRun reports whether ids holds run as a contiguous subsequence.
func containsRun(ids, run []int) bool {
	for i := 0; i+len(run) <= len(ids); i++ {
		if slices.Equal(ids[i:i+len(run)], run) {
			return true
		}
	}
	return false
}

// closePixels reports whether two images are within 0.1 (normalised units) everywhere.
func closePixels(a, b []float32) bool {
	for i := range a {
		if d := a[i] - b[i]; d > 0.1 || d < -0.1 {
			return false
		}
	}
	return true
}

// TestCalibrationStages: the stages group the weights whose inputs are computed together
// and keep the forward order.
func TestCalibrationStages(t *testing.T) {
	for _, group := range [][]string{
		{"model.layers.1.self_attn.vision_expert_query_key_value.weight", "model.layers.1.self_attn.language_expert_query_key_value.weight"},
		{"model.layers.1.self_attn.vision_expert_dense.weight", "model.layers.1.self_attn.language_expert_dense.weight"},
		{"model.layers.0.mlp.vision_mlp.gate_proj.weight", "model.layers.0.mlp.vision_mlp.up_proj.weight",
			"model.layers.0.mlp.language_mlp.gate_proj.weight", "model.layers.0.mlp.language_mlp.up_proj.weight"},
		{"model.layers.0.mlp.vision_mlp.down_proj.weight", "model.layers.0.mlp.language_mlp.down_proj.weight"},
		{"model.vision.linear_proj.gate_proj.weight", "model.vision.linear_proj.dense_h_to_4h.weight"},
	} {
		for _, name := range group[1:] {
			if calibrationStage(name) != calibrationStage(group[0]) {
				t.Errorf("%s and %s are in different stages", group[0], name)
			}
		}
	}
	distinct := []string{
		"model.vision.transformer.layers.0.attention.query_key_value.weight",
		"model.vision.transformer.layers.0.attention.dense.weight",
		"model.vision.transformer.layers.0.mlp.fc1.weight",
		"model.vision.transformer.layers.0.mlp.fc2.weight",
		"model.vision.transformer.layers.1.mlp.fc1.weight",
		"model.vision.linear_proj.linear_proj.weight",
		"model.vision.linear_proj.gate_proj.weight",
		"model.vision.linear_proj.dense_4h_to_h.weight",
		"model.layers.0.self_attn.vision_expert_query_key_value.weight",
		"model.layers.0.self_attn.vision_expert_dense.weight",
		"model.layers.0.mlp.vision_mlp.gate_proj.weight",
		"model.layers.0.mlp.vision_mlp.down_proj.weight",
		"model.layers.1.self_attn.vision_expert_query_key_value.weight",
	}
	seen := map[string]string{}
	for _, name := range distinct {
		if other, ok := seen[calibrationStage(name)]; ok {
			t.Errorf("%s and %s share a stage", other, name)
		}
		seen[calibrationStage(name)] = name
	}
}

// TestCalibrateCancelled: a cancelled calibration fails with the context's error and
// writes nothing.
func TestCalibrateCancelled(t *testing.T) {
	root := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Convert(goldenModelDir, filepath.Join(root, "out"), ConvertOptions{Calibrate: true, Context: ctx})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if names := listDir(t, root); !slices.Equal(names, []string{"."}) {
		t.Errorf("cancelled Convert left %v", names)
	}
}

// TestCalibrateTooLarge: calibration is refused, before anything is written, for a model
// over the parameter limit.
func TestCalibrateTooLarge(t *testing.T) {
	defer func(limit int64) { calibrationParamLimit = limit }(calibrationParamLimit)
	calibrationParamLimit = 1 << 20
	root := t.TempDir()
	err := Convert(goldenModelDir, filepath.Join(root, "out"), ConvertOptions{Calibrate: true})
	if err == nil || !strings.Contains(err.Error(), "it is limited to 1048576 parameters") {
		t.Fatalf("error %v, want the parameter limit", err)
	}
	if names := listDir(t, root); !slices.Equal(names, []string{"."}) {
		t.Errorf("refused Convert left %v", names)
	}
}
