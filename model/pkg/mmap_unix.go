//go:build linux || darwin || freebsd || netbsd || openbsd

package pkg

import (
	"os"
	"syscall"
)

// mapFile maps the first size bytes of f read-only and shared: the pages are the page
// cache's, read on first touch and dropped under memory pressure, so a package's weights
// cost no heap. unmap releases the mapping.
func mapFile(f *os.File, size int64) (data []byte, unmap func([]byte), err error) {
	data, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func(b []byte) { syscall.Munmap(b) }, nil
}
