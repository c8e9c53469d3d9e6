package format

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/quant"
)

// fileNameCase is one row of testdata/file_names.json, the table that web/loader.js's
// fileNameProblem is tested on too (internal/e2e/testdata/unit.js).
type fileNameCase struct {
	Name string `json:"name"`
	Want string `json:"want"` // "ok", or a word of the reason the name is refused
}

func fileNameCases(t testing.TB) []fileNameCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "file_names.json"))
	if err != nil {
		t.Fatal(err)
	}
	var table struct{ Cases []fileNameCase }
	if err := json.Unmarshal(b, &table); err != nil {
		t.Fatalf("testdata/file_names.json: %v", err)
	}
	return table.Cases
}

func TestCheckFileName(t *testing.T) {
	cases := fileNameCases(t)
	if len(cases) < 30 {
		t.Fatalf("testdata/file_names.json has %d cases", len(cases))
	}
	for _, tc := range cases {
		err := CheckFileName(tc.Name)
		switch {
		case tc.Want == "ok" && err != nil:
			t.Errorf("CheckFileName(%q): %v, want it accepted", tc.Name, err)
		case tc.Want != "ok" && (err == nil || !strings.Contains(err.Error(), tc.Want)):
			t.Errorf("CheckFileName(%q): %v, want an error saying %q", tc.Name, err, tc.Want)
		}
	}
}

// smallManifest is a valid manifest of three tensors over two shards, with the golden
// checkpoint's config: a seed small enough to fuzz quickly.
func smallManifest(t testing.TB) *Manifest {
	t.Helper()
	config, err := os.ReadFile(filepath.Join("..", "..", "testdata", "golden", "tiny-chat", "model", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	sha := strings.Repeat("0a", 32)
	return &Manifest{
		Format:        FormatName,
		FormatVersion: FormatVersion,
		Config:        config,
		Tokenizer:     FileEntry{File: TokenizerFileName, Size: 1000, SHA256: sha},
		Shards:        []FileEntry{{File: "shard-00000.bin", Size: 4096, SHA256: sha}, {File: "shard-00001.bin", Size: 512, SHA256: sha}},
		Tensors: []TensorEntry{
			{Name: "a.weight", Shape: []int{8, 64}, Encoding: quant.Q4, GroupSize: 32, Shard: 0, Offset: 0, Length: 256, ScalesOffset: 256, ScalesLength: 32},
			{Name: "b.weight", Shape: []int{64}, Encoding: quant.F16, Shard: 0, Offset: 512, Length: 128},
			{Name: "c.bias", Shape: []int{100}, Encoding: quant.F32, Shard: 1, Offset: 0, Length: 400},
		},
	}
}

func encodeSmall(t testing.TB, edit func(m *Manifest)) []byte {
	t.Helper()
	m := smallManifest(t)
	if edit != nil {
		edit(m)
	}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestManifestFileRules: the file entries of a manifest follow CheckFileName, differ
// (ignoring case), and the tokenizer is bounded before any reader allocates it.
func TestManifestFileRules(t *testing.T) {
	if _, _, err := ParseManifest(encodeSmall(t, nil)); err != nil {
		t.Fatalf("the small manifest: %v", err)
	}
	for _, tc := range []struct {
		name string
		edit func(m *Manifest)
		want string
	}{
		{"a shard named .", func(m *Manifest) { m.Shards[1].File = "." }, `shard 1 file "." is not a plain file name inside the package: it starts with a dot`},
		{"a backslash path", func(m *Manifest) { m.Shards[0].File = `a\..\..\index.html` }, `shard 0 file "a\\..\\..\\index.html" is not a plain file name inside the package: it has the character '\\'`},
		{"an escaped dot-dot", func(m *Manifest) { m.Tokenizer.File = "%2e%2e" }, `tokenizer file "%2e%2e" is not a plain file name inside the package: it has the character '%'`},
		{"the manifest in capitals", func(m *Manifest) { m.Shards[0].File = "MANIFEST.JSON" }, "is the name of the manifest itself"},
		{"a duplicate shard", func(m *Manifest) { m.Shards[1].File = m.Shards[0].File }, `shard 1 file "shard-00000.bin" is also shard 0`},
		{"a duplicate ignoring case", func(m *Manifest) { m.Shards[1].File = "Tokenizer.JSON" }, `shard 1 file "Tokenizer.JSON" is also tokenizer (names must differ, ignoring case)`},
		{"a huge tokenizer", func(m *Manifest) { m.Tokenizer.Size = 1e15 }, "tokenizer tokenizer.json: 1000000000000000 bytes, more than the 67108864 a tokenizer may have"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ParseManifest(encodeSmall(t, tc.edit))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// nameOracle is CheckFileName's rule written another way, for the fuzzer to compare.
var nameOracle = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// FuzzCheckFileName checks CheckFileName against the regular expression of its rule, and
// that every accepted name stays inside the package folder as a path and as a URL.
func FuzzCheckFileName(f *testing.F) {
	for _, tc := range fileNameCases(f) {
		f.Add(tc.Name)
	}
	base, _ := url.Parse("https://example.com/models/demo/manifest.json")
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckFileName(name)
		want := nameOracle.MatchString(name) && !strings.EqualFold(name, ManifestFileName)
		if (err == nil) != want {
			t.Fatalf("CheckFileName(%q) = %v, the rule says accepted=%v", name, err, want)
		}
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("CheckFileName(%q): a message of more than one line: %q", name, err)
			}
			return
		}
		if !filepath.IsLocal(name) || filepath.Base(name) != name || filepath.Clean(name) != name {
			t.Fatalf("accepted %q is not a plain local file name", name)
		}
		ref, perr := url.Parse(name)
		if perr != nil {
			t.Fatalf("accepted %q is not a URL reference: %v", name, perr)
		}
		u := base.ResolveReference(ref)
		if u.Host != base.Host || u.Path != "/models/demo/"+name || u.RawQuery != "" || u.Fragment != "" || u.RawPath != "" {
			t.Fatalf("accepted %q resolves to %s, outside /models/demo/", name, u)
		}
	})
}

// FuzzParseManifest feeds mutated manifests to ParseManifest: it must return an error of
// one line or a manifest whose every promise holds — plain distinct file names, a
// bounded tokenizer, each tensor's parts aligned and inside its shard — and that encodes
// and parses back to itself.
func FuzzParseManifest(f *testing.F) {
	f.Add(encodeSmall(f, nil))
	f.Add(encodeSmall(f, func(m *Manifest) { m.Shards[1].File = `..\x` }))
	f.Add(encodeSmall(f, func(m *Manifest) { m.Tensors[0].Offset = 1 << 62 }))
	f.Add(encodeSmall(f, func(m *Manifest) { m.Tensors[2].Shape = []int{1 << 31, 1 << 31, 1 << 31} }))
	f.Add([]byte(`{"format":"cogvlm-web-package","format_version":1}`))
	f.Add([]byte(`<html>Sign in to the Wi-Fi</html>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, _, err := ParseManifest(data)
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("a message of more than one line: %q", err)
			}
			return
		}
		if err := checkPromises(m); err != nil {
			t.Fatalf("accepted a manifest that breaks a promise: %v", err)
		}
		again, err := m.Encode()
		if err != nil {
			t.Fatalf("cannot encode an accepted manifest: %v", err)
		}
		m2, _, err := ParseManifest(again)
		if err != nil {
			t.Fatalf("the re-encoded manifest is refused: %v\n%s", err, again)
		}
		if a, b := fmt.Sprint(m.Shards, m.Tensors, m.Tokenizer), fmt.Sprint(m2.Shards, m2.Tensors, m2.Tokenizer); a != b {
			t.Fatalf("re-encoding changes the manifest:\n%s\n%s", a, b)
		}
	})
}

// checkPromises restates what ParseManifest promises about an accepted manifest, without
// its code.
func checkPromises(m *Manifest) error {
	seen := map[string]bool{}
	for _, f := range append([]FileEntry{m.Tokenizer}, m.Shards...) {
		if CheckFileName(f.File) != nil || seen[strings.ToLower(f.File)] || f.Size < 0 || len(f.SHA256) != 64 {
			return fmt.Errorf("file entry %+v", f)
		}
		seen[strings.ToLower(f.File)] = true
	}
	if m.Tokenizer.Size > MaxTokenizerBytes {
		return fmt.Errorf("tokenizer of %d bytes", m.Tokenizer.Size)
	}
	for _, e := range m.Tensors {
		if e.Shard < 0 || e.Shard >= len(m.Shards) {
			return fmt.Errorf("tensor %q in shard %d", e.Name, e.Shard)
		}
		size := m.Shards[e.Shard].Size
		for _, p := range [][2]int64{{e.Offset, e.Length}, {e.ScalesOffset, e.ScalesLength}} {
			if p[0] < 0 || p[1] < 0 || p[0]%Alignment != 0 || p[0] > size || p[1] > size-p[0] {
				return fmt.Errorf("tensor %q part [%d, +%d) in a shard of %d bytes", e.Name, p[0], p[1], size)
			}
		}
	}
	return nil
}
