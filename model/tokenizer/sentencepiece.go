package tokenizer

import (
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"unicode/utf8"
)

// The fields of sentencepiece_model.proto this package reads. Others (training options,
// self-test data) are skipped.
const (
	modelPieces         = 1 // ModelProto.pieces: repeated SentencePiece
	modelTrainerSpec    = 2 // ModelProto.trainer_spec
	modelNormalizerSpec = 3 // ModelProto.normalizer_spec

	pieceText  = 1 // SentencePiece.piece
	pieceScore = 2 // SentencePiece.score (float)
	pieceType  = 3 // SentencePiece.type (enum, default NORMAL)

	trainerModelType               = 3  // TrainerSpec.model_type (enum, default UNIGRAM)
	trainerTreatWhitespaceAsSuffix = 24 // TrainerSpec.treat_whitespace_as_suffix
	trainerByteFallback            = 35 // TrainerSpec.byte_fallback
	trainerUnkID                   = 40 // TrainerSpec.unk_id (default 0)
	trainerBosID                   = 41 // TrainerSpec.bos_id (default 1)
	trainerEosID                   = 42 // TrainerSpec.eos_id (default 2)

	normalizerName                   = 1 // NormalizerSpec.name
	normalizerPrecompiledCharsmap    = 2 // NormalizerSpec.precompiled_charsmap
	normalizerAddDummyPrefix         = 3 // NormalizerSpec.add_dummy_prefix (default true)
	normalizerRemoveExtraWhitespaces = 4 // NormalizerSpec.remove_extra_whitespaces (default true)
	normalizerEscapeWhitespaces      = 5 // NormalizerSpec.escape_whitespaces (default true)
)

// SentencePiece.Type values.
const (
	typeNormal      = 1
	typeUnknown     = 2
	typeControl     = 3
	typeUserDefined = 4
	typeUnused      = 5
	typeByte        = 6
)

var typeNames = map[uint64]string{typeNormal: "NORMAL", typeUnknown: "UNKNOWN", typeControl: "CONTROL",
	typeUserDefined: "USER_DEFINED", typeUnused: "UNUSED", typeByte: "BYTE"}

// TrainerSpec.ModelType values.
var modelTypeNames = map[uint64]string{1: "UNIGRAM", 2: "BPE", 3: "WORD", 4: "CHAR"}

const modelTypeBPE = 2

// spModel is the part of a SentencePiece ModelProto that encoding and decoding use,
// with the proto2 defaults for absent fields.
type spModel struct {
	pieces []string
	scores []float32
	types  []uint64

	modelType                             uint64
	byteFallback, whitespaceAsSuffix      bool
	unkID, bosID, eosID                   int64
	addDummyPrefix, removeExtraWhitespace bool
	escapeWhitespaces                     bool
	charsmap                              []byte
	normalizer                            string
}

// LoadModel reads a SentencePiece model protobuf (tokenizer.model) of a BPE model with
// byte fallback and the identity normalizer, as LLaMA and Vicuna ship it.
func LoadModel(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	return ParseModel(data, path)
}

// ParseModel builds a Tokenizer from the bytes of a tokenizer.model (see LoadModel); path
// names it in messages.
func ParseModel(data []byte, path string) (*Tokenizer, error) {
	t, err := parseModel(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// parseModel builds a Tokenizer from the bytes of a tokenizer.model.
func parseModel(data []byte) (*Tokenizer, error) {
	m, err := readModelProto(data)
	if err != nil {
		return nil, err
	}
	// Everything below is what SentencePiece's BPE encoder would do differently from
	// ours if set otherwise: refuse rather than tokenize differently.
	switch {
	case m.modelType != modelTypeBPE:
		name := modelTypeNames[m.modelType]
		if name == "" {
			name = "unknown"
		}
		return nil, fmt.Errorf("trainer_spec.model_type is %s (%d); only BPE (2) is supported", name, m.modelType)
	case !m.byteFallback:
		return nil, fmt.Errorf("trainer_spec.byte_fallback is false; only byte-fallback models are supported")
	case m.whitespaceAsSuffix:
		return nil, fmt.Errorf("trainer_spec.treat_whitespace_as_suffix is true; only prefix whitespace is supported")
	case len(m.charsmap) > 0:
		return nil, fmt.Errorf("normalizer_spec %q has a precompiled_charsmap; only the identity normalizer is supported", m.normalizer)
	case m.removeExtraWhitespace:
		return nil, fmt.Errorf("normalizer_spec.remove_extra_whitespaces is true (the default when absent); only false is supported")
	case !m.escapeWhitespaces:
		return nil, fmt.Errorf("normalizer_spec.escape_whitespaces is false; only true is supported")
	}

	kinds := make([]pieceKind, len(m.pieces))
	unk := -1
	for id, typ := range m.types {
		switch typ {
		case typeNormal:
			kinds[id] = kindNormal
			if math.IsNaN(float64(m.scores[id])) {
				return nil, fmt.Errorf("pieces[%d] %q has score NaN", id, m.pieces[id])
			}
		case typeByte:
			kinds[id] = kindByte
		case typeControl:
			kinds[id] = kindControl
		case typeUnknown:
			if unk >= 0 {
				return nil, fmt.Errorf("pieces[%d] %q is a second UNKNOWN piece after %d", id, m.pieces[id], unk)
			}
			kinds[id], unk = kindUnknown, id
		default:
			name := typeNames[typ]
			if name == "" {
				name = "unknown"
			}
			return nil, fmt.Errorf("pieces[%d] %q has type %s (%d); only NORMAL, UNKNOWN, CONTROL and BYTE are supported", id, m.pieces[id], name, typ)
		}
	}
	switch {
	case unk < 0:
		return nil, fmt.Errorf("no piece has type UNKNOWN")
	case unk != int(m.unkID):
		return nil, fmt.Errorf("trainer_spec.unk_id is %d but the UNKNOWN piece is %d", m.unkID, unk)
	}
	for _, s := range []struct {
		name string
		id   int64
	}{{"bos_id", m.bosID}, {"eos_id", m.eosID}} {
		if s.id < 0 || s.id >= int64(len(m.pieces)) {
			return nil, fmt.Errorf("trainer_spec.%s is %d, outside the %d pieces", s.name, s.id, len(m.pieces))
		}
	}
	t, err := newTokenizer(m.pieces, kinds, unk, int(m.bosID), int(m.eosID), m.addDummyPrefix)
	if err != nil {
		return nil, err
	}
	if err := t.deriveMerges(m.scores); err != nil {
		return nil, err
	}
	return t, nil
}

// deriveMerges builds the merge table of a SentencePiece BPE model, which has no merge
// list: SentencePiece merges the adjacent pair whose concatenation is a piece with the
// highest score, leftmost first on ties. So every split of a normal piece into two
// normal pieces is a merge, ranked by the score of the piece (equal scores, equal ranks).
func (t *Tokenizer) deriveMerges(scores []float32) error {
	var normal []int32
	for id, k := range t.kinds {
		if k == kindNormal {
			normal = append(normal, int32(id))
		}
	}
	sort.SliceStable(normal, func(i, j int) bool { return scores[normal[i]] > scores[normal[j]] })
	t.merges = make(map[uint64]mergeRule, 2*len(normal)) // LLaMA: 61249 merges for 31741 pieces
	rank := int32(-1)
	for i, id := range normal {
		if i == 0 || scores[id] != scores[normal[i-1]] {
			rank++
		}
		p := t.pieces[id]
		for k := 0; k < len(p); {
			_, size := utf8.DecodeRuneInString(p[k:])
			// A character that is no piece of its own would be an unknown symbol that
			// SentencePiece still merges into this piece, and we would not.
			if _, ok := t.normalIDs[p[k:k+size]]; !ok {
				return fmt.Errorf("pieces[%d] %q contains %q, which is not a piece of its own; such vocabularies are not supported", id, p, p[k:k+size])
			}
			k += size
			if k == len(p) {
				break
			}
			left, okL := t.normalIDs[p[:k]]
			right, okR := t.normalIDs[p[k:]]
			if okL && okR {
				t.merges[pairKey(left, right)] = mergeRule{rank: rank, result: id}
			}
		}
	}
	return nil
}

// readModelProto reads the fields of a ModelProto this package uses.
func readModelProto(data []byte) (*spModel, error) {
	m := &spModel{
		modelType: 1, unkID: 0, bosID: 1, eosID: 2,
		addDummyPrefix: true, removeExtraWhitespace: true, escapeWhitespaces: true,
	}
	r := &protoReader{buf: data}
	sawTrainer := false
	for {
		f, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		switch f.num {
		case modelPieces:
			if err := m.readPiece(f); err != nil {
				return nil, err
			}
		case modelTrainerSpec:
			if err := f.expect("trainer_spec", wireBytes); err != nil {
				return nil, err
			}
			if err := m.readTrainerSpec(f.message()); err != nil {
				return nil, err
			}
			sawTrainer = true
		case modelNormalizerSpec:
			if err := f.expect("normalizer_spec", wireBytes); err != nil {
				return nil, err
			}
			if err := m.readNormalizerSpec(f.message()); err != nil {
				return nil, err
			}
		}
	}
	if len(m.pieces) == 0 {
		return nil, fmt.Errorf("no pieces: not a SentencePiece model")
	}
	if !sawTrainer {
		// Without it the model type would default to UNIGRAM; say what is really wrong.
		return nil, fmt.Errorf("no trainer_spec: not a complete SentencePiece model")
	}
	return m, nil
}

func (m *spModel) readPiece(pf protoField) error {
	name := fmt.Sprintf("pieces[%d]", len(m.pieces))
	if err := pf.expect(name, wireBytes); err != nil {
		return err
	}
	var (
		text     string
		score    float32
		typ      uint64 = typeNormal
		sawPiece bool
	)
	r := pf.message()
	for {
		f, err := r.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		switch f.num {
		case pieceText:
			if err := f.expect(name+".piece", wireBytes); err != nil {
				return err
			}
			text, sawPiece = string(f.bytes), true
		case pieceScore:
			if err := f.expect(name+".score", wireFixed32); err != nil {
				return err
			}
			score = math.Float32frombits(f.bits32)
		case pieceType:
			if err := f.expect(name+".type", wireVarint); err != nil {
				return err
			}
			typ = f.varint
		}
	}
	if !sawPiece {
		return fmt.Errorf("%s at byte %d has no piece text", name, pf.offset)
	}
	m.pieces = append(m.pieces, text)
	m.scores = append(m.scores, score)
	m.types = append(m.types, typ)
	return nil
}

func (m *spModel) readTrainerSpec(r *protoReader) error {
	for {
		f, err := r.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("trainer_spec: %w", err)
		}
		var (
			dst  *int64
			name string
		)
		switch f.num {
		case trainerModelType:
			if err := f.expect("trainer_spec.model_type", wireVarint); err != nil {
				return err
			}
			m.modelType = f.varint
		case trainerByteFallback:
			if err := f.expect("trainer_spec.byte_fallback", wireVarint); err != nil {
				return err
			}
			m.byteFallback = f.varint != 0
		case trainerTreatWhitespaceAsSuffix:
			if err := f.expect("trainer_spec.treat_whitespace_as_suffix", wireVarint); err != nil {
				return err
			}
			m.whitespaceAsSuffix = f.varint != 0
		case trainerUnkID:
			dst, name = &m.unkID, "trainer_spec.unk_id"
		case trainerBosID:
			dst, name = &m.bosID, "trainer_spec.bos_id"
		case trainerEosID:
			dst, name = &m.eosID, "trainer_spec.eos_id"
		}
		if dst != nil {
			if err := f.expect(name, wireVarint); err != nil {
				return err
			}
			*dst = int64(int32(f.varint)) // int32 fields: negative values are 10-byte varints
		}
	}
}

func (m *spModel) readNormalizerSpec(r *protoReader) error {
	for {
		f, err := r.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("normalizer_spec: %w", err)
		}
		var (
			dst  *bool
			name string
		)
		switch f.num {
		case normalizerName:
			if err := f.expect("normalizer_spec.name", wireBytes); err != nil {
				return err
			}
			m.normalizer = string(f.bytes)
		case normalizerPrecompiledCharsmap:
			if err := f.expect("normalizer_spec.precompiled_charsmap", wireBytes); err != nil {
				return err
			}
			m.charsmap = f.bytes
		case normalizerAddDummyPrefix:
			dst, name = &m.addDummyPrefix, "normalizer_spec.add_dummy_prefix"
		case normalizerRemoveExtraWhitespaces:
			dst, name = &m.removeExtraWhitespace, "normalizer_spec.remove_extra_whitespaces"
		case normalizerEscapeWhitespaces:
			dst, name = &m.escapeWhitespaces, "normalizer_spec.escape_whitespaces"
		}
		if dst != nil {
			if err := f.expect(name, wireVarint); err != nil {
				return err
			}
			*dst = f.varint != 0
		}
	}
}
