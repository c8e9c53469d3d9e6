package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestConvertGenerateAccuracy: convert the golden checkpoint, generate from the f32
// package (the golden tokens), and compare a q8 package with `accuracy`.
func TestConvertGenerateAccuracy(t *testing.T) {
	const golden = "../../testdata/golden"
	dir := t.TempDir()
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(args, strings.NewReader(""), &out, &errb); code != exitOK {
			t.Fatalf("cogvlm %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
		}
		return out.String()
	}
	f32, q8 := filepath.Join(dir, "f32"), filepath.Join(dir, "q8")
	cli("convert", "--in", golden+"/tiny-chat/model", "--out", f32, "--quant", "f32")
	cli("convert", "--in", golden+"/tiny-chat/model", "--out", q8, "--quant", "q8")

	out := cli("generate", "--model", f32, "--query", "The quick brown fox", "--template", "base",
		"--temperature", "0", "--max-new-tokens", "12", "--json")
	var res struct {
		GeneratedIDs []int `json:"generated_ids"`
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatal(err)
	}
	want := []int{4812, 16292, 17897, 3654, 22625, 18732, 2622, 307, 10154, 25286, 30008, 1030} // tiny-text/expected.json
	if !slices.Equal(res.GeneratedIDs, want) {
		t.Errorf("generate from the f32 package: %v, want %v", res.GeneratedIDs, want)
	}

	report := cli("accuracy", "--ref", golden+"/tiny-chat/model", "--pkg", q8)
	cases := regexp.MustCompile(`(?m)^(text|image)\s+([0-9.]+)`).FindAllStringSubmatch(report, -1)
	if len(cases) != 2 || !strings.Contains(report, "bits per weight") {
		t.Fatalf("accuracy report:\n%s", report)
	}
	for _, c := range cases {
		if cos, _ := strconv.ParseFloat(c[2], 64); cos < 0.999 {
			t.Errorf("q8 %s prefill cosine %v < 0.999\n%s", c[1], cos, report)
		}
	}
	t.Logf("accuracy of the q8 package:\n%s", report)
}

// TestConvertCalibrate: --calibrate converts to q4 with GPTQ, and is refused where no
// tensor is q4, with the reason.
func TestConvertCalibrate(t *testing.T) {
	const model = "../../testdata/golden/tiny-chat/model"
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run([]string{"convert", "--in", model, "--out", filepath.Join(dir, "q4"), "--calibrate"}, strings.NewReader(""), &out, &errb); code != exitOK {
		t.Fatalf("convert --calibrate: exit %d: %s", code, errb.String())
	}
	errb.Reset()
	code := run([]string{"convert", "--in", model, "--out", filepath.Join(dir, "q8"), "--quant", "q8", "--calibrate"}, strings.NewReader(""), &out, &errb)
	if code == exitOK || !strings.Contains(errb.String(), "the policy gives no tensor q4") {
		t.Errorf("convert --quant q8 --calibrate: exit %d, stderr %q", code, errb.String())
	}
}
