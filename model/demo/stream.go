package demo

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/cogvlm-web/cogvlm-web/model"
	"github.com/cogvlm-web/cogvlm-web/model/safetensors"
)

// The published presets are written as a stream (gigabytes, up to 35 GB at full size):
// each tensor is cut into chunks of chunkValues values, drawn in parallel on every core and
// written in order, so memory holds a few chunks at a time. A chunk's values depend only
// on (Seed, tensor, chunk): the files are the same whatever the number of cores.
//
// A value is drawn by looking 16 random bits up in a per-tensor table of 65536 bf16
// values, the normal quantiles of the tensor's distribution at (u+½)/65536: exactly
// normal up to bf16 rounding, cut at ±4.3σ, and four values per 64 random bits.

const chunkValues = 1 << 20

// standardQuantiles[u] is the standard normal quantile of (u+½)/65536.
var standardQuantiles = sync.OnceValue(func() *[1 << 16]float64 {
	var q [1 << 16]float64
	for u := range q {
		q[u] = math.Sqrt2 * math.Erfinv(2*(float64(u)+0.5)/(1<<16)-1)
	}
	return &q
})

// bf16Table maps 16 random bits to a bf16 draw of mean + std·N(0,1).
func bf16Table(mean, std float64) *[1 << 16]uint16 {
	var t [1 << 16]uint16
	for u, q := range standardQuantiles() {
		t[u] = safetensors.Float32ToBF16(float32(mean + std*q))
	}
	return &t
}

// splitmix64 is a bijective 64-bit mixer (Steele et al.), used to derive chunk seeds.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// fillBF16 fills out (2 bytes a value) with draws from table, from the wyrand stream
// (Wang Yi's generator: one 64×64→128 multiply per 64 bits) started at seed.
func fillBF16(out []byte, table *[1 << 16]uint16, seed uint64) {
	s := seed
	next := func() uint64 {
		s += 0xa0761d6478bd642f
		hi, lo := bits.Mul64(s, s^0xe7037ed1a0b428db)
		return hi ^ lo
	}
	i := 0
	for ; i+8 <= len(out); i += 8 {
		r := next()
		binary.LittleEndian.PutUint64(out[i:], uint64(table[uint16(r)])|uint64(table[uint16(r>>16)])<<16|
			uint64(table[uint16(r>>32)])<<32|uint64(table[uint16(r>>48)])<<48)
	}
	for r := next(); i+2 <= len(out); i, r = i+2, r>>16 {
		binary.LittleEndian.PutUint16(out[i:], table[uint16(r)])
	}
}

// source is how one tensor's bytes are made: drawn from table, or fixed.
type source struct {
	table *[1 << 16]uint16
	fixed []byte
	seed  uint64 // the tensor's seed; chunk k uses splitmix64(seed ^ k)
}

// fill writes chunk k of the tensor into out (its length: the chunk's bytes).
func (s *source) fill(k int, out []byte) {
	if s.fixed != nil {
		copy(out, s.fixed[k*2*chunkValues:])
		return
	}
	fillBF16(out, s.table, splitmix64(s.seed^uint64(k)))
}

func (p *Plan) source(i int) (source, error) {
	t := p.Tensors[i]
	if _, ok := model.RotaryInvFreqLayer(t.Name); ok {
		// the buffer's true values, as util.py computes and save_pretrained stores them
		var v []float32
		for _, x := range model.RotaryInvFreq(p.Config) {
			v = append(v, float32(x))
		}
		return source{fixed: safetensors.EncodeFloat32(t.Name, t.Shape, v, safetensors.BF16).Data}, nil
	}
	mean, std, err := distribution(t.Name, t.Shape, p.Config)
	if err != nil {
		return source{}, err
	}
	return source{table: bf16Table(mean, std), seed: splitmix64(Seed ^ uint64(i)<<32)}, nil
}

// chunk is one piece of a tensor's data on its way from a worker to the writer.
type chunk struct {
	src  *source
	k    int    // chunk index within the tensor
	out  []byte // filled by a worker
	done chan struct{}
}

// writeShard streams shard i into dir; written reports bytes as they land.
func (p *Plan) writeShard(dir string, i int, written func(int64)) error {
	idx := p.shardTensors(i)
	entries := make([]safetensors.Entry, len(idx))
	for j, ti := range idx {
		t := p.Tensors[ti]
		entries[j] = safetensors.Entry{Name: t.Name, DType: t.DType, Shape: t.Shape}
	}
	w, err := safetensors.Create(filepath.Join(dir, p.Shards[i]), entries, map[string]string{"format": "pt"})
	if err != nil {
		return err
	}
	defer w.Abort() // no-op after Close

	workers := runtime.GOMAXPROCS(0)
	pool := sync.Pool{New: func() any { return make([]byte, 2*chunkValues) }}
	work := make(chan *chunk)
	queue := make(chan *chunk, 2*workers) // in file order; bounds the chunks in memory
	quit := make(chan struct{})
	var feedErr error
	go func() { // feeder
		defer close(queue)
		defer close(work)
		for _, ti := range idx {
			src, err := p.source(ti)
			if err != nil {
				feedErr = err
				return
			}
			size := p.Tensors[ti].Bytes()
			for k := 0; int64(k)*2*chunkValues < size; k++ {
				n := min(size-int64(k)*2*chunkValues, 2*chunkValues)
				c := &chunk{src: &src, k: k, out: pool.Get().([]byte)[:n], done: make(chan struct{})}
				select {
				case queue <- c:
				case <-quit:
					return
				}
				work <- c
			}
		}
	}()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				c.src.fill(c.k, c.out)
				close(c.done)
			}
		}()
	}
	var werr error
	for c := range queue {
		<-c.done
		if werr == nil {
			if _, werr = w.Write(c.out); werr != nil {
				close(quit)
			} else {
				written(int64(len(c.out)))
			}
		}
		pool.Put(c.out[:cap(c.out)])
	}
	wg.Wait()
	if feedErr != nil {
		return feedErr
	}
	if werr != nil {
		return werr
	}
	return w.Close()
}

// write writes the whole checkpoint of p into dir.
func (p *Plan) write(dir string, progress func(done, total int64)) error {
	if err := writeCommonFiles(dir); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, "config.json"), p.ConfigJSON()); err != nil {
		return err
	}
	var done int64
	written := func(n int64) {
		done += n
		if progress != nil {
			progress(done, p.TotalSize)
		}
	}
	for i := range p.Shards {
		if err := p.writeShard(dir, i, written); err != nil {
			return err
		}
	}
	if done != p.TotalSize {
		return fmt.Errorf("demo: wrote %d bytes of tensors, planned %d", done, p.TotalSize)
	}
	return writeJSON(filepath.Join(dir, safetensors.IndexFileName), p.index())
}

// index is model.safetensors.index.json as transformers writes it.
func (p *Plan) index() map[string]any {
	return map[string]any{
		"metadata":   map[string]int64{"total_size": p.TotalSize},
		"weight_map": p.WeightMap(),
	}
}
