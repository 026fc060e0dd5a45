package acs_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/internal/acs"
	"github.com/berth-dev/berth/internal/agentproto"
	"github.com/berth-dev/berth/internal/arn"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/clock"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/ecsapi"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/store"
	"github.com/berth-dev/berth/internal/store/memstore"
	"github.com/berth-dev/berth/internal/store/watchcache"
)

// BenchmarkChannelScale connects many agents to one channel server (a
// memstore behind the watch-fed cache, as the server composes them) and
// reports the heap each connection costs and how long a burst of task
// assignments, written to the store, takes to reach the agents and be
// acknowledged. The agents are raw WebSockets that acknowledge every Sync;
// they live in the same process, so heap/conn counts both ends.
//
//	go test -run=NONE -bench=ChannelScale -benchtime=3x ./internal/acs
func BenchmarkChannelScale(b *testing.B) {
	for _, conns := range []int{500, 1000} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) { benchScale(b, conns, 1000) })
	}
}

func benchScale(b *testing.B, conns, burst int) {
	ctx := context.Background()
	mem := memstore.New()
	b.Cleanup(func() { _ = mem.Close() })
	cache, err := watchcache.New(ctx, mem, "/")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cache.Close)
	st := watchcache.NewCachedStore(mem, cache)
	creds := keys{credsOf(adminARN).AccessKeyID: adminARN}
	channel, err := acs.New(acs.Config{
		Store:      st,
		Instances:  ecsapi.Instances{Store: st, Clock: clock.Real{}, Region: region, AccountID: account},
		Verifier:   &sigv4.Verifier{Creds: creds, Region: region},
		Authorizer: iam.Builtin{AdminARN: adminARN, InstanceARNPrefix: iam.InstanceARNPrefix(account)},
		// The fake agents send no heartbeats.
		DisconnectAfter: time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(channel)
	b.Cleanup(func() {
		channel.Close()
		srv.Close()
	})

	// The records the channel reads: a task definition and the instances.
	tdKey := domain.TaskDefinitionKey("web", 1)
	td := domain.TaskDefinitionRecord{TaskDefinition: types.TaskDefinition{
		Family: aws.String("web"), Revision: 1, Status: types.TaskDefinitionStatusActive,
		TaskDefinitionArn: aws.String(arn.TaskDefinition(region, account, "web", 1)),
		ContainerDefinitions: []types.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("nginx:1.27"), Memory: aws.Int32(128), Essential: aws.Bool(true),
		}},
	}}
	ids := make([]string, conns)
	ops := []store.Op{mustPut(b, tdKey, td)}
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i+1)
		ops = append(ops, mustPut(b, domain.ContainerInstanceKey(cluster, ids[i]), domain.ContainerInstance{
			ID: ids[i], Cluster: cluster, Status: domain.InstanceStatusActive, RegisteredAt: time.Now(),
		}))
	}
	for len(ops) > 0 {
		n := min(len(ops), 100)
		if _, err := st.Txn(ctx, nil, ops[:n]); err != nil {
			b.Fatal(err)
		}
		ops = ops[n:]
	}

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	goroutinesBefore := runtime.NumGoroutine()

	var delivered atomic.Int64
	agents := make([]*fakeAgent, conns)
	for i, id := range ids {
		agents[i] = dialFake(b, srv.URL, id, &delivered)
	}
	for _, a := range agents {
		select {
		case <-a.synced:
		case <-time.After(time.Minute):
			b.Fatal("timed out waiting for the first full syncs")
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	heapPerConn := float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / float64(conns)
	stackPerConn := float64(int64(after.StackInuse)-int64(before.StackInuse)) / float64(conns)
	goroutinesPerConn := float64(runtime.NumGoroutine()-goroutinesBefore) / float64(conns)

	b.ResetTimer()
	var total time.Duration
	for n := range b.N {
		want := delivered.Load() + int64(burst)
		start := time.Now()
		writeTasks(b, st, ids, n, burst)
		deadline := time.Now().Add(5 * time.Minute)
		for delivered.Load() < want {
			if time.Now().After(deadline) {
				b.Fatalf("delivered %d of %d", delivered.Load()-want+int64(burst), burst)
			}
			<-time.After(time.Millisecond) // the next poll of the agents' counter
		}
		total += time.Since(start)
	}
	b.StopTimer()
	// After the loop: ResetTimer discards metrics reported before it.
	b.ReportMetric(heapPerConn, "heap-B/conn")
	b.ReportMetric(stackPerConn, "stack-B/conn")
	b.ReportMetric(goroutinesPerConn, "goroutines/conn")
	b.ReportMetric(total.Seconds()/float64(b.N), "s/burst")
	for _, a := range agents {
		_ = a.ws.Close()
		<-a.done
	}
}

// taskOps writes a new task assigned to instance inst, as RunTask does:
// the record and its index key.
func taskOps(tb testing.TB, inst, id string) []store.Op {
	rec := domain.TaskRecord{
		ID: id, Cluster: cluster, InstanceID: inst, Family: "web", Revision: 1, UpdatedAt: time.Now(),
		Task: types.Task{
			TaskArn:              aws.String(arn.Task(region, account, cluster, id)),
			ClusterArn:           aws.String(arn.Cluster(region, account, cluster)),
			ContainerInstanceArn: aws.String(arn.ContainerInstance(region, account, cluster, inst)),
			TaskDefinitionArn:    aws.String(arn.TaskDefinition(region, account, "web", 1)),
			DesiredStatus:        aws.String("RUNNING"), LastStatus: aws.String("PROVISIONING"),
			LaunchType: types.LaunchTypeEc2, Group: aws.String("family:web"), Version: 1,
			Containers: []types.Container{{
				Name: aws.String("app"), Image: aws.String("nginx:1.27"), LastStatus: aws.String("PENDING"),
				ContainerArn: aws.String(arn.Task(region, account, cluster, id) + "/app"),
			}},
		},
	}
	return []store.Op{mustPut(tb, domain.TaskKey(cluster, id), rec), store.Put(domain.InstanceTaskKey(cluster, inst, id), nil)}
}

func mustPut(tb testing.TB, key string, v any) store.Op {
	op, err := store.PutJSON(key, v)
	if err != nil {
		tb.Fatal(err)
	}
	return op
}

// writeTasks assigns burst new tasks round-robin to the instances, one
// transaction each (the record and its index key, as RunTask writes them),
// from 8 writers.
func writeTasks(b *testing.B, st store.Store, ids []string, round, burst int) {
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				inst := ids[i%len(ids)]
				ops := taskOps(b, inst, fmt.Sprintf("%016x%016x", round+1, i+1))
				if _, err := st.Txn(context.Background(), nil, ops); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range burst {
		work <- i
	}
	close(work)
	wg.Wait()
}

// fakeAgent is one raw channel that acknowledges every Sync and counts the
// tasks it has not seen before.
type fakeAgent struct {
	ws     *websocket.Conn
	synced chan struct{} // closed at the first Sync
	done   chan struct{}
}

func dialFake(b *testing.B, url, instanceID string, delivered *atomic.Int64) *fakeAgent {
	u := url + agentproto.ChannelPath + "?" + agentproto.ParamCluster + "=" + cluster + "&" + agentproto.ParamContainerInstance + "=" + instanceID
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if err := v4.NewSigner().SignHTTP(context.Background(), credsOf(adminARN), req, emptyHash, "ecs", region, time.Now()); err != nil {
		b.Fatal(err)
	}
	h := http.Header{}
	h.Set("Authorization", req.Header.Get("Authorization"))
	h.Set("X-Amz-Date", req.Header.Get("X-Amz-Date"))
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(u, "http"), h)
	if err != nil {
		b.Fatalf("dial: %v (%+v)", err, resp)
	}
	a := &fakeAgent{ws: ws, synced: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		seen := map[string]bool{}
		first := true
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			m, err := agentproto.Decode(msg)
			if err != nil || m.Type != agentproto.TypeSync {
				continue
			}
			for _, t := range m.Sync.Tasks {
				if !seen[t.TaskARN] {
					seen[t.TaskARN] = true
					delivered.Add(1)
				}
			}
			out, _ := agentproto.Encode(agentproto.Message{Type: agentproto.TypeAck, ID: m.ID, Ack: &agentproto.Ack{}})
			if err := ws.WriteMessage(websocket.TextMessage, out); err != nil {
				return
			}
			if first {
				first = false
				close(a.synced)
			}
		}
	}()
	return a
}
