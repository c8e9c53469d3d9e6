//go:build js && wasm

package engine

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/model/format"
	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
	"github.com/cogvlm-web/cogvlm-web/wasm/kernels"
)

// The tests' stand-in for the page's worker: the test runner serves the repository under
// /repo/, and these helpers fetch from it. The product never fetches from Go (the worker
// downloads, verifies and stores; the engine uploads what it is handed), so this lives
// only in tests, and feeds LoadPackage exactly as wasm/main.go's readFile does.

// fetchArrayBuffer fetches url into a JS ArrayBuffer: the bytes stay in JS memory.
func fetchArrayBuffer(url string) (safejs.Value, error) {
	fetch, err := safejs.Global().Get("fetch")
	if err != nil {
		return safejs.Undefined(), err
	}
	p, err := fetch.Invoke(url)
	if err != nil {
		return safejs.Undefined(), fmt.Errorf("fetch %s: %v", url, err)
	}
	resp, err := gpu.Await(p)
	if err != nil {
		return safejs.Undefined(), fmt.Errorf("fetch %s: %v", url, err)
	}
	ok, _ := resp.Get("ok")
	if b, _ := ok.Bool(); !b {
		status, _ := resp.Get("status")
		code, _ := status.Int()
		return safejs.Undefined(), fmt.Errorf("fetch %s: HTTP %d", url, code)
	}
	if p, err = resp.Call("arrayBuffer"); err != nil {
		return safejs.Undefined(), err
	}
	ab, err := gpu.Await(p)
	if err != nil {
		return safejs.Undefined(), fmt.Errorf("fetch %s: %v", url, err)
	}
	return ab, nil
}

// fetchBytes fetches url into Go (small test files: expected tokens, tensors, images).
func fetchBytes(t *testing.T, url string) []byte {
	t.Helper()
	b, err := fetchGo(url)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fetchGo(url string) ([]byte, error) {
	ab, err := fetchArrayBuffer(url)
	if err != nil {
		return nil, err
	}
	u8, _ := safejs.Global().Get("Uint8Array")
	view, err := u8.New(ab)
	if err != nil {
		return nil, err
	}
	n, _ := view.Length()
	b := make([]byte, n)
	if _, err := safejs.CopyBytesToGo(b, view); err != nil {
		return nil, err
	}
	return b, nil
}

// fetchText fetches a small text file (a manifest, a tokenizer, expected answers).
func fetchText(url string) (string, error) {
	b, err := fetchGo(url)
	return string(b), err
}

// loadPackageAt loads the package whose manifest is at manifestURL: the manifest's
// text and a shard source that fetches each shard beside it.
func loadPackageAt(k *kernels.Kernels, manifestURL string, o LoadOptions) (*Package, error) {
	text, err := fetchText(manifestURL)
	if err != nil {
		return nil, err
	}
	base := manifestURL[:strings.LastIndex(manifestURL, "/")+1]
	o.Manifest = text
	o.Shards = func(f format.FileEntry) (safejs.Value, error) { return fetchArrayBuffer(base + f.File) }
	return LoadPackage(k, manifestURL, o)
}

// loadTestPackage loads one of the packages ./build.sh makes into .bin/testpkg.
func loadTestPackage(t *testing.T, k *kernels.Kernels, name string) *Package {
	t.Helper()
	p, err := loadPackageAt(k, testPackages+name+"/manifest.json", LoadOptions{})
	if err != nil {
		t.Fatalf("%v (the packages are made by ./build.sh test)", err)
	}
	return p
}
