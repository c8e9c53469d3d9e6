package tokenizer

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

// The small model's ids: 0 <unk>, 1 <s>, 2 </s>, 3…258 the bytes, then its normal pieces.
func TestLoadModelSmall(t *testing.T) {
	tok := mustParseModel(t, smallModel())
	const (
		idThe       = 261 // "▁the"
		idA         = 262 // "▁a"
		idSpaces    = 263 // "▁▁"
		idIn        = 265 // "▁in"
		idSpace     = 266 // "▁"
		idByteX     = 3 + 'x'
		idByteSmile = 3 + 0xF0
	)
	for _, c := range []struct {
		text string
		want []int
	}{
		{"", []int{}},
		{"the a", []int{idThe, idA}},    // ▁t, he, ▁the: the highest score first
		{"  in", []int{idSpaces, idIn}}, // ▁▁ is merged before in, then ▁in
		{"x", []int{idSpace, idByteX}},  // x is not a piece: byte fallback
		{"😀", []int{idSpace, idByteSmile, 3 + 0x9F, 3 + 0x98, 3 + 0x80}},
	} {
		if got := tok.Encode(c.text); !equalIDs(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.text, got, c.want)
		}
		if got := tok.Decode(c.want); got != c.text {
			t.Errorf("Decode(%v) = %q, want %q", c.want, got, c.text)
		}
	}
}

// unk, bos and eos come from trainer_spec fields 40…42, the dummy prefix from
// normalizer_spec field 3.
func TestLoadModelFields(t *testing.T) {
	vocab := testVocab(normalPieces("▁", "a", "b", "▁a")...)
	// <s> 0, </s> 1, <unk> 2 instead of LLaMA's <unk> 0, <s> 1, </s> 2.
	vocab[0], vocab[1], vocab[2] = vocab[1], vocab[2], vocab[0]
	trainer := protoMsg(nil).varint(trainerModelType, modelTypeBPE).varint(trainerByteFallback, 1).
		varint(trainerUnkID, 2).varint(trainerBosID, 0).varint(trainerEosID, 1)
	tok := mustParseModel(t, encodeModel(vocab, trainer, llamaNormalizerSpec()))
	if tok.UNK() != 2 || tok.BOS() != 0 || tok.EOS() != 1 {
		t.Errorf("UNK, BOS, EOS = %d, %d, %d, want 2, 0, 1", tok.UNK(), tok.BOS(), tok.EOS())
	}

	noPrefix := protoMsg(nil).varint(normalizerAddDummyPrefix, 0).varint(normalizerRemoveExtraWhitespaces, 0)
	tok = mustParseModel(t, encodeModel(testVocab(normalPieces("▁", "a", "b", "▁a")...), llamaTrainerSpec(), noPrefix))
	if got, want := tok.Encode("a a"), []int{260, 262}; !equalIDs(got, want) {
		t.Errorf("without dummy prefix: Encode(\"a a\") = %v, want %v", got, want)
	}
	if got := tok.Decode(tok.Encode(" a")); got != " a" {
		t.Errorf("without dummy prefix: Decode(Encode(\" a\")) = %q, want \" a\"", got)
	}
}

func TestLoadModelErrors(t *testing.T) {
	real := mustRead(t, goldenModelPath)
	normal := normalPieces("▁", "a", "b", "▁a")
	model := func(edit func([]testPiece) []testPiece) []byte {
		v := testVocab(normal...)
		if edit != nil {
			v = edit(v)
		}
		return encodeModel(v, llamaTrainerSpec(), llamaNormalizerSpec())
	}
	withTrainer := func(trainer protoMsg) []byte {
		return encodeModel(testVocab(normal...), trainer, llamaNormalizerSpec())
	}
	withNormalizer := func(n protoMsg) []byte {
		return encodeModel(testVocab(normal...), llamaTrainerSpec(), n)
	}
	// Fresh messages for each case to add fields to.
	bpe := func() protoMsg {
		return protoMsg(nil).varint(trainerModelType, modelTypeBPE).varint(trainerByteFallback, 1)
	}
	identity := func() protoMsg { return protoMsg(nil).varint(normalizerRemoveExtraWhitespaces, 0) }

	for _, c := range []struct {
		name string
		data []byte
		want []string
	}{
		{"empty file", nil, []string{"no pieces"}},
		{"cut inside the first piece", real[:10], []string{"truncated"}},
		{"cut inside a tag", real[:1], []string{"truncated varint at byte 1"}},
		{"cut inside normalizer_spec", real[:len(real)-3], []string{"truncated"}},
		{"text, not protobuf", []byte("hello world"), []string{"wire type"}},
		{"varint too long", append([]byte{0x08}, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), []string{"varint longer than 10 bytes"}},
		{"field number 0", []byte{0x00, 0x01}, []string{"invalid field number 0"}},
		{"group wire type", []byte{0x0b}, []string{"unsupported wire type 3"}},
		{"piece with wrong wire type", protoMsg(nil).varint(modelPieces, 1), []string{"pieces[0]", "wire type 0, want 2"}},
		{"score with wrong wire type", protoMsg(nil).bytes(modelPieces, protoMsg(nil).bytes(pieceText, []byte("a")).varint(pieceScore, 1)), []string{"pieces[0].score", "want 5"}},
		{"piece without text", protoMsg(nil).bytes(modelPieces, protoMsg(nil).float(pieceScore, 1)), []string{"pieces[0]", "no piece text"}},
		{"no trainer_spec", encodeModel(testVocab(normal...), nil, llamaNormalizerSpec()), []string{"no trainer_spec"}},
		{"unigram", withTrainer(protoMsg(nil).varint(trainerModelType, 1).varint(trainerByteFallback, 1)), []string{"trainer_spec.model_type is UNIGRAM (1)"}},
		{"model_type absent (UNIGRAM)", withTrainer(protoMsg(nil).varint(trainerByteFallback, 1)), []string{"trainer_spec.model_type is UNIGRAM"}},
		{"model_type 7", withTrainer(protoMsg(nil).varint(trainerModelType, 7)), []string{"model_type is unknown (7)"}},
		{"no byte fallback", withTrainer(protoMsg(nil).varint(trainerModelType, modelTypeBPE)), []string{"trainer_spec.byte_fallback is false"}},
		{"whitespace as suffix", withTrainer(bpe().varint(trainerTreatWhitespaceAsSuffix, 1)), []string{"treat_whitespace_as_suffix"}},
		{"bos out of range", withTrainer(bpe().varint(trainerBosID, 99999)), []string{"trainer_spec.bos_id is 99999"}},
		{"eos negative", withTrainer(bpe().varint(trainerEosID, math.MaxUint64)), []string{"trainer_spec.eos_id is -1"}},
		{"bos not a control piece", withTrainer(bpe().varint(trainerBosID, 260)), []string{"bos piece 260 \"a\""}},
		{"unk_id not the UNKNOWN piece", withTrainer(bpe().varint(trainerUnkID, 1)), []string{"trainer_spec.unk_id is 1 but the UNKNOWN piece is 0"}},
		{"unk_id wire type", withTrainer(bpe().float(trainerUnkID, 1)), []string{"trainer_spec.unk_id", "want 0"}},
		{"normalizer_spec absent", encodeModel(testVocab(normal...), llamaTrainerSpec(), nil), []string{"remove_extra_whitespaces is true"}},
		{"remove_extra_whitespaces", withNormalizer(identity().varint(normalizerRemoveExtraWhitespaces, 1)), []string{"normalizer_spec.remove_extra_whitespaces"}},
		{"nfkc charsmap", withNormalizer(identity().bytes(normalizerName, []byte("nmt_nfkc")).bytes(normalizerPrecompiledCharsmap, []byte{1, 2, 3})), []string{"\"nmt_nfkc\" has a precompiled_charsmap"}},
		{"whitespace not escaped", withNormalizer(identity().varint(normalizerEscapeWhitespaces, 0)), []string{"escape_whitespaces is false"}},
		{"user-defined piece", model(func(v []testPiece) []testPiece { return append(v, testPiece{"<image>", 0, typeUserDefined}) }), []string{"\"<image>\" has type USER_DEFINED (4)"}},
		{"unused piece", model(func(v []testPiece) []testPiece { return append(v, testPiece{"zz", 0, typeUnused}) }), []string{"UNUSED (5)"}},
		{"type 9", model(func(v []testPiece) []testPiece { return append(v, testPiece{"zz", 0, 9}) }), []string{"type unknown (9)"}},
		{"byte piece missing", model(func(v []testPiece) []testPiece { return append(v[:3+0x41:3+0x41], v[3+0x42:]...) }), []string{"<0x41> is missing"}},
		{"byte piece misnamed", model(func(v []testPiece) []testPiece { v[3+0x41].piece = "<0x4g>"; return v }), []string{"byte piece 68 \"<0x4g>\" is not of the form <0xNN>"}},
		{"byte piece twice", model(func(v []testPiece) []testPiece { v[3+0x41].piece = "<0x42>"; return v }), []string{"piece 69 \"<0x42>\" repeats piece 68"}},
		{"control piece named like a byte", model(func(v []testPiece) []testPiece { return append(v, testPiece{"<0x41>", 0, typeControl}) }), []string{"piece 263 \"<0x41>\" repeats piece 68"}},
		{"piece twice", model(func(v []testPiece) []testPiece { return append(v, testPiece{"▁a", -9, typeNormal}) }), []string{"piece 263 \"▁a\" repeats piece 262"}},
		{"empty piece", model(func(v []testPiece) []testPiece { return append(v, testPiece{"", -9, typeNormal}) }), []string{"piece 263 is empty"}},
		{"piece not UTF-8", model(func(v []testPiece) []testPiece { return append(v, testPiece{"\xff", -9, typeNormal}) }), []string{"not valid UTF-8"}},
		{"NaN score", model(func(v []testPiece) []testPiece { v[260].score = float32(math.NaN()); return v }), []string{"pieces[260] \"a\" has score NaN"}},
		{"two UNKNOWN pieces", model(func(v []testPiece) []testPiece { return append(v, testPiece{"<unk2>", 0, typeUnknown}) }), []string{"second UNKNOWN"}},
		{"no UNKNOWN piece", model(func(v []testPiece) []testPiece { v[0].typ = typeControl; return v }), []string{"no piece has type UNKNOWN"}},
		{"character that is no piece", model(func(v []testPiece) []testPiece { return append(v, testPiece{"▁z", -9, typeNormal}) }), []string{"pieces[263] \"▁z\" contains \"z\""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseModel(c.data)
			checkOneLineError(t, err, c.want...)
		})
	}
}

// Cut anywhere, the golden model is an error, never a panic or a smaller model.
func TestLoadModelTruncated(t *testing.T) {
	real := mustRead(t, goldenModelPath)
	for _, n := range []int{1, 2, 10, 100, len(real) / 3, len(real) / 2, len(real) - 60, len(real) - 40, len(real) - 3, len(real) - 1} {
		if _, err := parseModel(real[:n]); err == nil {
			t.Errorf("the first %d of %d bytes load without error", n, len(real))
		}
	}
}

func TestLoadModelErrorNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokenizer.model")
	if err := os.WriteFile(path, mustRead(t, goldenModelPath)[:1000], 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadModel(path)
	checkOneLineError(t, err, "tokenizer: "+path+": ", "truncated")
}
