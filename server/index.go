package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// modelIndex is /models/index.json: the packages the app can load.
type modelIndex struct {
	Models []modelPackage `json:"models"` // sorted by Name; [] rather than null when empty
}

type modelPackage struct {
	Name     string `json:"name"`     // the package's directory name
	Manifest string `json:"manifest"` // URL path of its manifest.json
	Bytes    int64  `json:"bytes"`    // total size of the files served under /models/<name>/
}

// listPackages finds the packages in modelsDir: every immediate subdirectory, or symlink to
// one inside modelsDir, that holds a servable manifest.json. Only what the server would
// serve is listed and counted. A missing modelsDir holds no packages.
func listPackages(modelsDir string) (modelIndex, error) {
	idx := modelIndex{Models: []modelPackage{}}
	realRoot, err := filepath.EvalSymlinks(modelsDir)
	if errors.Is(err, fs.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return idx, err
	}
	entries, err := os.ReadDir(realRoot) // sorted by name
	if err != nil {
		return idx, err
	}
	for _, e := range entries {
		name := e.Name()
		if _, _, info, err := statIn(modelsDir, name+"/manifest.json"); err != nil || !info.Mode().IsRegular() {
			continue // not a package (or a dotfile, or outside the root)
		}
		n, err := packageBytes(modelsDir, name)
		if err != nil {
			return idx, fmt.Errorf("package %q: %w", name, err)
		}
		idx.Models = append(idx.Models, modelPackage{
			Name:     name,
			Manifest: "/models/" + url.PathEscape(name) + "/manifest.json",
			Bytes:    n,
		})
	}
	return idx, nil
}

// packageBytes adds up the files below modelsDir/name that the server would serve: regular
// files, symlinks to files inside the root, no dotfiles, subdirectories included. Symlinked
// directories are not descended into (they could form cycles).
func packageBytes(modelsDir, name string) (int64, error) {
	realRoot, rel, _, err := statIn(modelsDir, name)
	if err != nil {
		return 0, err
	}
	pkg := filepath.Join(realRoot, rel)
	var total int64
	err = filepath.WalkDir(pkg, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == pkg {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		r, err := filepath.Rel(realRoot, p)
		if err != nil {
			return err
		}
		if _, _, info, err := statIn(modelsDir, filepath.ToSlash(r)); err == nil && info.Mode().IsRegular() {
			total += info.Size()
		}
		return nil
	})
	return total, err
}

// serveIndex answers /models/index.json, generated per request so that it is never stale.
// It is small, so its ETag is a hash of the body and a client that has it gets a 304.
func (h *handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	idx, err := listPackages(h.models.dir)
	if err != nil {
		w.Header().Set("Cache-Control", "no-store")
		http.Error(w, "models index: "+err.Error(), http.StatusInternalServerError)
		return
	}
	body, err := json.Marshal(idx)
	if err != nil { // only plain strings and ints: cannot happen
		fail(w, http.StatusInternalServerError)
		return
	}
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", revalidate)
	hd.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	http.ServeContent(w, r, "index.json", time.Time{}, bytes.NewReader(body))
}
