package pkg

import (
	"os"
	"path/filepath"

	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// A Folder is a Hugging Face checkpoint folder, read by file name: a folder on disk for
// the CLI, the hub's repository over HTTP Range requests for the browser's converter
// (wasm/convert).
type Folder interface {
	// Name is the folder as messages name it.
	Name() string
	// Path is a file of the folder as messages name it.
	Path(file string) string
	// ReadFile reads a small file whole (config.json, the tokenizer); a missing file's
	// error wraps fs.ErrNotExist.
	ReadFile(file string) ([]byte, error)
	// Checkpoint opens the safetensors weights (safetensors.OpenCheckpointWith).
	Checkpoint() (*safetensors.Checkpoint, error)
}

// dirFolder is a checkpoint folder on disk.
type dirFolder string

func (d dirFolder) Name() string                         { return string(d) }
func (d dirFolder) Path(file string) string              { return filepath.Join(string(d), file) }
func (d dirFolder) ReadFile(file string) ([]byte, error) { return os.ReadFile(d.Path(file)) }
func (d dirFolder) Checkpoint() (*safetensors.Checkpoint, error) {
	return safetensors.OpenCheckpoint(string(d))
}
