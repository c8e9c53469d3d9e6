package model

// LinearObserver sees the input of a Linear layer each time the model runs one: weight is
// the Hugging Face name of the layer's [out, in] weight, x its input rows [rows, k] (k the
// weight's in dimension), a view of the model's buffers that is valid during the call
// only. A fused query_key_value (three MatMuls over one input) is seen once. A decoder
// layer's experts are seen once per run of rows (ExpertRuns), each with its own weight's
// name, so one expert's rows never reach the other's weight. The patch-embedding
// convolution (as its [D, C·P·P] matmul over Patches) and lm_head (on the one row it
// runs on) are seen too.
//
// Calibration (activation-aware quantization in pkg.Convert) sets Model.ObserveLinear;
// nil, the default, costs one comparison per Linear and leaves the numerics unchanged.
type LinearObserver func(weight string, x []float32, rows, k int)

// see reports x [rows, k] as the input of the weight named name; a nil observer does
// nothing.
func (o LinearObserver) see(name string, x []float32, rows, k int) {
	if o != nil {
		o(name, x[:rows*k], rows, k)
	}
}

// layerNames are decoder layer l's tensor names for the observer; without one, none (so
// that a run without an observer builds no names).
func (o LinearObserver) layerNames(l int) LayerNames {
	if o == nil {
		return LayerNames{}
	}
	return LayerTensorNames(l)
}

// visionLayerNames are vision layer l's tensor names for the observer; without one, none.
func (o LinearObserver) visionLayerNames(l int) VisionLayerNames {
	if o == nil {
		return VisionLayerNames{}
	}
	return VisionLayerTensorNames(l)
}
