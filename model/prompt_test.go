package model

import (
	"slices"
	"strings"
	"testing"
)

func TestBuildPrompt(t *testing.T) {
	twoTurns := [][2]string{{"Q1", "A1"}, {"Q2", "A2"}}
	for _, tc := range []struct {
		template, query string
		history         [][2]string
		want, errHas    string
	}{
		{"chat", "Q3", twoTurns, "Question: Q1 Answer: A1\nQuestion: Q2 Answer: A2\nQuestion: Q3 Answer:", ""},
		{"chat", "What is in this image?", nil, "Question: What is in this image? Answer:", ""},
		{"vqa", "Q3", twoTurns[:1], "Question: Q1 Short answer: A1\nQuestion: Q3 Short answer:", ""},
		{"base", "The quick brown fox", twoTurns, "The quick brown fox", ""},
		{"chat", "  spaces  kept ", nil, "Question:   spaces  kept  Answer:", ""},
		{"llava", "Q", nil, "", `unknown template "llava" (want one of chat, vqa, base)`},
	} {
		got, err := BuildPrompt(tc.template, tc.query, tc.history)
		switch {
		case tc.errHas != "" && (err == nil || !strings.Contains(err.Error(), tc.errHas)):
			t.Errorf("%s: error %v, want one containing %q", tc.template, err, tc.errHas)
		case tc.errHas == "" && (err != nil || got != tc.want):
			t.Errorf("%s %q: got %q, %v; want %q", tc.template, tc.query, got, err, tc.want)
		}
	}
}

func TestPositionIDsAndExpertMask(t *testing.T) {
	const L, V = LanguageTokenType, VisionTokenType
	for _, tc := range []struct {
		name      string
		types     []int
		positions []int
		mask      []int
	}{
		{"text only", []int{L, L, L}, []int{0, 1, 2}, []int{0, 0, 0}},
		{"image", []int{L, V, V, V, V, V, V, L, L}, []int{0, 1, 2, 2, 2, 2, 3, 4, 5}, []int{0, 1, 1, 1, 1, 1, 0, 0, 0}},
		// a run of two is just boi and eoi; no interior token
		{"boi eoi only", []int{L, V, V, L}, []int{0, 1, 2, 3}, []int{0, 1, 0, 0}},
		// a sequence starting with vision tokens: the first is a boi
		{"image first", []int{V, V, V, V, L}, []int{0, 1, 1, 2, 3}, []int{1, 1, 1, 0, 0}},
		// vision tokens at the end: the last is an eoi and the last token is never routed
		// to the vision expert
		{"image last", []int{L, V, V, V}, []int{0, 1, 2, 3}, []int{0, 1, 1, 0}},
		{"two images", []int{L, V, V, V, V, L, V, V, V, L}, []int{0, 1, 2, 2, 3, 4, 5, 6, 7, 8}, []int{0, 1, 1, 1, 0, 0, 1, 1, 0, 0}},
	} {
		if got := PositionIDs(tc.types); !slices.Equal(got, tc.positions) {
			t.Errorf("%s: PositionIDs = %v, want %v", tc.name, got, tc.positions)
		}
		if got := boolsToInts(VisionExpertMask(tc.types)); !slices.Equal(got, tc.mask) {
			t.Errorf("%s: VisionExpertMask = %v, want %v", tc.name, got, tc.mask)
		}
	}
}

func TestBuildInputs(t *testing.T) {
	cfg := goldenConfig(t) // 6 image tokens
	text := []int{894, 29901, 1724}
	withImage := BuildInputs(text, true, cfg)
	if want := []int{1, 0, 0, 0, 0, 0, 0, 894, 29901, 1724}; !slices.Equal(withImage.InputIDs, want) {
		t.Errorf("with image: input_ids %v, want %v", withImage.InputIDs, want)
	}
	if want := []int{0, 1, 2, 2, 2, 2, 3, 4, 5, 6}; !slices.Equal(withImage.PositionIDs, want) {
		t.Errorf("with image: position_ids %v, want %v", withImage.PositionIDs, want)
	}
	textOnly := BuildInputs(text, false, cfg)
	if !slices.Equal(textOnly.InputIDs, []int{1, 894, 29901, 1724}) ||
		!slices.Equal(textOnly.TokenTypeIDs, []int{0, 0, 0, 0}) || !slices.Equal(textOnly.PositionIDs, []int{0, 1, 2, 3}) {
		t.Errorf("text only: %+v", textOnly)
	}
	if in := BuildInputs(nil, false, cfg); !slices.Equal(in.InputIDs, []int{1}) {
		t.Errorf("empty prompt: %+v", in)
	}
}

func TestCheckContextLength(t *testing.T) {
	cfg := goldenConfig(t)
	if err := CheckContextLength(2000, 48, cfg); err != nil {
		t.Errorf("2000 + 48 tokens fit 2048: %v", err)
	}
	err := CheckContextLength(2000, 100, cfg)
	if want := "prompt of 2000 tokens + 100 new tokens exceeds max_position_embeddings 2048"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}
