// Package grounding reads the boxes of CogVLM's grounding answers: cogvlm-grounding-*
// checkpoints answer with [[x0,y0,x1,y1]] after a phrase, the top-left and bottom-right
// corners in thousandths of the image (three digits, 000–999, origin top left, y down),
// several boxes for one phrase separated by ";" in one pair of double brackets (THUDM/CogVLM's
// README, "Format of coordination", and utils/utils/grounding_parser.py).
//
// The page has the same parser in JavaScript (web/grounding.js); both are tested on
// testdata/cases.json.
package grounding

import "strings"

// Box is one box in thousandths of the image, as the model writes it.
type Box struct {
	X0, Y0, X1, Y1 int
}

// Span is one [[...]] group of an answer: Text[Start:End] is its text, brackets included.
type Span struct {
	Start, End int    // byte offsets in the answer
	Label      string // the phrase before it (see Parse)
	Boxes      []Box
}

// PixelBox is a box in the pixels of the original image, with its phrase: the "boxes"
// of `cogvlm generate --json` and of the JS API's generate result.
type PixelBox struct {
	X0    float64 `json:"x0"`
	Y0    float64 `json:"y0"`
	X1    float64 `json:"x1"`
	Y1    float64 `json:"y1"`
	Label string  `json:"label"`
}

// Parse finds the box groups of an answer, left to right. A group is "[[" then one or
// more boxes separated by ";" then "]]"; a box is four numbers of exactly three digits
// separated by "," (spaces around a number are allowed) with x0 ≤ x1 and y0 ≤ y1.
// Anything else — two numbers, four digits, reversed corners, an unclosed bracket — is
// text, and so is a group with one bad box in it.
//
// The result for a prefix of a text is a prefix of the result for the text, except for
// a group still open at the end, which is text until its "]]" arrives: an answer can be
// parsed again after every streamed token.
//
// A group's label is the phrase before it: back to the previous group or to the nearest
// sentence or clause mark (. ! ? , ; : or a line break), then from the clause's last
// determiner ("a", "the", "two", …) if it has one, else without a leading "and"/"or";
// words joined by single spaces. Upstream labels with spaCy's nearest noun chunk, which
// this approximates without a language model.
func Parse(text string) []Span {
	var spans []Span
	labelFrom := 0 // where the next label may start: after the previous group
	for i := 0; i+1 < len(text); {
		if text[i] != '[' || text[i+1] != '[' {
			i++
			continue
		}
		boxes, end, ok := parseGroup(text, i+2)
		if !ok {
			i++
			continue
		}
		spans = append(spans, Span{Start: i, End: end, Label: label(text[labelFrom:i]), Boxes: boxes})
		labelFrom, i = end, end
	}
	return spans
}

// parseGroup reads "box(;box)*]]" at text[i:] and returns the offset after "]]".
func parseGroup(text string, i int) ([]Box, int, bool) {
	var boxes []Box
	for {
		var v [4]int
		for k := range v {
			if k > 0 {
				if i >= len(text) || text[i] != ',' {
					return nil, 0, false
				}
				i++
			}
			n, next, ok := number(text, i)
			if !ok {
				return nil, 0, false
			}
			v[k], i = n, next
		}
		b := Box{v[0], v[1], v[2], v[3]}
		if b.X1 < b.X0 || b.Y1 < b.Y0 {
			return nil, 0, false
		}
		boxes = append(boxes, b)
		switch {
		case strings.HasPrefix(text[i:], "]]"):
			return boxes, i + 2, true
		case strings.HasPrefix(text[i:], ";"):
			i++
		default:
			return nil, 0, false
		}
	}
}

// number reads optional spaces, exactly three ASCII digits, optional spaces.
func number(text string, i int) (int, int, bool) {
	i = skipSpaces(text, i)
	if i+3 > len(text) {
		return 0, 0, false
	}
	n := 0
	for _, c := range []byte(text[i : i+3]) {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
		n = n*10 + int(c-'0')
	}
	i += 3
	if i < len(text) && text[i] >= '0' && text[i] <= '9' {
		return 0, 0, false // four digits
	}
	return n, skipSpaces(text, i), true
}

func skipSpaces(text string, i int) int {
	for i < len(text) && text[i] == ' ' {
		i++
	}
	return i
}

// label is the phrase at the end of before (see Parse).
func label(before string) string {
	if k := strings.LastIndexAny(before, ".!?,;:\n"); k >= 0 {
		before = before[k+1:]
	}
	words := strings.Fields(before)
	from := 0
	for i, w := range words {
		if determiners[strings.ToLower(w)] {
			from = i
		}
	}
	if from == 0 && len(words) > 1 && (strings.EqualFold(words[0], "and") || strings.EqualFold(words[0], "or")) {
		from = 1
	}
	return strings.Join(words[from:], " ")
}

// determiners start a noun phrase: a label starts at the last one of its clause, as the
// nearest noun chunk of upstream's parser does ("a man wearing a hat" → "a hat").
var determiners = map[string]bool{
	"a": true, "an": true, "the": true, "this": true, "that": true, "these": true, "those": true,
	"my": true, "your": true, "his": true, "her": true, "its": true, "our": true, "their": true,
	"some": true, "two": true, "three": true, "four": true, "five": true, "six": true,
	"seven": true, "eight": true, "nine": true, "ten": true,
}

// Pixels maps the boxes of spans to an image of width × height pixels. The model saw the
// image resized to a square (490×490, anisotropically), so x scales with the width and y
// with the height: x = x0/1000 · width.
func Pixels(spans []Span, width, height int) []PixelBox {
	boxes := []PixelBox{} // [] rather than null in JSON
	for _, s := range spans {
		for _, b := range s.Boxes {
			boxes = append(boxes, PixelBox{
				X0: scale(b.X0, width), Y0: scale(b.Y0, height),
				X1: scale(b.X1, width), Y1: scale(b.Y1, height),
				Label: s.Label,
			})
		}
	}
	return boxes
}

func scale(v, size int) float64 { return float64(v*size) / 1000 }
