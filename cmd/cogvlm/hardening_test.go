package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A vision_config.image_size too large to preprocess to is the model's fault: the error
// names the model folder and the config key, not the image that was given.
func TestImageSizeErrorNamesTheModel(t *testing.T) {
	src := filepath.Join(golden, "tiny-chat", "model")
	dir := filepath.Join(t.TempDir(), "model")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "config.json" {
			var cfg map[string]any
			if err := json.Unmarshal(data, &cfg); err != nil {
				t.Fatal(err)
			}
			vision := cfg["vision_config"].(map[string]any)
			patch := int(vision["patch_size"].(float64))
			size := 1000 * patch // a valid config, but 1000·P squared pixels is over the budget
			vision["image_size"], vision["num_positions"] = size, 1000*1000+1
			data, _ = json.Marshal(cfg)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	image := filepath.Join(golden, "tiny-chat", "image.png")
	code, _, stderr := cli(t, "", "generate", "--model", dir, "--query", "hi", "--image", image)
	if code != exitError || !strings.HasPrefix(stderr, "cogvlm generate: "+dir+": vision_config.image_size ") ||
		!strings.Contains(stderr, "exceeds the limit of") || strings.Contains(stderr, image) {
		t.Errorf("exit %d, stderr %q; want 1 and an error naming %s and vision_config.image_size, not the image", code, stderr, dir)
	}
}
