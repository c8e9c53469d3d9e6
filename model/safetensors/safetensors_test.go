package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const golden = "../../testdata/golden"

func TestGoldenCheckpoint(t *testing.T) {
	dir := filepath.Join(golden, "tiny-chat", "model")
	c, err := OpenCheckpoint(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	var idx struct {
		Metadata struct {
			TotalSize int64 `json:"total_size"`
		} `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	data, err := os.ReadFile(filepath.Join(dir, IndexFileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		t.Fatal(err)
	}
	names := c.Names()
	if len(names) != len(idx.WeightMap) || !slices.IsSorted(names) {
		t.Fatalf("Names: %d sorted=%v, index maps %d", len(names), slices.IsSorted(names), len(idx.WeightMap))
	}
	var total int64
	for _, name := range names {
		info, shard, ok := c.Info(name)
		if !ok || filepath.Base(shard) != idx.WeightMap[name] || info.DType != BF16 {
			t.Fatalf("Info(%q) = %+v, %q, %v; index says %s", name, info, shard, ok, idx.WeightMap[name])
		}
		total += info.Size
	}
	if total != idx.Metadata.TotalSize {
		t.Errorf("sum of tensor sizes %d, index total_size %d", total, idx.Metadata.TotalSize)
	}

	for _, tc := range []struct {
		name  string
		shape []int
	}{
		{"model.embed_tokens.weight", []int{32000, 64}},
		{"lm_head.weight", []int{32000, 64}},
		{"model.vision.patch_embedding.proj.weight", []int{64, 3, 14, 14}},
		{"model.vision.boi", []int{1, 1, 64}},
		{"model.layers.1.self_attn.vision_expert_query_key_value.weight", []int{192, 64}},
	} {
		if got, ok := c.Shape(tc.name); !ok || !slices.Equal(got, tc.shape) {
			t.Errorf("Shape(%q) = %v, %v; want %v", tc.name, got, ok, tc.shape)
		}
	}

	// Norm weights were drawn as 1 ± 0.2 and rounded to bf16: every value sits near 1 and
	// has a zero low half once widened.
	norm := make([]float32, 64)
	if err := c.ReadFloat32("model.norm.weight", norm); err != nil {
		t.Fatal(err)
	}
	raw := make([]byte, 128)
	if err := c.ReadRaw("model.norm.weight", raw); err != nil {
		t.Fatal(err)
	}
	for i, v := range norm {
		if v < 0.2 || v > 1.8 || math.Float32bits(v)&0xffff != 0 {
			t.Fatalf("model.norm.weight[%d] = %v (bits %08x), want bf16 near 1", i, v, math.Float32bits(v))
		}
		if want := binary.LittleEndian.Uint16(raw[2*i:]); Float32ToBF16(v) != want {
			t.Fatalf("model.norm.weight[%d]: widened %v does not narrow back to raw %04x", i, v, want)
		}
	}
	// lm_head was drawn with std 4/sqrt(64) = 0.5.
	lm := make([]float32, 32000*64)
	if err := c.ReadFloat32("lm_head.weight", lm); err != nil {
		t.Fatal(err)
	}
	if std := stddev(lm); std < 0.45 || std > 0.55 {
		t.Errorf("lm_head.weight std %v, want about 0.5", std)
	}
	if err := c.ReadFloat32("lm_head.weight", lm[:10]); err == nil || !strings.Contains(err.Error(), "lm_head.weight") {
		t.Errorf("short destination: err = %v", err)
	}
	if err := c.ReadFloat32("no.such.tensor", lm); err == nil || !strings.Contains(err.Error(), "no.such.tensor") {
		t.Errorf("unknown tensor: err = %v", err)
	}
}

func stddev(v []float32) float64 {
	var s, s2 float64
	for _, x := range v {
		s += float64(x)
		s2 += float64(x) * float64(x)
	}
	n := float64(len(v))
	return math.Sqrt(s2/n - (s/n)*(s/n))
}

func TestGoldenExpected(t *testing.T) {
	f, err := Open(filepath.Join(golden, "tiny-chat", "expected.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if md := f.Metadata(); md["format"] != "pt" {
		t.Errorf("metadata %v, want format pt", md)
	}
	want := map[string][]int{
		"image_rgb":           {30, 40, 3},
		"resized_rgb":         {28, 28, 3},
		"pixel_values":        {1, 3, 28, 28},
		"vision_out":          {1, 6, 64},
		"prefill_logits_last": {32000},
		"step_logits":         {12, 32000},
		"prefill_hidden_last": {64},
	}
	if got := f.Names(); len(got) != len(want) {
		t.Fatalf("Names = %v", got)
	}
	for name, shape := range want {
		if info, ok := f.Info(name); !ok || info.DType != F32 || !slices.Equal(info.Shape, shape) {
			t.Errorf("Info(%q) = %+v, want F32 %v", name, info, shape)
		}
	}
	prefill, _, err := f.ReadFloat32("prefill_logits_last")
	if err != nil {
		t.Fatal(err)
	}
	steps, shape, err := f.ReadFloat32("step_logits")
	if err != nil {
		t.Fatal(err)
	}
	// README: row 0 of step_logits is the prefill distribution.
	if !slices.Equal(shape, []int{12, 32000}) || !slices.Equal(steps[:32000], prefill) {
		t.Errorf("step_logits row 0 differs from prefill_logits_last")
	}
	rgb, _, err := f.ReadFloat32("resized_rgb")
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range rgb {
		if v != float32(math.Round(float64(v))) || v < 0 || v > 255 {
			t.Fatalf("resized_rgb[%d] = %v, want an integer in 0..255", i, v)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	// Values exactly representable in all three dtypes survive unchanged; others must come
	// back as the dtype's round-to-nearest-even value.
	exact := []float32{0, 1, -2, 0.5, 1.5, -0.375, 1024, float32(math.Inf(1)), float32(math.Inf(-1))}
	inexact := []float32{0.1, -3.14159, 1e-3, 70000, 1e-6}
	for _, dtype := range []DType{BF16, F16, F32} {
		t.Run(string(dtype), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x.safetensors")
			tensors := []Tensor{
				EncodeFloat32("exact", []int{3, 3}, exact, dtype),
				EncodeFloat32("inexact", []int{5}, inexact, dtype),
				EncodeFloat32("scalar", nil, []float32{7}, dtype),
				EncodeFloat32("empty", []int{0, 4}, nil, dtype),
				{Name: "ints", DType: I32, Shape: []int{2}, Data: []byte{1, 0, 0, 0, 2, 0, 0, 0}},
			}
			md := map[string]string{"format": "pt", "note": "round trip"}
			if err := WriteFile(path, tensors, md); err != nil {
				t.Fatal(err)
			}
			first, _ := os.ReadFile(path)
			if n := binary.LittleEndian.Uint64(first); n%8 != 0 || first[8+n-1] == 0 {
				t.Errorf("header length %d is not a multiple of 8", n)
			}
			if err := WriteFile(path, tensors, md); err != nil {
				t.Fatal(err)
			}
			if second, _ := os.ReadFile(path); !bytes.Equal(first, second) {
				t.Error("writing the same tensors twice gave different bytes")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("temporary files left behind: %v", entries)
			}

			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if got := f.Metadata(); len(got) != 2 || got["note"] != "round trip" {
				t.Errorf("Metadata = %v", got)
			}
			if got := f.Names(); !slices.Equal(got, []string{"empty", "exact", "inexact", "ints", "scalar"}) {
				t.Errorf("Names = %v", got)
			}
			got, shape, err := f.ReadFloat32("exact")
			if err != nil || !slices.Equal(shape, []int{3, 3}) || !slices.Equal(got, exact) {
				t.Errorf("exact: %v %v %v, want %v", got, shape, err, exact)
			}
			got, _, err = f.ReadFloat32("inexact")
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range inexact {
				if want := roundTo(dtype, v); math.Float32bits(got[i]) != math.Float32bits(want) {
					t.Errorf("inexact[%d]: %v read back as %v, want %v", i, v, got[i], want)
				}
			}
			if got, shape, err := f.ReadFloat32("scalar"); err != nil || len(shape) != 0 || !slices.Equal(got, []float32{7}) {
				t.Errorf("scalar: %v %v %v", got, shape, err)
			}
			if got, shape, err := f.ReadFloat32("empty"); err != nil || !slices.Equal(shape, []int{0, 4}) || len(got) != 0 {
				t.Errorf("empty: %v %v %v", got, shape, err)
			}
			raw := make([]byte, 8)
			if err := f.ReadRaw("ints", raw); err != nil || binary.LittleEndian.Uint32(raw[4:]) != 2 {
				t.Errorf("ints raw: %v %v", raw, err)
			}
			if _, _, err := f.ReadFloat32("ints"); err == nil || !strings.Contains(err.Error(), "I32") || !strings.Contains(err.Error(), `"ints"`) {
				t.Errorf("ReadFloat32 of I32: err = %v, want one naming the dtype and tensor", err)
			}
		})
	}
}

// roundTo is the value a float32 takes after storage in dtype, computed independently of
// the package's converters through float64 arithmetic on the representable neighbours.
func roundTo(dtype DType, v float32) float32 {
	switch dtype {
	case BF16:
		bits := math.Float32bits(v) &^ 0xffff
		lo := math.Float32frombits(bits)
		hi := math.Float32frombits(bits + 0x10000)
		dlo, dhi := math.Abs(float64(v)-float64(lo)), math.Abs(float64(hi)-float64(v))
		if dlo < dhi || (dlo == dhi && bits&0x10000 == 0) {
			return lo
		}
		return hi
	case F16:
		// Scan the 65536 halves for the nearest; fine for a handful of values.
		best, bestBits := float32(math.NaN()), uint16(0)
		bestD := math.Inf(1)
		for h := 0; h < 0x7c00; h++ {
			for _, sign := range []uint16{0, 0x8000} {
				x := halfValue(uint16(h) | sign)
				d := math.Abs(float64(v) - x)
				if d < bestD || (d == bestD && h&1 == 0 && bestBits&1 == 1) {
					best, bestD, bestBits = float32(x), d, uint16(h)
				}
			}
		}
		if math.Abs(float64(v)) >= 65520 { // beyond max half + half an ulp
			return float32(math.Inf(int(math.Copysign(1, float64(v)))))
		}
		return best
	}
	return v
}

// halfValue decodes a finite IEEE half by its definition.
func halfValue(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	if exp == 0 {
		return sign * mant * math.Pow(2, -24)
	}
	return sign * (1 + mant/1024) * math.Pow(2, float64(exp-15))
}

func TestBF16Conversion(t *testing.T) {
	f := math.Float32frombits
	for _, tc := range []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3f80},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
		{"tie rounds down to even", f(0x3f808000), 0x3f80},
		{"tie rounds up to even", f(0x3f818000), 0x3f82},
		{"just above tie", f(0x3f808001), 0x3f81},
		{"just below tie", f(0x3f807fff), 0x3f80},
		{"max float32 overflows to inf", math.MaxFloat32, 0x7f80},
		{"-inf", float32(math.Inf(-1)), 0xff80},
		{"float32 subnormal keeps bf16 subnormal", f(0x00012345), 0x0001},
		{"tiny subnormal rounds to zero", f(0x00000001), 0x0000},
		{"NaN stays NaN", f(0x7f800001), 0x7fc0},
		{"negative NaN", f(0xffc00000), 0xffc0},
	} {
		if got := Float32ToBF16(tc.in); got != tc.want {
			t.Errorf("%s: Float32ToBF16(%08x) = %04x, want %04x", tc.name, math.Float32bits(tc.in), got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   uint16
		want uint32
	}{{0x3f80, 0x3f800000}, {0x0001, 0x00010000}, {0x7f80, 0x7f800000}, {0xffc1, 0xffc10000}} {
		if got := math.Float32bits(BF16ToFloat32(tc.in)); got != tc.want {
			t.Errorf("BF16ToFloat32(%04x) = %08x, want %08x", tc.in, got, tc.want)
		}
	}
}

func TestF16Conversion(t *testing.T) {
	p2 := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	for _, tc := range []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3c00},
		{"max half", 65504, 0x7bff},
		{"below overflow tie", 65519, 0x7bff},
		{"overflow tie goes to inf", 65520, 0x7c00},
		{"smallest normal", p2(-14), 0x0400},
		{"smallest subnormal", p2(-24), 0x0001},
		{"half the smallest subnormal ties to zero", p2(-25), 0x0000},
		{"1.5 smallest subnormals ties to 2", 3 * p2(-25), 0x0002},
		{"largest subnormal", 1023 * p2(-24), 0x03ff},
		{"tie rounds down to even", 1 + p2(-11), 0x3c00},
		{"tie rounds up to even", 1 + 3*p2(-11), 0x3c02},
		{"-inf", float32(math.Inf(-1)), 0xfc00},
		{"negative zero", float32(math.Copysign(0, -1)), 0x8000},
	} {
		if got := Float32ToF16(tc.in); got != tc.want {
			t.Errorf("%s: Float32ToF16(%v) = %04x, want %04x", tc.name, tc.in, got, tc.want)
		}
	}
	if h := Float32ToF16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("Float32ToF16(NaN) = %04x, not a NaN", h)
	}
	for h := 0; h < 0x7c00; h++ { // every finite positive half widens exactly
		if got, want := F16ToFloat32(uint16(h)), halfValue(uint16(h)); float64(got) != want {
			t.Fatalf("F16ToFloat32(%04x) = %v, want %v", h, got, want)
		}
	}
	if v := F16ToFloat32(0xfc00); !math.IsInf(float64(v), -1) {
		t.Errorf("F16ToFloat32(fc00) = %v, want -Inf", v)
	}
	if v := F16ToFloat32(0x7e00); v == v {
		t.Errorf("F16ToFloat32(7e00) = %v, want NaN", v)
	}
}

// rawFile assembles a safetensors file by hand, so that corrupt headers can be written.
func rawFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	return append(append(b, header...), data...)
}

func TestOpenErrors(t *testing.T) {
	data := make([]byte, 24)
	good := `{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2,4],"data_offsets":[8,24]}}`
	if _, err := parse(bytes.NewReader(rawFile(good, data)), int64(8+len(good)+24), "good"); err != nil {
		t.Fatalf("the valid base file fails: %v", err)
	}
	huge := binary.LittleEndian.AppendUint64(nil, 1<<40)
	for _, tc := range []struct {
		name    string
		file    []byte
		wantErr []string // substrings of the one error line, besides the file name
	}{
		{"empty file", nil, []string{"too short"}},
		{"header length huge", append(huge, "{}"...), []string{"header length 1099511627776", "limit"}},
		{"header length past end", rawFile(good, data)[:40], []string{"header length", "past the end"}},
		{"truncated data", rawFile(good, data[:23]), []string{`tensor "b"`, "run past"}},
		{"bad JSON", rawFile(`{"a":`, nil), []string{"bad JSON"}},
		{"not an object", rawFile(`[1,2]`, nil), []string{"want an object"}},
		{"trailing garbage", rawFile(`{}x`, nil), []string{"unexpected bytes"}},
		{"bad dtype", rawFile(`{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}`, data[:8]), []string{`tensor "a"`, `"Q4"`}},
		{"size mismatch", rawFile(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, data[:8]), []string{`tensor "a"`, "needs 12 bytes"}},
		{"negative dim", rawFile(`{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}`, data[:8]), []string{`tensor "a"`, "negative dimension -2"}},
		{"overflow", rawFile(`{"a":{"dtype":"F32","shape":[2147483647,2147483647,2147483647],"data_offsets":[0,8]}}`, data[:8]), []string{`tensor "a"`, "overflows"}},
		{"reversed offsets", rawFile(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, data[:8]), []string{`tensor "a"`, "not an interval"}},
		{"three offsets", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8,16]}}`, data[:16]), []string{`tensor "a"`, "[begin, end]"}},
		{"missing shape", rawFile(`{"a":{"dtype":"F32","data_offsets":[0,8]}}`, data[:8]), []string{`tensor "a"`, "missing shape"}},
		{"entry not an object", rawFile(`{"a":7}`, nil), []string{`tensor "a"`, "bad entry"}},
		{"duplicate name", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, data[:16]), []string{`"a" appears twice`}},
		{"overlap", rawFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, data[:16]), []string{`tensor "b"`, `tensor "a"`, "overlaps"}},
		{"metadata not strings", rawFile(`{"__metadata__":{"n":1}}`, nil), []string{"__metadata__"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.safetensors")
			if err := os.WriteFile(path, tc.file, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err == nil {
				f.Close()
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || strings.Contains(msg, "\n") {
				t.Errorf("error %q does not name %s on one line", msg, path)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q lacks %q", msg, want)
				}
			}
		})
	}
}

func TestReadAfterTruncation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteFile(path, []Tensor{EncodeFloat32("w", []int{4}, []float32{1, 2, 3, 4}, F32)}, nil); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Truncate(path, 20); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.ReadFloat32("w"); err == nil || !strings.Contains(err.Error(), `tensor "w"`) {
		t.Errorf("reading a tensor cut off after Open: err = %v", err)
	}
}

func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.safetensors")
	for _, tc := range []struct {
		name    string
		tensors []Tensor
		want    string
	}{
		{"duplicate", []Tensor{EncodeFloat32("a", []int{1}, []float32{1}, F32), EncodeFloat32("a", []int{1}, []float32{1}, F32)}, `"a" given twice`},
		{"short data", []Tensor{EncodeFloat32("a", []int{2}, []float32{1}, BF16)}, "needs 4 bytes, have 2"},
		{"no float encoding", []Tensor{EncodeFloat32("a", []int{1}, []float32{1}, I32)}, `tensor "a"`},
		{"reserved name", []Tensor{EncodeFloat32("__metadata__", []int{1}, []float32{1}, F32)}, "reserved"},
		{"unknown dtype", []Tensor{{Name: "a", DType: "Q4", Shape: []int{1}, Data: []byte{0}}}, `unsupported dtype "Q4"`},
	} {
		err := WriteFile(path, tc.tensors, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed writes left files: %v", entries)
	}
}

// writeCheckpoint writes a two-shard checkpoint and an index whose weight_map is given.
func writeCheckpoint(t *testing.T, weightMap map[string]string) string {
	dir := t.TempDir()
	one := []float32{1}
	for shard, names := range map[string][]string{"s1.safetensors": {"a", "b"}, "s2.safetensors": {"c"}} {
		var ts []Tensor
		for _, n := range names {
			ts = append(ts, EncodeFloat32(n, []int{1}, one, BF16))
		}
		if err := WriteFile(filepath.Join(dir, shard), ts, map[string]string{"format": "pt"}); err != nil {
			t.Fatal(err)
		}
	}
	idx, _ := json.Marshal(map[string]any{"metadata": map[string]int{"total_size": 6}, "weight_map": weightMap})
	if err := os.WriteFile(filepath.Join(dir, IndexFileName), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheckpointErrors(t *testing.T) {
	good := map[string]string{"a": "s1.safetensors", "b": "s1.safetensors", "c": "s2.safetensors"}
	c, err := OpenCheckpoint(writeCheckpoint(t, good))
	if err != nil {
		t.Fatalf("valid checkpoint: %v", err)
	}
	if got := c.Names(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Names = %v", got)
	}
	c.Close()

	with := func(name, shard string) map[string]string {
		m := map[string]string{}
		for k, v := range good {
			m[k] = v
		}
		if shard == "" {
			delete(m, name)
		} else {
			m[name] = shard
		}
		return m
	}
	for _, tc := range []struct {
		name      string
		weightMap map[string]string
		want      []string
	}{
		{"missing shard", with("d", "s3.safetensors"), []string{`"s3.safetensors"`, "does not exist"}},
		{"unmapped tensor", with("b", ""), []string{`tensor "b"`, "s1.safetensors", "missing from weight_map"}},
		{"tensor in the wrong shard", with("b", "s2.safetensors"), []string{`tensor "b" is in shard s1.safetensors but weight_map names s2.safetensors`}},
		{"shard lacks a mapped tensor", with("c", "s1.safetensors"), []string{`tensor "c"`, "does not hold it"}},
		{"shard outside the folder", with("a", "../s1.safetensors"), []string{`"../s1.safetensors"`, "not a file name"}},
		{"empty map", map[string]string{}, []string{"weight_map is missing or empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := OpenCheckpoint(writeCheckpoint(t, tc.weightMap))
			if err == nil {
				t.Fatal("OpenCheckpoint succeeded")
			}
			for _, want := range append(tc.want, IndexFileName) {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
		})
	}

	t.Run("tensor in two shards", func(t *testing.T) {
		dir := writeCheckpoint(t, good)
		if err := WriteFile(filepath.Join(dir, "s2.safetensors"), []Tensor{EncodeFloat32("a", []int{1}, []float32{1}, BF16), EncodeFloat32("c", []int{1}, []float32{1}, BF16)}, nil); err != nil {
			t.Fatal(err)
		}
		_, err := OpenCheckpoint(dir)
		if err == nil || !strings.Contains(err.Error(), `tensor "a" is in two shards`) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("bad index JSON", func(t *testing.T) {
		dir := writeCheckpoint(t, good)
		os.WriteFile(filepath.Join(dir, IndexFileName), []byte("{"), 0o644)
		if _, err := OpenCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "bad JSON") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("corrupt shard", func(t *testing.T) {
		dir := writeCheckpoint(t, good)
		os.Truncate(filepath.Join(dir, "s2.safetensors"), 30)
		if _, err := OpenCheckpoint(dir); err == nil || !strings.Contains(err.Error(), "s2.safetensors") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("no weights", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := OpenCheckpoint(dir); err == nil || !strings.Contains(err.Error(), dir) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("single file", func(t *testing.T) {
		dir := t.TempDir()
		if err := WriteFile(filepath.Join(dir, SingleFileName), []Tensor{EncodeFloat32("w", []int{2}, []float32{1, 2}, F16)}, nil); err != nil {
			t.Fatal(err)
		}
		c, err := OpenCheckpoint(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got := make([]float32, 2)
		if err := c.ReadFloat32("w", got); err != nil || !slices.Equal(got, []float32{1, 2}) {
			t.Errorf("w = %v, %v", got, err)
		}
	})
}

// FuzzOpen checks that no byte string makes the parser or the readers panic, and that
// whatever parses can be read within the file's bounds.
func FuzzOpen(f *testing.F) {
	f.Add(rawFile(`{"__metadata__":{"format":"pt"},"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}}`, []byte{0, 0x3f, 0, 0x40}))
	f.Add(rawFile(`{"a":{"dtype":"F16","shape":[],"data_offsets":[0,2]},"b":{"dtype":"F32","shape":[0],"data_offsets":[2,2]}}`, []byte{0, 0x3c}))
	f.Add(rawFile(`{"a":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}`, []byte{1, 2, 3}))
	f.Add(rawFile(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}`, make([]byte, 16)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parse(bytes.NewReader(data), int64(len(data)), "fuzz")
		if err != nil {
			return
		}
		for _, name := range file.Names() {
			info, _ := file.Info(name)
			if info.Offset+info.Size > int64(len(data)) {
				t.Fatalf("tensor %q [%d,+%d) beyond %d bytes", name, info.Offset, info.Size, len(data))
			}
			if err := file.ReadRaw(name, make([]byte, info.Size)); err != nil {
				t.Fatalf("ReadRaw(%q): %v", name, err)
			}
			_, _, err := file.ReadFloat32(name)
			if info.DType.floatConvertible() != (err == nil) {
				t.Fatalf("ReadFloat32(%q) of %s: %v", name, info.DType, err)
			}
		}
	})
}

// Create + Write in pieces gives the bytes WriteFile gives; a short or long data stream
// is refused and leaves no file.
func TestStreamWriter(t *testing.T) {
	dir := t.TempDir()
	tensors := []Tensor{
		EncodeFloat32("b", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6}, BF16),
		EncodeFloat32("a", []int{3}, []float32{-1, 0.5, 7}, F32),
	}
	if err := WriteFile(filepath.Join(dir, "whole.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	entries := []Entry{{"b", BF16, []int{2, 3}}, {"a", F32, []int{3}}}
	w, err := Create(filepath.Join(dir, "streamed.safetensors"), entries, map[string]string{"format": "pt"})
	if err != nil {
		t.Fatal(err)
	}
	all := append(append([]byte(nil), tensors[0].Data...), tensors[1].Data...)
	for i := 0; i < len(all); i += 5 {
		if _, err := w.Write(all[i:min(i+5, len(all))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "whole.safetensors"))
	b, _ := os.ReadFile(filepath.Join(dir, "streamed.safetensors"))
	if !bytes.Equal(a, b) {
		t.Error("streamed file differs from WriteFile's")
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"short", all[:len(all)-1], "1 bytes of tensor data missing"},
		{"long", append(all, 0), "1 bytes of data past the 0 the header announces"},
	} {
		path := filepath.Join(dir, tc.name+".safetensors")
		w, err := Create(path, entries, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := min(len(tc.data), len(all))
		_, werr := w.Write(tc.data[:n])
		if werr == nil && len(tc.data) > n {
			_, werr = w.Write(tc.data[n:])
		}
		if cerr := w.Close(); werr == nil {
			werr = cerr
		}
		if werr == nil || !strings.Contains(werr.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, werr, tc.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 2 {
			t.Errorf("%s: left %d files", tc.name, len(entries))
		}
	}
}
