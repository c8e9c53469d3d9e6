//go:build linux

package pkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// TestConvertPeakRSS converts a synthetic checkpoint of over 1 GiB in a child process
// with a 128 MiB GOMEMLIMIT and checks that the child's peak RSS stays under a quarter
// of the checkpoint: conversion streams tensor by tensor, and its largest tensor here
// (the 32000×512 embedding, 64 MB in F32) bounds its buffers.
func TestConvertPeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and converts a 1 GiB checkpoint")
	}
	cfg := model.Config{
		Architectures: []string{model.Architecture}, BOSTokenID: 1, EOSTokenID: 2, PadTokenID: 0,
		HiddenAct: "silu", HiddenSize: 512, IntermediateSize: 1408, MaxPositionEmbeddings: 2048,
		NumAttentionHeads: 8, NumHiddenLayers: 40, RMSNormEps: 1e-5, TorchDtype: "float32", VocabSize: 32000,
		Vision: model.VisionConfig{
			HiddenAct: "gelu", HiddenSize: 512, ImageSize: 28, InChannels: 3, IntermediateSize: 2048,
			LayerNormEps: 1e-6, NumHeads: 8, NumHiddenLayers: 2, NumPositions: 5, PatchSize: 14,
		},
	}
	root := t.TempDir()
	in, out := filepath.Join(root, "in"), filepath.Join(root, "out")
	start := time.Now()
	size := writeSynthCheckpoint(t, in, cfg, nil, synthTensors(t, cfg, safetensors.F32))
	if size < 1<<30 {
		t.Fatalf("synthetic checkpoint is %d bytes, want at least 1 GiB", size)
	}
	t.Logf("wrote a %d-byte checkpoint in %v", size, time.Since(start))

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childEnv+"=1", childIn+"="+in, childOut+"="+out, "GOMEMLIMIT=128MiB")
	start = time.Now()
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("converter child: %v: %s", err, output)
	}
	peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024 // kilobytes on Linux
	t.Logf("converted in %v; peak RSS %d MiB = %.1f%% of the checkpoint", time.Since(start), peak>>20, 100*float64(peak)/float64(size))
	if peak >= size/4 {
		t.Errorf("peak RSS %d bytes is not under 25%% of the %d-byte checkpoint", peak, size)
	}
	p, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Verify(); err != nil {
		t.Fatal(err)
	}
	if got, want := len(p.Names()), len(synthTensors(t, cfg, safetensors.F32)); got != want {
		t.Errorf("package holds %d tensors, want %d", got, want)
	}
}

// TestGeneratePeakRSS converts a synthetic checkpoint to a q4 package of about 160 MB (six
// 1024-wide layers, the full 32000-token vocabulary) and generates from it in a child
// process: the CPU reference holds the weights as stored, so the child's peak RSS stays
// within 1.3 × the package's bytes + 256 MB (issue 11). Its float32 expansion is about
// 950 MB: the old reference, which dequantized the package, failed this.
func TestGeneratePeakRSS(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 440 MB checkpoint and converts it")
	}
	cfg := model.Config{
		Architectures: []string{model.Architecture}, BOSTokenID: 1, EOSTokenID: 2, PadTokenID: 0,
		HiddenAct: "silu", HiddenSize: 1024, IntermediateSize: 2816, MaxPositionEmbeddings: 2048,
		NumAttentionHeads: 8, NumHiddenLayers: 6, RMSNormEps: 1e-5, TorchDtype: "bfloat16", VocabSize: 32000,
		Vision: model.VisionConfig{
			HiddenAct: "gelu", HiddenSize: 64, ImageSize: 28, InChannels: 3, IntermediateSize: 128,
			LayerNormEps: 1e-6, NumHeads: 2, NumHiddenLayers: 1, NumPositions: 5, PatchSize: 14,
		},
	}
	root := t.TempDir()
	in, out := filepath.Join(root, "in"), filepath.Join(root, "out")
	start := time.Now()
	writeSynthCheckpoint(t, in, cfg, nil, synthTensors(t, cfg, safetensors.BF16))
	if err := Convert(in, out, ConvertOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(in); err != nil {
		t.Fatal(err)
	}
	p, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	var size, params int64
	for _, s := range p.Manifest().Shards {
		size += s.Size
	}
	params = p.Manifest().Stats()[""].Params
	p.Close()
	t.Logf("wrote and converted a %d-parameter checkpoint to a %d-byte q4 package in %v", params, size, time.Since(start).Round(time.Millisecond))
	if float32Bytes := 4 * params; float32Bytes < 3*size {
		t.Fatalf("the float32 model (%d bytes) is too small next to the package (%d) for the test to tell", float32Bytes, size)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), childGenerate+"="+out, childTokens+"=4")
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("generating child: %v: %s", err, output)
	}
	peak := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024 // kilobytes on Linux
	limit := size*13/10 + 256<<20
	t.Logf("child: %s", strings.TrimSpace(string(output)))
	t.Logf("peak RSS %d MiB for a %d MiB package (limit %d MiB; float32 model %d MiB)", peak>>20, size>>20, limit>>20, 4*params>>20)
	if peak > limit {
		t.Errorf("peak RSS %d bytes exceeds 1.3 × the %d-byte package + 256 MiB = %d", peak, size, limit)
	}
}
