package grounding

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// casesFile is the table shared with web/grounding.js (internal/e2e runs it in Chromium).
const casesFile = "testdata/cases.json"

type wantSpan struct {
	Text  string   `json:"text"`
	Label string   `json:"label"`
	Boxes [][4]int `json:"boxes"`
}

type testCase struct {
	Name   string     `json:"name"`
	Text   string     `json:"text"`
	Spans  []wantSpan `json:"spans"`
	Width  int        `json:"width"`
	Height int        `json:"height"`
	Pixels []PixelBox `json:"pixels"`
}

func readCases(t *testing.T) []testCase {
	t.Helper()
	data, err := os.ReadFile(casesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct{ Cases []testCase }
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatalf("%s: %v", casesFile, err)
	}
	if len(f.Cases) < 20 {
		t.Fatalf("%s: %d cases", casesFile, len(f.Cases))
	}
	return f.Cases
}

// describe turns spans into the table's shape.
func describe(text string, spans []Span) []wantSpan {
	out := []wantSpan{}
	for _, s := range spans {
		w := wantSpan{Text: text[s.Start:s.End], Label: s.Label, Boxes: [][4]int{}}
		for _, b := range s.Boxes {
			w.Boxes = append(w.Boxes, [4]int{b.X0, b.Y0, b.X1, b.Y1})
		}
		out = append(out, w)
	}
	return out
}

func TestParse(t *testing.T) {
	for _, c := range readCases(t) {
		t.Run(c.Name, func(t *testing.T) {
			spans := Parse(c.Text)
			if got := describe(c.Text, spans); !reflect.DeepEqual(got, c.Spans) {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", c.Text, got, c.Spans)
			}
			if c.Width > 0 {
				if got := Pixels(spans, c.Width, c.Height); !reflect.DeepEqual(got, c.Pixels) {
					t.Errorf("Pixels(%d×%d)\n got %+v\nwant %+v", c.Width, c.Height, got, c.Pixels)
				}
			}
		})
	}
}

// TestParseStreams parses every prefix of every case, as the page does after each token:
// the groups of a prefix are the first groups of the whole text (a group counts once
// closed, and never changes afterwards).
func TestParseStreams(t *testing.T) {
	for _, c := range readCases(t) {
		final := describe(c.Text, Parse(c.Text))
		for n := range len(c.Text) + 1 {
			got := describe(c.Text, Parse(c.Text[:n]))
			if len(got) > len(final) || !reflect.DeepEqual(got, final[:len(got)]) {
				t.Fatalf("%s: prefix %q gives %+v, not a prefix of %+v", c.Name, c.Text[:n], got, final)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("a dog[[100,200,300,400;500,600,700,800]]")
	f.Add("[[[1,2]]]]")
	f.Fuzz(func(t *testing.T, text string) {
		for _, s := range Parse(text) {
			if s.Start < 0 || s.End > len(text) || s.Start >= s.End || len(s.Boxes) == 0 {
				t.Fatalf("span %+v of %q", s, text)
			}
			for _, b := range s.Boxes {
				if b.X0 < 0 || b.X1 > 999 || b.X0 > b.X1 || b.Y0 < 0 || b.Y1 > 999 || b.Y0 > b.Y1 {
					t.Fatalf("box %+v of %q", b, text)
				}
			}
		}
	})
}
