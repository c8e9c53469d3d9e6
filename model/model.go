package model

import "errors"

// Model is a loaded CogVLM: the config, the float32 weights, and the run state of the
// sequence being generated (KV cache and activation buffers, allocated once per sequence
// length and reused). A Model runs one sequence at a time: it is not safe for concurrent
// use.
type Model struct {
	Config  Config
	Weights *Weights
	// ObserveLinear, when set, sees the input of every Linear layer run (LinearObserver).
	ObserveLinear LinearObserver
	// Stop, when set, is asked between the decoder layers of a prefill (which for a long
	// prompt takes long on the CPU): true abandons it with ErrStopped, and the KV cache
	// keeps what it held before the prompt's new tokens.
	Stop func() bool

	dec    *decoderState // nil until the first Prefill
	vision *visionCache  // Generate's last image; nil before one
}

// visionCache is an image's rows from EncodeImage, keyed by its pixel values' content.
type visionCache struct {
	pixels ImageKey
	rows   []float32
}

// ErrStopped is Prefill's (and Generate's) error when Model.Stop asked it to stop.
var ErrStopped = errors.New("stopped")

// Load validates cfg and reads the weights from src (see LoadWeights).
func Load(cfg Config, src TensorSource) (*Model, error) {
	w, err := LoadWeights(cfg, src)
	if err != nil {
		return nil, err
	}
	return &Model{Config: cfg, Weights: w}, nil
}
