//go:build js && wasm

package engine

import (
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/hack-pad/safejs"

	"github.com/cogvlm-web/cogvlm-web/wasm/gpu"
)

// ErrNetwork marks a failed or refused download.
var ErrNetwork = errors.New("network error")

// fetchResponse fetches url and checks the HTTP status.
func fetchResponse(url string) (safejs.Value, error) {
	fetch, err := safejs.Global().Get("fetch")
	if err != nil {
		return safejs.Undefined(), err
	}
	p, err := fetch.Invoke(url)
	if err != nil {
		return safejs.Undefined(), fmt.Errorf("fetch %s: %v: %w", url, err, ErrNetwork)
	}
	resp, err := gpu.Await(p)
	if err != nil {
		return safejs.Undefined(), fmt.Errorf("fetch %s: %v: %w", url, err, ErrNetwork)
	}
	ok, _ := resp.Get("ok")
	if b, _ := ok.Bool(); !b {
		status, _ := resp.Get("status")
		code, _ := status.Int()
		return safejs.Undefined(), fmt.Errorf("fetch %s: HTTP %d: %w", url, code, ErrNetwork)
	}
	return resp, nil
}

// FetchText fetches a small text file (a manifest, a tokenizer) into Go.
func FetchText(url string) (string, error) {
	resp, err := fetchResponse(url)
	if err != nil {
		return "", err
	}
	p, err := resp.Call("text")
	if err != nil {
		return "", err
	}
	v, err := gpu.Await(p)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", url, err)
	}
	return v.String()
}

// fetchArrayBuffer fetches url into a JS ArrayBuffer: the bytes stay in JS memory.
func fetchArrayBuffer(url string) (safejs.Value, error) {
	resp, err := fetchResponse(url)
	if err != nil {
		return safejs.Undefined(), err
	}
	p, err := resp.Call("arrayBuffer")
	if err != nil {
		return safejs.Undefined(), err
	}
	ab, err := gpu.Await(p)
	if err != nil {
		return safejs.Undefined(), fmt.Errorf("fetch %s: %w", url, err)
	}
	return ab, nil
}

// sha256Hex hashes a JS ArrayBuffer with WebCrypto; only the 32-byte digest enters Go.
func sha256Hex(ab safejs.Value) (string, error) {
	crypto, err := safejs.Global().Get("crypto")
	if err != nil {
		return "", err
	}
	subtle, err := crypto.Get("subtle")
	if err != nil || subtle.IsUndefined() {
		return "", fmt.Errorf("crypto.subtle is unavailable (the page needs a secure context)")
	}
	p, err := subtle.Call("digest", "SHA-256", ab)
	if err != nil {
		return "", err
	}
	digest, err := gpu.Await(p)
	if err != nil {
		return "", err
	}
	u8, err := safejs.Global().Get("Uint8Array")
	if err != nil {
		return "", err
	}
	view, err := u8.New(digest)
	if err != nil {
		return "", err
	}
	sum := make([]byte, 32)
	if _, err := safejs.CopyBytesToGo(sum, view); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum), nil
}
