//go:build js && wasm

// Command convert is the package converter compiled to WebAssembly (web/convert.wasm),
// for the page that converts a published checkpoint itself (web/convert.js). It is
// model/pkg's Stream — the checks, plan, encoders and manifest of `cogvlm convert` — over
// a checkpoint that JavaScript reads with HTTP Range requests, so the package is byte for
// byte the CLI's.
//
// It is a program of its own, not part of web/cogvlm.wasm: the engine's page does not
// download the converter, the converter does not carry the engine's GPU code, and each
// Web Worker that converts shards in parallel runs one small instance (Go's WebAssembly
// is single-threaded: workers are how conversion uses several cores).
//
// It registers `globalThis.cogvlmConvert`, whose functions return promises:
//
//	open({name, quant?, shardBytes?, chunkBytes?, readFile, size, readRange})
//	        checks the checkpoint and plans the package → {plan: manifest.json without
//	        hashes (text), shardInputBytes: [bytes read per shard], inputBytes}.
//	        readFile(file) → Promise<Uint8Array | null> reads a small file whole (null:
//	        missing); size(file) → Promise<number | null> is a large file's size (null:
//	        missing); readRange(file, offset, length) → Promise<Uint8Array> reads bytes
//	        [offset, offset+length) of it.
//	tokenizer() → {entry, bytes} tokenizer.json and its manifest entry.
//	shard(index, write, progress) writes shard number index through write(Uint8Array)
//	        (a copy: the caller keeps it) and reports progress(inputBytesDone) after each
//	        tensor → its entry {file, size, sha256}.
//	manifest(tokenizerEntry, shardEntries) → manifest.json's bytes (Uint8Array).
//
// Failures reject with an Error whose `code` is bad-input (the checkpoint or a file is not
// what the converter takes), network (a read failed) or internal.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/pkg"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
	"github.com/cogvlm-web/cogvlm-web/wasm/bridge"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

func main() {
	c := &converter{}
	obj, err := safejs.ValueOf(map[string]any{"goVersion": runtime.Version()})
	if err != nil {
		panic(err)
	}
	for name, fn := range map[string]bridge.Func{
		"open":      c.open,
		"tokenizer": c.tokenizer,
		"shard":     c.shard,
		"manifest":  c.manifest,
	} {
		if err := bridge.Export(obj, name, fn); err != nil {
			panic(err)
		}
	}
	if err := safejs.Global().Set("cogvlmConvert", obj); err != nil {
		panic(err)
	}
	if ready, err := safejs.Global().Get("cogvlmConvertReady"); err == nil && ready.Type() == safejs.TypeFunction {
		ready.Invoke(obj)
	}
	select {}
}

type converter struct {
	stream *pkg.Stream
}

func badInput(err error) error { return &bridge.CodedError{Code: "bad-input", Err: err} }

func (c *converter) open(args []safejs.Value) (any, error) {
	if len(args) != 1 {
		return nil, badInput(errors.New("open: want one options object"))
	}
	o := args[0]
	name, err := stringProp(o, "name")
	if err != nil {
		return nil, badInput(err)
	}
	var opts pkg.ConvertOptions
	if q, _ := stringProp(o, "quant"); q != "" {
		opts.Quant = quant.Encoding(q)
	}
	shardBytes, _ := intProp(o, "shardBytes")
	chunkBytes, _ := intProp(o, "chunkBytes")
	opts.ShardBytes = int64(shardBytes)
	folder := &hubFolder{name: name}
	for _, f := range []struct {
		key string
		dst *safejs.Value
	}{{"readFile", &folder.readFile}, {"size", &folder.size}, {"readRange", &folder.readRange}} {
		if *f.dst, err = o.Get(f.key); err != nil || f.dst.Type() != safejs.TypeFunction {
			return nil, badInput(fmt.Errorf("open: %s must be a function", f.key))
		}
	}
	s, err := pkg.OpenStream(folder, opts, int64(chunkBytes))
	if err != nil {
		return nil, codeOf(err)
	}
	if c.stream != nil {
		c.stream.Close()
	}
	c.stream = s
	plan, err := json.Marshal(s.Plan())
	if err != nil {
		return nil, err
	}
	var inputs []any
	var total int64
	for i := range s.Plan().Shards {
		n := s.ShardInputBytes(i)
		inputs = append(inputs, float64(n))
		total += n
	}
	return map[string]any{"plan": string(plan), "shardInputBytes": inputs, "inputBytes": float64(total)}, nil
}

func (c *converter) tokenizer(args []safejs.Value) (any, error) {
	if c.stream == nil {
		return nil, badInput(errors.New("tokenizer: open first"))
	}
	var b bytesWriter
	entry, err := c.stream.WriteTokenizer(&b)
	if err != nil {
		return nil, err
	}
	u8, err := gpu.BytesToJS(b)
	if err != nil {
		return nil, err
	}
	return map[string]any{"entry": entryJS(entry), "bytes": u8}, nil
}

type bytesWriter []byte

func (b *bytesWriter) Write(p []byte) (int, error) {
	*b = append(*b, p...)
	return len(p), nil
}

func (c *converter) shard(args []safejs.Value) (any, error) {
	if c.stream == nil {
		return nil, badInput(errors.New("shard: open first"))
	}
	if len(args) != 3 {
		return nil, badInput(errors.New("shard: want (index, write, progress)"))
	}
	index, err := args[0].Int()
	if err != nil {
		return nil, badInput(err)
	}
	write, progress := args[1], args[2]
	// Writes go to JavaScript in pieces of up to 1 MiB: the zero padding between parts
	// comes in small writes.
	out := bufio.NewWriterSize(jsWriter{write}, 1<<20)
	entry, err := c.stream.WriteShard(context.Background(), index, out, func(done int64) {
		progress.Invoke(float64(done))
	})
	if err == nil {
		err = out.Flush()
	}
	if err != nil {
		return nil, codeOf(err)
	}
	return entryJS(entry), nil
}

func (c *converter) manifest(args []safejs.Value) (any, error) {
	if c.stream == nil {
		return nil, badInput(errors.New("manifest: open first"))
	}
	if len(args) != 2 {
		return nil, badInput(errors.New("manifest: want (tokenizerEntry, shardEntries)"))
	}
	tok, err := entryGo(args[0])
	if err != nil {
		return nil, badInput(err)
	}
	n, err := args[1].Length()
	if err != nil {
		return nil, badInput(err)
	}
	var shards []format.FileEntry
	for i := 0; i < n; i++ {
		v, _ := args[1].Index(i)
		e, err := entryGo(v)
		if err != nil {
			return nil, badInput(fmt.Errorf("shard entry %d: %v", i, err))
		}
		shards = append(shards, e)
	}
	m, err := c.stream.Manifest(tok, shards)
	if err != nil {
		return nil, badInput(err)
	}
	return gpu.BytesToJS(m)
}

// jsWriter hands each write to a JavaScript function as a new Uint8Array.
type jsWriter struct{ write safejs.Value }

func (w jsWriter) Write(p []byte) (int, error) {
	u8, err := gpu.BytesToJS(p)
	if err != nil {
		return 0, err
	}
	if _, err := w.write.Invoke(u8); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hubFolder is a checkpoint folder that JavaScript reads (web/convert.js: the hub's
// resolve URLs with Range requests).
type hubFolder struct {
	name                      string
	readFile, size, readRange safejs.Value
}

func (h *hubFolder) Name() string            { return h.name }
func (h *hubFolder) Path(file string) string { return h.name + "/" + file }

func (h *hubFolder) ReadFile(file string) ([]byte, error) {
	v, err := await(h.readFile, file)
	if err != nil {
		return nil, networkError{err}
	}
	if v.IsNull() || v.IsUndefined() {
		return nil, &fs.PathError{Op: "read", Path: h.Path(file), Err: fs.ErrNotExist}
	}
	return fromUint8Array(v)
}

func (h *hubFolder) Checkpoint() (*safetensors.Checkpoint, error) {
	return safetensors.OpenCheckpointWith(h.name, func(file string) (*safetensors.File, error) {
		v, err := await(h.size, file)
		if err != nil {
			return nil, networkError{err}
		}
		if v.IsNull() || v.IsUndefined() {
			return nil, &fs.PathError{Op: "open", Path: h.Path(file), Err: fs.ErrNotExist}
		}
		size, err := v.Float()
		if err != nil {
			return nil, err
		}
		return safetensors.Parse(rangeReader{h, file}, int64(size), h.Path(file))
	}, h.ReadFile)
}

// rangeReader reads a file of the folder with one readRange call per ReadAt.
type rangeReader struct {
	h    *hubFolder
	file string
}

func (r rangeReader) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	v, err := await(r.h.readRange, r.file, float64(off), len(p))
	if err != nil {
		return 0, networkError{err}
	}
	n, err := safejs.CopyBytesToGo(p, v)
	if err != nil {
		return 0, err
	}
	if n != len(p) {
		return n, io.ErrUnexpectedEOF
	}
	return n, nil
}

// networkError is a read that JavaScript could not do: a network failure, or an answer
// that was not the bytes asked for (its message says which).
type networkError struct{ err error }

func (e networkError) Error() string { return e.err.Error() }
func (e networkError) Unwrap() error { return e.err }

// codeOf gives a conversion error its API code: network when a read failed, else
// bad-input (the checkpoint is not one the converter takes).
func codeOf(err error) error {
	var ne networkError
	if errors.As(err, &ne) {
		return &bridge.CodedError{Code: "network", Err: err}
	}
	return badInput(err)
}

// await calls a JavaScript function that returns a promise and waits for its value.
func await(fn safejs.Value, args ...any) (safejs.Value, error) {
	p, err := fn.Invoke(args...)
	if err != nil {
		return safejs.Undefined(), err
	}
	return gpu.Await(p)
}

func fromUint8Array(v safejs.Value) ([]byte, error) {
	n, err := v.Length()
	if err != nil {
		return nil, err
	}
	p := make([]byte, n)
	if _, err := safejs.CopyBytesToGo(p, v); err != nil {
		return nil, err
	}
	return p, nil
}

func entryJS(e format.FileEntry) map[string]any {
	return map[string]any{"file": e.File, "size": float64(e.Size), "sha256": e.SHA256}
}

func entryGo(v safejs.Value) (format.FileEntry, error) {
	file, err := stringProp(v, "file")
	if err != nil {
		return format.FileEntry{}, err
	}
	size, err := intProp(v, "size")
	if err != nil {
		return format.FileEntry{}, err
	}
	sha, err := stringProp(v, "sha256")
	if err != nil {
		return format.FileEntry{}, err
	}
	return format.FileEntry{File: file, Size: int64(size), SHA256: sha}, nil
}

func stringProp(v safejs.Value, key string) (string, error) {
	p, err := v.Get(key)
	if err != nil || p.Type() != safejs.TypeString {
		return "", fmt.Errorf("%s must be a string", key)
	}
	return p.String()
}

func intProp(v safejs.Value, key string) (int, error) {
	p, err := v.Get(key)
	if err != nil || p.Type() != safejs.TypeNumber {
		return 0, fmt.Errorf("%s must be a number", key)
	}
	return p.Int()
}
