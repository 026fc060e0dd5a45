package main

import (
	"archive/tar"
	"bytes"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// tarOverhead is what a one-file tar adds to the file's bytes when the
// file's size is a multiple of 512: its header block and the two zero
// blocks that end the archive.
const tarOverhead = 512 + 1024

// benchImage is an OCI image whose layers are uncompressed tars of one file
// of incompressible bytes each, held in memory: pushing it costs the client
// no compression (random.Layer would gzip every layer on the fly), and its
// blobs are exactly the bytes the file copies copy.
type benchImage struct {
	img    v1.Image
	layers [][]byte // each layer blob
}

// layerBytes is the layers' bytes in all.
func (b benchImage) layerBytes() int64 {
	var n int64
	for _, l := range b.layers {
		n += int64(len(l))
	}
	return n
}

// newBenchImage builds an image of n layers of size bytes each (size a
// multiple of 512, above tarOverhead) from a fresh random seed.
func newBenchImage(n int, size int64) (benchImage, error) {
	if size%512 != 0 || size <= tarOverhead {
		return benchImage{}, fmt.Errorf("layer size %d: want a multiple of 512 above %d", size, tarOverhead)
	}
	var seed [32]byte
	if _, err := cryptorand.Read(seed[:]); err != nil {
		return benchImage{}, err
	}
	rng := rand.NewChaCha8(seed)
	var b benchImage
	adds := make([]mutate.Addendum, 0, n)
	for i := range n {
		layer, err := tarLayer(fmt.Sprintf("blob-%d", i), size-tarOverhead, rng)
		if err != nil {
			return benchImage{}, err
		}
		b.layers = append(b.layers, layer)
		adds = append(adds, mutate.Addendum{Layer: static.NewLayer(layer, types.OCIUncompressedLayer)})
	}
	img, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		return benchImage{}, err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	b.img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	// Digests are computed now, outside any timing.
	if _, err := b.img.Digest(); err != nil {
		return benchImage{}, err
	}
	return b, nil
}

// tarLayer is a tar holding one file called name of fileSize bytes from rng.
func tarLayer(name string, fileSize int64, rng *rand.ChaCha8) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(int(fileSize + tarOverhead))
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Size: fileSize, Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	chunk := make([]byte, 1<<20)
	for left := fileSize; left > 0; {
		c := chunk[:min(left, int64(len(chunk)))]
		_, _ = rng.Read(c) // never fails
		if _, err := tw.Write(c); err != nil {
			return nil, err
		}
		left -= int64(len(c))
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if buf.Len() != int(fileSize+tarOverhead) {
		return nil, errors.New("tar layer: unexpected size")
	}
	return buf.Bytes(), nil
}
