package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
)

// Checkpoint file names of a Hugging Face model folder.
const (
	SingleFileName = "model.safetensors"
	IndexFileName  = "model.safetensors.index.json"
)

// Checkpoint is the weights of a Hugging Face model folder: either one model.safetensors
// or the shards that model.safetensors.index.json lists. Tensor names are unique across
// shards, so callers never see the sharding.
type Checkpoint struct {
	dir    string
	shards []*File
	owner  map[string]*File
	names  []string
}

// indexFile is model.safetensors.index.json. metadata.total_size is not checked: writers
// disagree on whether it counts shared or dropped tensors, and the shards themselves are
// validated tensor by tensor.
type indexFile struct {
	WeightMap map[string]string `json:"weight_map"`
}

// OpenCheckpoint opens the safetensors weights in dir. Like transformers, it takes
// model.safetensors when present and the sharded index otherwise.
func OpenCheckpoint(dir string) (*Checkpoint, error) {
	return OpenCheckpointWith(dir, func(name string) (*File, error) {
		return Open(filepath.Join(dir, name))
	}, func(name string) ([]byte, error) {
		return os.ReadFile(filepath.Join(dir, name))
	})
}

// OpenCheckpointWith is OpenCheckpoint over any storage (the browser reads the hub's
// files with HTTP Range requests): open parses the header of the named safetensors file of
// the folder (with Open or Parse), readFile reads the index whole; both report a missing
// file with an error wrapping fs.ErrNotExist. dir names the folder in messages.
func OpenCheckpointWith(dir string, open func(name string) (*File, error), readFile func(name string) ([]byte, error)) (*Checkpoint, error) {
	f, err := open(SingleFileName)
	if err == nil {
		c := &Checkpoint{dir: dir, shards: []*File{f}, owner: map[string]*File{}, names: f.Names()}
		for _, name := range c.names {
			c.owner[name] = f
		}
		return c, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	indexPath := filepath.Join(dir, IndexFileName)
	data, err := readFile(IndexFileName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: no %s or %s", dir, SingleFileName, IndexFileName)
	}
	if err != nil {
		return nil, err
	}
	return openSharded(dir, indexPath, data, open)
}

func openSharded(dir, indexPath string, data []byte, open func(name string) (*File, error)) (_ *Checkpoint, err error) {
	var idx indexFile
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("%s: bad JSON: %v", indexPath, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: weight_map is missing or empty", indexPath)
	}
	c := &Checkpoint{dir: dir, owner: map[string]*File{}}
	defer func() { // close the shards opened before a failure
		if err != nil {
			c.Close()
		}
	}()
	// Open every shard the map names, once each, in a stable order.
	shardNames := map[string]bool{}
	for _, shard := range idx.WeightMap {
		shardNames[shard] = true
	}
	for _, shard := range slices.Sorted(maps.Keys(shardNames)) {
		// Shards are siblings of the index; a path elsewhere is a broken or hostile index.
		if !filepath.IsLocal(shard) || filepath.Base(shard) != shard {
			return nil, fmt.Errorf("%s: weight_map names shard %q, which is not a file name in %s", indexPath, shard, dir)
		}
		f, err := open(shard)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: weight_map names shard %q, which does not exist", indexPath, shard)
		}
		if err != nil {
			return nil, err
		}
		c.shards = append(c.shards, f)
	}
	// Every tensor of every shard must be mapped to that shard, and only there.
	for _, f := range c.shards {
		shard := path.Base(filepath.ToSlash(f.Path()))
		for _, name := range f.Names() {
			if prev, dup := c.owner[name]; dup {
				return nil, fmt.Errorf("%s: tensor %q is in two shards, %s and %s", indexPath, name, filepath.Base(prev.Path()), shard)
			}
			if mapped, ok := idx.WeightMap[name]; !ok {
				return nil, fmt.Errorf("%s: tensor %q of shard %s is missing from weight_map", indexPath, name, shard)
			} else if mapped != shard {
				return nil, fmt.Errorf("%s: tensor %q is in shard %s but weight_map names %s", indexPath, name, shard, mapped)
			}
			c.owner[name] = f
		}
	}
	for _, name := range slices.Sorted(maps.Keys(idx.WeightMap)) {
		if _, ok := c.owner[name]; !ok {
			return nil, fmt.Errorf("%s: weight_map puts tensor %q in shard %s, which does not hold it", indexPath, name, idx.WeightMap[name])
		}
	}
	c.names = slices.Sorted(maps.Keys(c.owner))
	return c, nil
}

// Dir is the folder given to OpenCheckpoint.
func (c *Checkpoint) Dir() string { return c.dir }

// Names lists every tensor name of the checkpoint, sorted.
func (c *Checkpoint) Names() []string { return slices.Clone(c.names) }

// Shape is the named tensor's shape.
func (c *Checkpoint) Shape(name string) ([]int, bool) {
	f, ok := c.owner[name]
	if !ok {
		return nil, false
	}
	return f.Shape(name)
}

// Info describes the named tensor and gives the path of the shard holding it.
func (c *Checkpoint) Info(name string) (TensorInfo, string, bool) {
	f, ok := c.owner[name]
	if !ok {
		return TensorInfo{}, "", false
	}
	t, _ := f.Info(name)
	return t, f.Path(), true
}

// ReadFloat32 reads the named BF16, F16 or F32 tensor into dst, whose length must be the
// tensor's element count.
func (c *Checkpoint) ReadFloat32(name string, dst []float32) error {
	f, ok := c.owner[name]
	if !ok {
		return fmt.Errorf("%s: checkpoint has no tensor %q", c.dir, name)
	}
	return f.ReadFloat32Into(name, dst)
}

// ReadRaw copies the named tensor's bytes into dst (see File.ReadRaw).
func (c *Checkpoint) ReadRaw(name string, dst []byte) error {
	f, ok := c.owner[name]
	if !ok {
		return fmt.Errorf("%s: checkpoint has no tensor %q", c.dir, name)
	}
	return f.ReadRaw(name, dst)
}

// ReadRawAt copies the bytes of the named tensor from byte off of its data into dst (see
// File.ReadRawAt): one row chunk of a large tensor.
func (c *Checkpoint) ReadRawAt(name string, off int64, dst []byte) error {
	f, ok := c.owner[name]
	if !ok {
		return fmt.Errorf("%s: checkpoint has no tensor %q", c.dir, name)
	}
	return f.ReadRawAt(name, off, dst)
}

// Close closes every shard and returns the first error.
func (c *Checkpoint) Close() error {
	var first error
	for _, f := range c.shards {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.shards = nil
	return first
}
