// Command apiload measures berth's API throughput and latency through the
// whole stack (HTTP, SigV4 verification, authorization, handler, cache) over
// loopback: concurrent workers send freshly signed DescribeClusters and
// DescribeTaskDefinition requests for a bounded time and request count, and
// the median and tail latencies are printed. Run it through bench/api.sh.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/berth-dev/berth/internal/account"
)

func main() {
	endpoint := flag.String("endpoint", "http://127.0.0.1:7400", "berth API URL")
	dataDir := flag.String("data-dir", "", "berth data dir (for DATA/credentials)")
	workers := flag.Int("c", 32, "concurrent workers")
	duration := flag.Duration("d", 10*time.Second, "how long to send")
	maxRequests := flag.Int64("n", 500000, "stop after this many requests")
	op := flag.String("op", "DescribeClusters", "DescribeClusters or DescribeTaskDefinition")
	flag.Parse()
	if err := run(*endpoint, *dataDir, *workers, *duration, *maxRequests, *op); err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(1)
	}
}

func run(endpoint, dataDir string, workers int, duration time.Duration, maxRequests int64, op string) error {
	creds, err := readCreds(filepath.Join(dataDir, "credentials"))
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}}
	signer := v4.NewSigner()
	call := func(ctx context.Context, action, body string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113."+action)
		sum := sha256.Sum256([]byte(body))
		if err := signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ecs", "us-east-1", time.Now()); err != nil {
			return 0, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}

	ctx := context.Background()
	// Fixtures: one cluster and one task definition to describe.
	for _, f := range []struct{ action, body string }{
		{"CreateCluster", `{"clusterName":"bench"}`},
		{"RegisterTaskDefinition", `{"family":"bench","containerDefinitions":[{"name":"app","image":"registry.local/app:1","memory":64}]}`},
	} {
		if code, err := call(ctx, f.action, f.body); err != nil || code != 200 {
			return fmt.Errorf("fixture %s: status %d, %v", f.action, code, err)
		}
	}
	action, body := "DescribeClusters", `{"clusters":["bench"]}`
	if op == "DescribeTaskDefinition" {
		action, body = op, `{"taskDefinition":"bench"}`
	}

	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	var sent, failed atomic.Int64
	lat := make([][]time.Duration, workers)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for ctx.Err() == nil && sent.Add(1) <= maxRequests {
				t0 := time.Now()
				code, err := call(ctx, action, body)
				if ctx.Err() != nil {
					return
				}
				if err != nil || code != 200 {
					failed.Add(1)
					continue
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	if len(all) == 0 {
		return fmt.Errorf("no successful requests (%d failed)", failed.Load())
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration { return all[min(len(all)-1, int(float64(len(all))*p))] }
	fmt.Printf("op=%s workers=%d requests=%d failed=%d elapsed=%.1fs throughput=%.0f req/s p50=%v p90=%v p99=%v max=%v\n",
		action, workers, len(all), failed.Load(), elapsed.Seconds(), float64(len(all))/elapsed.Seconds(),
		pct(0.50).Round(10*time.Microsecond), pct(0.90).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), all[len(all)-1].Round(10*time.Microsecond))
	if failed.Load() > 0 {
		return fmt.Errorf("%d requests failed", failed.Load())
	}
	return nil
}

func readCreds(path string) (aws.Credentials, error) {
	id, secret, err := account.ReadCredentials(path)
	return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, err
}
