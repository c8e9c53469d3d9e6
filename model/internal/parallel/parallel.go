// Package parallel spreads row loops of the model's native code over GOMAXPROCS
// goroutines: the weight encodings of model/quant and GPTQ in model/quant/gptq.
package parallel

import (
	"runtime"
	"sync"
)

// minWork is the work (rows × cost per row) below which Rows stays on the
// calling goroutine: starting goroutines costs more than a small matrix.
const minWork = 1 << 16

// Rows calls fn on contiguous row ranges covering [0, rows), spread over
// GOMAXPROCS goroutines when rows·rowCost is worth it, and returns the error of the
// lowest failing range, so a message names the same row however the work was split.
func Rows(rows, rowCost int, fn func(r0, r1 int) error) error {
	workers := min(runtime.GOMAXPROCS(0), rows)
	if workers <= 1 || rows*rowCost < minWork {
		return fn(0, rows)
	}
	// A few ranges per worker balance rows of uneven cost (all-zero groups are cheap).
	chunks := min(rows, 4*workers)
	errs := make([]error, chunks)
	next := make(chan int, chunks)
	for c := range chunks {
		next <- c
	}
	close(next)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for c := range next {
				errs[c] = fn(c*rows/chunks, (c+1)*rows/chunks)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
