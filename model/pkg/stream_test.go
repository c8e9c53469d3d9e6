package pkg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/model/quant"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// rangeFolder reads a checkpoint folder on disk the way wasm/convert reads the hub: the
// safetensors headers with Parse over a ReaderAt, and it records the largest read.
type rangeFolder struct {
	dir     string
	mu      sync.Mutex
	largest int
	reads   int
}

func (f *rangeFolder) Name() string            { return "hub/" + filepath.Base(f.dir) }
func (f *rangeFolder) Path(file string) string { return f.Name() + "/" + file }
func (f *rangeFolder) ReadFile(file string) ([]byte, error) {
	return os.ReadFile(filepath.Join(f.dir, file))
}
func (f *rangeFolder) Checkpoint() (*safetensors.Checkpoint, error) {
	return safetensors.OpenCheckpointWith(f.Name(), func(name string) (*safetensors.File, error) {
		data, err := os.ReadFile(filepath.Join(f.dir, name))
		if err != nil {
			return nil, err
		}
		return safetensors.Parse(readerAt{f, bytes.NewReader(data)}, int64(len(data)), f.Path(name))
	}, f.ReadFile)
}

type readerAt struct {
	f *rangeFolder
	r io.ReaderAt
}

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	r.f.mu.Lock()
	r.f.largest = max(r.f.largest, len(p))
	r.f.reads++
	r.f.mu.Unlock()
	return r.r.ReadAt(p, off)
}

// TestStreamMatchesConvert converts the golden checkpoint with Convert and with Streams
// (each shard written by its own Stream, as the browser's workers do, in row chunks far
// smaller than a tensor) and wants the same bytes in every file, for every encoding.
func TestStreamMatchesConvert(t *testing.T) {
	for _, tc := range []struct {
		q     quant.Encoding
		chunk int64
	}{{quant.Q4, 1000}, {quant.Q4, 1}, {quant.Q8, 3000}, {quant.F16, 777}, {quant.F32, 5000}} {
		t.Run(fmt.Sprintf("%s/chunk%d", tc.q, tc.chunk), func(t *testing.T) {
			opts := ConvertOptions{Quant: tc.q, ShardBytes: 256 << 10}
			dir := filepath.Join(t.TempDir(), "pkg")
			if err := Convert(goldenModelDir, dir, opts); err != nil {
				t.Fatal(err)
			}
			src := &rangeFolder{dir: goldenModelDir}
			s, err := OpenStream(src, opts, tc.chunk)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var tok bytes.Buffer
			tokEntry, err := s.WriteTokenizer(&tok)
			if err != nil {
				t.Fatal(err)
			}
			compareFile(t, dir, format.TokenizerFileName, tok.Bytes())
			plan := s.Plan()
			if len(plan.Shards) < 2 {
				t.Fatalf("%d shards: the test wants several", len(plan.Shards))
			}
			var entries []format.FileEntry
			for i := range plan.Shards {
				w, err := OpenStream(src, opts, tc.chunk) // a worker of its own
				if err != nil {
					t.Fatal(err)
				}
				var out bytes.Buffer
				var last int64
				e, err := w.WriteShard(context.Background(), i, &out, func(done int64) { last = done })
				w.Close()
				if err != nil {
					t.Fatal(err)
				}
				if last != s.ShardInputBytes(i) {
					t.Errorf("shard %d: progress ended at %d, its input is %d bytes", i, last, s.ShardInputBytes(i))
				}
				compareFile(t, dir, e.File, out.Bytes())
				entries = append(entries, e)
			}
			manifest, err := s.Manifest(tokEntry, entries)
			if err != nil {
				t.Fatal(err)
			}
			compareFile(t, dir, format.ManifestFileName, manifest)
			// No read holds a whole large tensor: each is at most a chunk, or one row when
			// a row is larger (the rotary check and the headers read in pieces of their own).
			var largestRow int64
			for _, name := range s.c.ckpt.Names() {
				info, _, _ := s.c.ckpt.Info(name)
				_, k := rowsOf(info.Shape)
				largestRow = max(largestRow, int64(k*info.DType.Size()))
			}
			if limit := max(tc.chunk, largestRow, 64<<10*4); int64(src.largest) > limit && tc.chunk < 64<<10 {
				t.Errorf("largest read %d bytes, over the chunk %d and the largest row %d", src.largest, tc.chunk, largestRow)
			}
		})
	}
}

func compareFile(t *testing.T, dir, name string, got []byte) {
	t.Helper()
	want, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: the stream wrote %d bytes that differ from Convert's %d", name, len(got), len(want))
	}
}

// TestStreamErrors: what the browser's converter reports, in one line naming the file.
func TestStreamErrors(t *testing.T) {
	src := &rangeFolder{dir: goldenModelDir}
	if _, err := OpenStream(src, ConvertOptions{Calibrate: true}, 0); err == nil || !strings.Contains(err.Error(), "CLI") {
		t.Errorf("calibrate: %v", err)
	}
	s, err := OpenStream(src, ConvertOptions{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.WriteShard(context.Background(), len(s.Plan().Shards), io.Discard, nil); err == nil {
		t.Error("a shard past the end was written")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.WriteShard(ctx, 0, io.Discard, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := s.Manifest(format.FileEntry{File: format.TokenizerFileName, SHA256: "x"}, nil); err == nil {
		t.Error("a manifest without shards")
	}
	empty := &rangeFolder{dir: t.TempDir()}
	if _, err := OpenStream(empty, ConvertOptions{}, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty folder: %v", err)
	}
}
