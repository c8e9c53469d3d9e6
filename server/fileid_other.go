//go:build !unix

package main

import "io/fs"

// fileID is empty where the platform gives no portable file identity; the size and
// modification time still go into the fingerprint.
func fileID(fs.FileInfo) string { return "" }
