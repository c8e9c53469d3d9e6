package pkg

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/cogvlm-web/cogvlm-web/model/format"
)

// Stream converts a checkpoint one shard at a time into writers of the caller's: the
// browser's converter (wasm/convert) reads the hub's files with HTTP Range requests and
// keeps each shard in browser storage. It is the CLI's conversion (the same checks, plan,
// encoders and manifest), so the package is byte for byte the one Convert writes; only the
// destination differs, and each tensor is read in chunks of rows so that no tensor is held
// whole. Shards are independent: several Streams of the same checkpoint (one per Web
// Worker) may each write some of them.
type Stream struct {
	c          *conversion
	chunkBytes int64
	enc        encoder
}

// DefaultChunkBytes is the checkpoint bytes a Stream reads at once (one HTTP request):
// large enough that a 35 GB checkpoint is a few thousand requests, small enough that a
// worker's heap stays within a few times it.
const DefaultChunkBytes = 8 << 20

// OpenStream checks the checkpoint in src and plans the package as Convert does
// (opts.Calibrate is refused: it needs the whole model in memory). chunkBytes bounds the
// checkpoint bytes read at once; 0 means DefaultChunkBytes.
func OpenStream(src Folder, opts ConvertOptions, chunkBytes int64) (*Stream, error) {
	if opts.Calibrate {
		return nil, errors.New("calibration needs the whole model in memory: convert with the CLI")
	}
	if chunkBytes < 0 {
		return nil, fmt.Errorf("chunk size %d is negative", chunkBytes)
	}
	if chunkBytes == 0 {
		chunkBytes = DefaultChunkBytes
	}
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	c, err := prepareFolder(src, opts)
	if err != nil {
		return nil, err
	}
	return &Stream{c: c, chunkBytes: chunkBytes}, nil
}

// Plan is the package's manifest without hashes: the shards with their sizes.
func (s *Stream) Plan() *format.Manifest { return &s.c.manifest }

// ShardInputBytes is the checkpoint bytes that writing shard index reads.
func (s *Stream) ShardInputBytes(index int) int64 {
	var n int64
	for i, t := range s.c.manifest.Tensors {
		if t.Shard == index {
			n += s.c.inputBytes[i]
		}
	}
	return n
}

// WriteTokenizer writes tokenizer.json to w and returns its entry.
func (s *Stream) WriteTokenizer(w io.Writer) (format.FileEntry, error) {
	hw := newHashWriter(format.TokenizerFileName, w)
	if err := s.c.fillTokenizer(hw); err != nil {
		return format.FileEntry{}, err
	}
	return hw.entry(), nil
}

// WriteShard writes shard number index to w and returns its entry; progress, when set,
// gets the checkpoint bytes read so far for it after each tensor. ctx cancels it between
// tensors.
func (s *Stream) WriteShard(ctx context.Context, index int, w io.Writer, progress func(done int64)) (format.FileEntry, error) {
	shards := s.c.manifest.Shards
	if index < 0 || index >= len(shards) {
		return format.FileEntry{}, fmt.Errorf("shard %d: the package has %d shards", index, len(shards))
	}
	hw := newHashWriter(shards[index].File, w)
	var done int64
	err := s.c.writeShard(ctx, index, hw, &s.enc, s.chunkBytes, func(i int) {
		done += s.c.inputBytes[i]
		if progress != nil {
			progress(done)
		}
	})
	if err != nil {
		return format.FileEntry{}, err
	}
	entry := hw.entry()
	if want := shards[index]; entry.Size != want.Size {
		return format.FileEntry{}, fmt.Errorf("%s: wrote %d bytes, planned %d", entry.File, entry.Size, want.Size) // a bug in layout
	}
	return entry, nil
}

// Manifest is manifest.json for the tokenizer and shards written (by this Stream or
// others of the same checkpoint): each entry must be the planned file with its planned
// size.
func (s *Stream) Manifest(tokenizer format.FileEntry, shards []format.FileEntry) ([]byte, error) {
	m := s.c.manifest
	if tokenizer.File != format.TokenizerFileName || tokenizer.SHA256 == "" {
		return nil, fmt.Errorf("tokenizer entry %+v is not a written %s", tokenizer, format.TokenizerFileName)
	}
	if len(shards) != len(m.Shards) {
		return nil, fmt.Errorf("%d shards written, the package has %d", len(shards), len(m.Shards))
	}
	for i, e := range shards {
		if want := m.Shards[i]; e.File != want.File || e.Size != want.Size || len(e.SHA256) != 64 {
			return nil, fmt.Errorf("shard %d: entry %s of %d bytes, planned %s of %d bytes", i, e.File, e.Size, want.File, want.Size)
		}
	}
	m.Tokenizer = tokenizer
	m.Shards = shards
	return m.Encode()
}

// Close closes the checkpoint.
func (s *Stream) Close() error { return s.c.ckpt.Close() }
