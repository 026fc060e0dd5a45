package node

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/berth-dev/berth/internal/agent/agentconfig"
	"github.com/berth-dev/berth/internal/agent/runtime"
	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/clock"
)

// tokenRefreshMargin: a registry token is renewed this long before it
// expires (ECR's last 12 hours), so a long pull never starts with one about
// to lapse.
const tokenRefreshMargin = time.Hour

// TokenAPI is the one ECR call the agent makes.
type TokenAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
}

// registryTokens gets, with the agent's own identity, the password for the
// registry of the server it joined (berth's ECR), so tasks pull from it
// with nothing configured on the node; it caches the token until shortly
// before it expires.
type registryTokens struct {
	api   TokenAPI
	host  string // the server's host:port, the registry's host
	clock clock.Clock

	mu       sync.Mutex
	password string
	expires  time.Time
}

func newRegistryTokens(id state.Identity, hc *http.Client, clk clock.Clock) (*registryTokens, error) {
	u, err := url.Parse(id.Endpoint)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("server endpoint %q is not a URL", id.Endpoint)
	}
	creds := aws.Credentials{AccessKeyID: id.AccessKeyID, SecretAccessKey: id.SecretAccessKey, Source: "berth-agent"}
	api := ecr.New(ecr.Options{
		Region:       id.Region,
		BaseEndpoint: aws.String(id.Endpoint),
		HTTPClient:   hc,
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
	})
	return &registryTokens{api: api, host: u.Host, clock: clk}, nil
}

// password returns a current password for the server's registry.
func (r *registryTokens) current(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock.Now()
	if r.password != "" && now.Before(r.expires.Add(-tokenRefreshMargin)) {
		return r.password, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := r.api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return "", fmt.Errorf("registry token from the server: %w", err)
	}
	if len(out.AuthorizationData) == 0 {
		return "", errors.New("registry token from the server: none given")
	}
	d := out.AuthorizationData[0]
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(d.AuthorizationToken))
	if err != nil {
		return "", fmt.Errorf("registry token from the server: %w", err)
	}
	user, pass, ok := strings.Cut(string(raw), ":")
	if !ok || user != "AWS" || pass == "" {
		return "", errors.New("registry token from the server: not AWS:<password>")
	}
	r.password = pass
	r.expires = aws.ToTime(d.ExpiresAt)
	if d.ExpiresAt == nil {
		r.expires = now.Add(tokenRefreshMargin + time.Minute)
	}
	return pass, nil
}

// pullOptions are the runtime's registry settings: ECS_ENGINE_AUTH_DATA
// for the registries it names, the agent's own token for its server's
// registry (reached as the server is: plain HTTP on loopback, else TLS
// trusting the pinned CA only).
func pullOptions(behavior runtime.PullBehavior, cfg agentconfig.Config, tokens *registryTokens, endpoint string, serverTLS *tls.Config) runtime.PullOptions {
	configured := registryAuth(cfg)
	opts := runtime.PullOptions{
		Behavior: behavior,
		Auth: func(host string) (string, string, error) {
			if configured != nil {
				if user, secret, err := configured(host); err != nil || user != "" {
					return user, secret, err
				}
			}
			if tokens != nil && host == tokens.host {
				pass, err := tokens.current(context.Background())
				if err != nil {
					return "", "", err
				}
				return "AWS", pass, nil
			}
			return "", "", nil
		},
	}
	if tokens == nil {
		return opts
	}
	if strings.HasPrefix(endpoint, "http://") {
		opts.PlainHTTPHosts = []string{tokens.host}
	} else if serverTLS != nil {
		host := tokens.host
		opts.TLS = func(h string) *tls.Config {
			if h == host {
				return serverTLS.Clone()
			}
			return nil
		}
	}
	return opts
}
