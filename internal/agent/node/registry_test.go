package node

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/clock"
)

type fakeTokenAPI struct {
	calls int
	token string
	ttl   time.Duration
	clock clock.Clock
	err   error
}

func (f *fakeTokenAPI) GetAuthorizationToken(context.Context, *ecr.GetAuthorizationTokenInput, ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return &ecr.GetAuthorizationTokenOutput{AuthorizationData: []types.AuthorizationData{{
		AuthorizationToken: aws.String(base64.StdEncoding.EncodeToString([]byte(f.token))),
		ExpiresAt:          aws.Time(f.clock.Now().Add(f.ttl)),
	}}}, nil
}

func TestRegistryTokensAreCachedUntilNearExpiry(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	api := &fakeTokenAPI{token: "AWS:secret-1", ttl: 12 * time.Hour, clock: fc}
	r := &registryTokens{api: api, host: "10.0.0.5:7400", clock: fc}
	for range 3 {
		if p, err := r.current(context.Background()); err != nil || p != "secret-1" {
			t.Fatalf("current = %q, %v", p, err)
		}
	}
	if api.calls != 1 {
		t.Fatalf("%d calls for three pulls, want 1", api.calls)
	}
	fc.Advance(11*time.Hour + time.Minute) // inside the refresh margin
	api.token = "AWS:secret-2"
	if p, _ := r.current(context.Background()); p != "secret-2" || api.calls != 2 {
		t.Fatalf("after 11 h: %q with %d calls, want a fresh token", p, api.calls)
	}
	api.err = errors.New("down")
	fc.Advance(12 * time.Hour)
	if _, err := r.current(context.Background()); err == nil {
		t.Fatal("an expired token was used when the server refused a new one")
	}
	api.err, api.token = nil, "bogus"
	if _, err := r.current(context.Background()); err == nil {
		t.Fatal("a token without AWS: was accepted")
	}
}

func TestPullOptions(t *testing.T) {
	fc := clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	tokens := &registryTokens{api: &fakeTokenAPI{token: "AWS:pw", ttl: 12 * time.Hour, clock: fc}, host: "127.0.0.1:7400", clock: fc}
	cfg := agentconfig.Config{EngineAuth: map[string]agentconfig.RegistryAuth{
		agentconfig.RegistryHost("registry.example.com"): {Username: "u", Password: "p"},
	}}
	opts := pullOptions("", cfg, tokens, "http://127.0.0.1:7400", nil)
	for host, want := range map[string][2]string{
		"registry.example.com": {"u", "p"},
		"127.0.0.1:7400":       {"AWS", "pw"},
		"docker.io":            {"", ""},
	} {
		u, p, err := opts.Auth(host)
		if err != nil || u != want[0] || p != want[1] {
			t.Errorf("Auth(%s) = %q %q %v, want %q %q", host, u, p, err, want[0], want[1])
		}
	}
	if !opts.PlainHTTP("127.0.0.1:7400") || opts.PlainHTTP("docker.io") {
		t.Errorf("plain HTTP hosts %v", opts.PlainHTTPHosts)
	}
	conf := &tls.Config{ServerName: "berth"}
	opts = pullOptions("", agentconfig.Config{}, &registryTokens{host: "10.0.0.5:7400"}, "https://10.0.0.5:7400", conf)
	if opts.TLS == nil || opts.TLS("10.0.0.5:7400") == nil || opts.TLS("docker.io") != nil || len(opts.PlainHTTPHosts) != 0 {
		t.Errorf("TLS options for an https server: %+v", opts)
	}
}
