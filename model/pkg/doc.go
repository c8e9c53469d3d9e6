// Package pkg makes and reads the converted model package of model/format (FORMAT.md
// there): the converter from a Hugging Face CogVLM checkpoint (Convert, and Stream for the
// browser's converter), GPTQ calibration of its q4 matrices (ConvertOptions.Calibrate),
// the reader that serves a package to the CPU reference (Open; weight matrices as stored),
// and the accuracy comparison of a package with its checkpoint (Accuracy). Native tools
// only: the browser's engine imports model/format, never this package. The weight
// encodings live in model/quant.
package pkg
