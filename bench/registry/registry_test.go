package main

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	twenty := ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1)
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 95, 0},
		{"one", ms(7), 95, 7 * time.Millisecond},
		{"p50 of 20 is the 10th", twenty, 50, 10 * time.Millisecond},
		{"p95 of 20 is the 19th", twenty, 95, 19 * time.Millisecond},
		{"p100 is the max", twenty, 100, 20 * time.Millisecond},
		{"p0 is the min", twenty, 0, 1 * time.Millisecond},
	} {
		if got := percentile(tc.ds, tc.p); got != tc.want {
			t.Errorf("%s: percentile = %v, want %v", tc.name, got, tc.want)
		}
	}
	if twenty[0] != 20*time.Millisecond {
		t.Error("percentile sorted its argument in place")
	}
}

func TestSummary(t *testing.T) {
	for _, tc := range []struct {
		vs      []float64
		summary string
	}{
		{nil, "–"},
		{[]float64{3}, "3"},
		{[]float64{5, 1, 3}, "3 [1–5]"},
		{[]float64{4, 1, 3, 2}, "2 [1–4]"}, // the median 2.5, %.0f rounds to even
	} {
		if got := summary(tc.vs, "%.0f"); got != tc.summary {
			t.Errorf("summary(%v) = %q, want %q", tc.vs, got, tc.summary)
		}
	}
}

func TestMibps(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		d    time.Duration
		want float64
	}{
		{200 << 20, time.Second, 200},
		{200 << 20, 2 * time.Second, 100},
		{1 << 20, 0, 0},
	} {
		if got := mibps(tc.n, tc.d); got != tc.want {
			t.Errorf("mibps(%d, %v) = %v, want %v", tc.n, tc.d, got, tc.want)
		}
	}
}

func TestDecodeToken(t *testing.T) {
	enc := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		tok  string
		want string
		err  bool
	}{
		{tok: enc([]byte("AWS:secret:with:colons")), want: "secret:with:colons"},
		{tok: enc([]byte("bob:secret")), err: true},
		{tok: enc([]byte("AWS:")), err: true},
		{tok: "not base64!", err: true},
	} {
		got, err := decodeToken(tc.tok)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("decodeToken(%q) = %q, %v; want %q, error %v", tc.tok, got, err, tc.want, tc.err)
		}
	}
}

func TestBenchImage(t *testing.T) {
	for _, tc := range []struct {
		layers int
		size   int64
		err    bool
	}{
		{layers: 2, size: 64 << 10},
		{layers: 1, size: 1 << 20},
		{layers: 1, size: 1000, err: true},        // not a multiple of 512
		{layers: 1, size: tarOverhead, err: true}, // no room for the file
	} {
		b, err := newBenchImage(tc.layers, tc.size)
		if (err != nil) != tc.err {
			t.Fatalf("newBenchImage(%d, %d): error %v, want error %v", tc.layers, tc.size, err, tc.err)
		}
		if err != nil {
			continue
		}
		if len(b.layers) != tc.layers || b.layerBytes() != int64(tc.layers)*tc.size {
			t.Errorf("newBenchImage(%d, %d): %d layers, %d bytes", tc.layers, tc.size, len(b.layers), b.layerBytes())
		}
		ls, err := b.img.Layers()
		if err != nil || len(ls) != tc.layers {
			t.Fatalf("image layers: %d, %v", len(ls), err)
		}
		for i, l := range b.layers {
			// Each layer is a valid tar of one file filling it.
			tr := tar.NewReader(bytes.NewReader(l))
			h, err := tr.Next()
			if err != nil || h.Size != tc.size-tarOverhead {
				t.Errorf("layer %d: header %+v, %v", i, h, err)
			}
			// The image's blob is the layer's bytes.
			rc, err := ls[i].Compressed()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			if !bytes.Equal(got, l) {
				t.Errorf("layer %d: image blob differs from the copied bytes", i)
			}
		}
		if tc.layers == 2 && bytes.Equal(b.layers[0][512:1024], b.layers[1][512:1024]) {
			t.Error("layers share their bytes")
		}
	}
}

func TestCopyRound(t *testing.T) {
	dir := t.TempDir()
	layers := [][]byte{bytes.Repeat([]byte("a"), 100_000), bytes.Repeat([]byte("b"), 3)}
	took, syncs, err := copyRound(dir, layers)
	if err != nil {
		t.Fatal(err)
	}
	for k, d := range took {
		if d <= 0 || syncs[k] > d || (copyKind(k) != copyUserNoSync && syncs[k] <= 0) {
			t.Errorf("%v: took %v, fsync %v", copyKind(k), d, syncs[k])
		}
	}
	if es, _ := os.ReadDir(dir); len(es) != 0 {
		t.Errorf("copyRound left %d files behind", len(es))
	}
	// Each kind copies the bytes exactly.
	src := filepath.Join(dir, "src")
	if err := writeSource(src, layers); err != nil {
		t.Fatal(err)
	}
	want := append(append([]byte(nil), layers[0]...), layers[1]...)
	for k := range numCopyKinds {
		dst := filepath.Join(dir, "dst")
		if _, _, n, err := timedCopy(k, src, dst); err != nil || n != int64(len(want)) {
			t.Errorf("%v: %d bytes, %v", k, n, err)
		}
		if got, _ := os.ReadFile(dst); !bytes.Equal(got, want) {
			t.Errorf("%v: the copy differs from the source", k)
		}
	}
	if got, _ := os.ReadFile(src); !bytes.Equal(got, want) {
		t.Error("source is not the layers one after another")
	}
}

// FuzzDecodeToken: the token is the server's answer; whatever it is,
// decodeToken returns a password only for base64("AWS:" + password).
func FuzzDecodeToken(f *testing.F) {
	f.Add(base64.StdEncoding.EncodeToString([]byte("AWS:pw")))
	f.Add("QVdTOg==")
	f.Add("%%%")
	f.Fuzz(func(t *testing.T, tok string) {
		pw, err := decodeToken(tok)
		if err != nil {
			return
		}
		b, derr := base64.StdEncoding.DecodeString(tok)
		if derr != nil || string(b) != "AWS:"+pw || pw == "" {
			t.Errorf("decodeToken(%q) = %q for %q", tok, pw, b)
		}
	})
}
