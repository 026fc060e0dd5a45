// Package testcluster is an in-process berth cluster for tests: the real
// ECS API behind the real router (SigV4 included) over an in-memory store
// read through the watch-fed cache, as in production; the real service
// controller; a fake clock shared by both; and fake agents that report
// through the same API calls as the real agent. Nothing runs on its own:
// a test drives the controller (Reconcile), the agents (Step) and time
// (Advance), so every run takes the same path and needs no sleep.
package testcluster

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berth-dev/berth/internal/account"
	"github.com/berth-dev/berth/internal/agent/node"
	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/clock"
	"github.com/berth-dev/berth/internal/controller/service"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/ecsapi"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
	"github.com/berth-dev/berth/internal/store/watchcache"
)

// Start is the fake clock's time when a cluster is created.
var Start = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// Region of the cluster's account.
const Region = "us-east-1"

// Bounds of the drive loops: reaching one means the cluster never settles
// (a controller or agent that keeps changing something), a bug to report.
const (
	maxReconcileRounds = 100
	maxSettleRounds    = 500
)

// Cluster is one berth server in the test process with its agents.
type Cluster struct {
	// Name is the ECS cluster the instances join.
	Name string
	// Clock is shared by the API, the controller and the agents.
	Clock *clock.Fake
	// ECS is the user's client: the AWS SDK signing as the account's admin.
	ECS *ecs.Client
	// Store is the watch-fed cached store the API and the controller use.
	Store store.Store

	t         testing.TB
	ctx       context.Context
	mem       *memstore.Store
	acct      account.Account
	endpoint  string
	ctl       *service.Controller
	instances ecsapi.Instances
	agents    []*agent
	observers []func()
}

// New starts a cluster named "default" with no instances. Everything it
// starts is stopped by t's cleanup.
func New(t testing.TB) *Cluster {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	mem := memstore.New()
	t.Cleanup(func() { _ = mem.Close() })
	cache, err := watchcache.New(ctx, mem, "/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	st := watchcache.NewCachedStore(mem, cache)
	fc := clock.NewFake(Start)

	acct, err := account.Bootstrap(ctx, st, Region, fc.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, err := account.AdminKey(ctx, st, acct)
	if err != nil {
		t.Fatal(err)
	}
	authz := iam.Builtin{AdminARN: acct.AdminARN(), InstanceARNPrefix: iam.InstanceARNPrefix(acct.ID)}
	apiConfig := ecsapi.Config{Store: st, Authorizer: authz, Clock: fc, Region: acct.Region, AccountID: acct.ID}
	rt := &awsapi.Router{
		// The SDK signs with the wall clock; the verifier checks with it.
		Verifier: &sigv4.Verifier{Creds: account.NewKeys(st, acct), Region: acct.Region},
		JSON:     []*awsjson.Service{ecsapi.New(apiConfig)},
	}
	if err := rt.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)

	c := &Cluster{
		Name: domain.DefaultClusterName, Clock: fc, Store: st,
		t: t, ctx: ctx, mem: mem, acct: acct, endpoint: srv.URL,
		instances: ecsapi.Instances{Store: st, Clock: fc, Region: acct.Region, AccountID: acct.ID},
	}
	c.ECS = c.client(key.AccessKeyID, key.SecretAccessKey)
	c.ctl = service.New(service.Config{Store: st, Clock: fc, Launcher: ecsapi.NewServiceTasks(apiConfig)})
	if _, err := c.ECS.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(c.Name)}); err != nil {
		t.Fatal(err)
	}
	return c
}

// client is an SDK client of the cluster's API signing with a key.
func (c *Cluster) client(id, secret string) *ecs.Client {
	tr := &http.Transport{}
	c.t.Cleanup(tr.CloseIdleConnections)
	return ecs.New(ecs.Options{
		Region:       c.acct.Region,
		BaseEndpoint: aws.String(c.endpoint),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, nil
		}),
		// A retry would hide an error the test should see, and could run
		// a call twice.
		RetryMaxAttempts: 1,
		// Each request gets its own copy of the body: smithy-go closes it
		// when the response headers arrive, which on loopback can make
		// net/http close the connection under the body being read
		// (aws/aws-sdk-go-v2#2737, see node.BufferBodies).
		HTTPClient: &http.Client{Transport: node.BufferBodies(tr)},
	})
}

// Context is the context of the cluster's calls; it ends with the test.
func (c *Cluster) Context() context.Context { return c.ctx }

// Observe registers fn to be called after every change Step or Reconcile
// makes (each agent step, each controller round), so that a test can
// assert an invariant at every moment a user could look.
func (c *Cluster) Observe(fn func()) { c.observers = append(c.observers, fn) }

func (c *Cluster) observe() {
	for _, fn := range c.observers {
		fn()
	}
}

// revision is the store's current revision: unchanged means nothing was
// written.
func (c *Cluster) revision() int64 {
	rev, err := c.mem.Txn(c.ctx, nil, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return rev
}

// Advance moves the shared clock forward.
func (c *Cluster) Advance(d time.Duration) { c.Clock.Advance(d) }

// Reconcile runs the service controller's Reconcile for every stored
// service, round after round, until a round writes nothing; it reports
// whether anything was written. A reconcile error or a controller that
// never settles fails the test.
func (c *Cluster) Reconcile() bool {
	c.t.Helper()
	changed := false
	for range maxReconcileRounds {
		before := c.revision()
		kvs, _, err := c.Store.List(c.ctx, domain.AllServicesPrefix)
		if err != nil {
			c.t.Fatal(err)
		}
		for _, kv := range kvs {
			cluster, name, ok := domain.ParseServiceKey(kv.Key)
			if !ok {
				continue
			}
			if _, err := c.ctl.Reconcile(c.ctx, cluster, name); err != nil {
				c.t.Fatalf("reconcile service %s/%s: %v", cluster, name, err)
			}
		}
		if c.revision() == before {
			return changed
		}
		changed = true
		c.observe()
	}
	c.t.Fatalf("the service controller did not settle in %d rounds", maxReconcileRounds)
	return changed
}

// Settle plays the agents and the controller in turn until neither
// changes anything.
func (c *Cluster) Settle() {
	c.t.Helper()
	for range maxSettleRounds {
		stepped := c.Step()
		reconciled := c.Reconcile()
		if !stepped && !reconciled {
			return
		}
	}
	c.t.Fatalf("the cluster did not settle in %d rounds", maxSettleRounds)
}
