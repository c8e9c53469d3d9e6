package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
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
// serve is listed and counted. A missing modelsDir holds no packages. A package that cannot
// be read (a folder without permission, a file that vanishes mid-walk) is left out and
// reported to l, so that one bad folder does not hide the others. The error, for a models
// dir that cannot be read at all, names paths: it is for the log, never for a response.
func listPackages(modelsDir string, l *log.Logger) (modelIndex, error) {
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
			if errors.Is(err, fs.ErrPermission) {
				l.Printf("models index: skipping package %q: %v", name, err)
			}
			continue // not a package (or a dotfile, or outside the root)
		}
		n, err := packageBytes(modelsDir, name)
		if err != nil {
			l.Printf("models index: skipping package %q: %v", name, err)
			continue
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

// indexMaxAge bounds how long a cached index is served without a full walk, for changes
// that the fingerprint cannot see (a shard rewritten in place at the same path, in a
// subfolder of a package).
const indexMaxAge = 30 * time.Second

// indexCache holds the last index body. Walking every file of every package costs a stat
// and a symlink resolution per file (hundreds of shards per model), so the walk is redone
// only when the fingerprint changes or the body is older than indexMaxAge.
type indexCache struct {
	mu          sync.Mutex
	fingerprint string
	built       time.Time
	body        []byte
	etag        string
}

// indexFingerprint is a cheap summary of what listPackages depends on: the models dir
// itself and, for each entry, the folder it resolves to and its manifest.json (size,
// modification time, identity). A conversion renames a new folder into place and a copy
// creates files, so either changes a folder's modification time or a manifest. Reading the
// root and two stats per entry is a small fraction of a walk.
func indexFingerprint(modelsDir string) string {
	var b strings.Builder
	describe := func(p string) {
		info, err := os.Stat(p)
		if err != nil {
			fmt.Fprintf(&b, "%s|", errKind(err))
			return
		}
		fmt.Fprintf(&b, "%v %d %d %s|", info.Mode(), info.Size(), info.ModTime().UnixNano(), fileID(info))
	}
	realRoot, err := filepath.EvalSymlinks(modelsDir)
	if err != nil {
		return "root: " + errKind(err)
	}
	b.WriteString(realRoot + "\x00")
	describe(realRoot)
	entries, err := os.ReadDir(realRoot)
	if err != nil {
		return b.String() + errKind(err)
	}
	for _, e := range entries {
		p := filepath.Join(realRoot, e.Name())
		target, _ := filepath.EvalSymlinks(p)
		fmt.Fprintf(&b, "\n%q %q ", e.Name(), target)
		describe(p)
		describe(filepath.Join(p, "manifest.json"))
	}
	return b.String()
}

// errKind is the part of an error a fingerprint may depend on: whether a path exists, not
// the wording.
func errKind(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "missing"
	case errors.Is(err, fs.ErrPermission):
		return "denied"
	}
	return "error"
}

// get returns the current index body and its ETag, walking the packages only when needed.
func (c *indexCache) get(modelsDir string, l *log.Logger) (body []byte, etag string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fp := indexFingerprint(modelsDir)
	if c.body != nil && fp == c.fingerprint && time.Since(c.built) < indexMaxAge {
		return c.body, c.etag, nil
	}
	idx, err := listPackages(modelsDir, l)
	if err != nil {
		c.body = nil
		return nil, "", err
	}
	body, err = json.Marshal(idx)
	if err != nil { // only plain strings and ints: cannot happen
		return nil, "", err
	}
	body = append(body, '\n')
	sum := sha256.Sum256(body)
	c.fingerprint, c.built, c.body, c.etag = fp, time.Now(), body, `"`+hex.EncodeToString(sum[:16])+`"`
	return c.body, c.etag, nil
}

// serveIndex answers /models/index.json, from the cache when nothing changed. It is
// small, so its ETag is a hash of the body and a client that has it gets a 304. A models
// dir that cannot be read is a 500 whose details (with paths) go to the log only.
func (h *handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	body, etag, err := h.index.get(h.models.dir, h.log)
	if err != nil {
		h.log.Printf("models index: %v", err)
		fail(w, http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", revalidate)
	hd.Set("ETag", etag)
	http.ServeContent(w, r, "index.json", time.Time{}, bytes.NewReader(body))
}
