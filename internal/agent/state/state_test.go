package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/agent/hostports"
	"github.com/berth-dev/berth/internal/errdefs"
)

func openTemp(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", FileName)
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func reopen(t *testing.T, db *DB) *DB {
	t.Helper()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(db.Path())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db2.Close() })
	return db2
}

func intp(i int) *int { return &i }

func sampleTask(arn string) Task {
	return Task{
		ARN:           arn,
		DesiredStatus: "RUNNING",
		KnownStatus:   "RUNNING",
		Containers: []Container{
			{Name: "web", RuntimeID: "c-" + arn, KnownStatus: "RUNNING",
				PortBindings: []PortBinding{{ContainerPort: 8080, HostPort: 49160, Protocol: "tcp", BindIP: "0.0.0.0"}}},
			{Name: "init", RuntimeID: "c2-" + arn, KnownStatus: "STOPPED", ExitCode: intp(0)},
		},
		NetNSPath:     "/var/run/netns/" + arn,
		CredentialsID: "cred-" + arn,
		Extra:         json.RawMessage(`{"runner":{"attempt":2}}`),
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	db, path := openTemp(t)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode: %v, %v", fi, err)
	}
	if _, ok, err := db.Instance(); ok || err != nil {
		t.Errorf("fresh database has an instance: %v, %v", ok, err)
	}
	inst := Instance{
		ContainerInstanceARN: "arn:aws:ecs:us-east-1:123456789012:container-instance/default/abc",
		Cluster:              "default",
		Server:               "https://127.0.0.1:7400",
		RegisteredAt:         time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC),
	}
	if err := db.SetInstance(inst); err != nil {
		t.Fatal(err)
	}
	tasks := []Task{sampleTask("arn:task/a"), sampleTask("arn:task/b"), {ARN: "arn:task/c", DesiredStatus: "STOPPED"}}
	for _, tk := range tasks {
		if err := db.PutTask(tk); err != nil {
			t.Fatal(err)
		}
	}
	ports := map[string][]hostports.Binding{
		"arn:task/a": {{Proto: "tcp", HostPort: 49160}, {Proto: "udp", HostPort: 49160}},
		"arn:task/b": {{Proto: "tcp", HostPort: 8080}},
	}
	for o, bs := range ports {
		if err := db.PutPorts(o, bs); err != nil {
			t.Fatal(err)
		}
	}

	db = reopen(t, db)
	gotInst, ok, err := db.Instance()
	if err != nil || !ok {
		t.Fatalf("Instance() = %v, %v", ok, err)
	}
	if diff := cmp.Diff(inst, gotInst); diff != "" {
		t.Errorf("instance (-want +got):\n%s", diff)
	}
	gotTasks, err := db.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tasks, gotTasks); diff != "" {
		t.Errorf("tasks (-want +got):\n%s", diff)
	}
	one, ok, err := db.Task("arn:task/b")
	if err != nil || !ok {
		t.Fatalf("Task() = %v, %v", ok, err)
	}
	if diff := cmp.Diff(tasks[1], one); diff != "" {
		t.Errorf("task (-want +got):\n%s", diff)
	}
	if _, ok, err := db.Task("arn:task/none"); ok || err != nil {
		t.Errorf("unknown task: %v, %v", ok, err)
	}
	gotPorts, err := db.Ports()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ports, gotPorts); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}

	// Replace, delete, clear — and those survive a reopen too.
	updated := tasks[0]
	updated.KnownStatus = "STOPPED"
	updated.Containers[0].ExitCode = intp(137)
	if err := db.PutTask(updated); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteTask("arn:task/c"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteTask("arn:task/never"); err != nil {
		t.Errorf("deleting an unknown task: %v", err)
	}
	if err := db.DeletePorts("arn:task/a"); err != nil {
		t.Fatal(err)
	}
	if err := db.ClearInstance(); err != nil {
		t.Fatal(err)
	}
	db = reopen(t, db)
	gotTasks, err = db.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]Task{updated, tasks[1]}, gotTasks); diff != "" {
		t.Errorf("tasks after updates (-want +got):\n%s", diff)
	}
	gotPorts, err = db.Ports()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string][]hostports.Binding{"arn:task/b": ports["arn:task/b"]}, gotPorts); diff != "" {
		t.Errorf("ports after delete (-want +got):\n%s", diff)
	}
	if _, ok, err := db.Instance(); ok || err != nil {
		t.Errorf("instance after clear: %v, %v", ok, err)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	old := lockTimeout
	lockTimeout = 100 * time.Millisecond
	t.Cleanup(func() { lockTimeout = old })

	db, path := openTemp(t)
	_, err := Open(path)
	if !errors.Is(err, ErrLocked) || !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another berth agent") {
		t.Errorf("unclear lock error: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	db2.Close()
}

func TestConcurrentWriters(t *testing.T) {
	db, _ := openTemp(t)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each*2)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				arn := fmt.Sprintf("arn:task/w%d-%d", w, i)
				if err := db.PutTask(sampleTask(arn)); err != nil {
					errs <- err
				}
				if err := db.PutPorts(arn, []hostports.Binding{{Proto: "tcp", HostPort: uint16(40000 + w*each + i)}}); err != nil {
					errs <- err
				}
				if _, err := db.Tasks(); err != nil { // readers run beside writers
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	db = reopen(t, db)
	tasks, err := db.Tasks()
	if err != nil {
		t.Fatal(err)
	}
	ports, err := db.Ports()
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != writers*each || len(ports) != writers*each {
		t.Errorf("after concurrent writes: %d tasks, %d port owners; want %d each", len(tasks), len(ports), writers*each)
	}
}

// TestGroupCommit: writes queued together commit in one transaction; a bad
// one fails alone; a write queued during a commit is handed the lead.
func TestGroupCommit(t *testing.T) {
	db, _ := openTemp(t)
	raw, err := encode([]hostports.Binding{})
	if err != nil {
		t.Fatal(err)
	}
	put := func(key string) *write {
		return &write{done: make(chan writeResult, 1), fn: func(tx *bolt.Tx) error {
			return tx.Bucket(bucketPorts).Put([]byte(key), raw)
		}}
	}
	late := put("late")
	arrive := &write{done: make(chan writeResult, 1), fn: func(tx *bolt.Tx) error {
		db.mu.Lock() // as update does, while the batch commits
		db.pending = append(db.pending, late)
		db.mu.Unlock()
		return tx.Bucket(bucketPorts).Put([]byte("b"), raw)
	}}
	bad := put("") // bolt refuses an empty key
	db.pending, db.committing = []*write{put("a"), bad, arrive}, true
	batch := db.pending
	db.commitPending()
	for i, w := range batch {
		res := <-w.done
		if (res.err != nil) != (w == bad) || res.lead {
			t.Errorf("write %d: %+v", i, res)
		}
	}
	if res := <-late.done; !res.lead {
		t.Fatalf("the write queued during the commit got %+v, not the lead", res)
	}
	db.commitPending() // as the new leader does
	if res := <-late.done; res.err != nil {
		t.Fatal(res.err)
	}
	if db.committing || len(db.pending) != 0 {
		t.Errorf("after the queue drained: committing %v, %d pending", db.committing, len(db.pending))
	}
	ports, err := db.Ports()
	if err != nil {
		t.Fatal(err)
	}
	if len(ports) != 3 {
		t.Errorf("owners %v, want a, b and late", ports)
	}
}

// putRaw writes bytes under a key behind the API's back.
func putRaw(t *testing.T, db *DB, bucket []byte, key string, raw []byte) {
	t.Helper()
	if err := db.bolt.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(key), raw) }); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptRecords(t *testing.T) {
	tests := []struct {
		name string
		raw  []byte
		// envelope: the envelope itself is bad, so every reader fails;
		// otherwise only the readers whose data type does not fit do.
		envelope bool
	}{
		{"not JSON", []byte("\x00\xffgarbage"), true},
		{"truncated", []byte(`{"v":1,"data":{"arn":"x"`), true},
		{"no version", []byte(`{"data":{"arn":"x"}}`), true},
		{"newer version", []byte(`{"v":99,"data":{"arn":"x"}}`), true},
		{"no data", []byte(`{"v":1}`), true},
		{"bare record", []byte(`{"arn":"x"}`), true},
		{"empty", []byte{}, true},
		{"object where a list belongs", []byte(`{"v":1,"data":{"arn":"x","containers":{}}}`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, _ := openTemp(t)
			if err := db.PutTask(sampleTask("arn:task/good")); err != nil {
				t.Fatal(err)
			}
			putRaw(t, db, bucketTasks, "arn:task/bad", tt.raw)
			putRaw(t, db, bucketPorts, "arn:task/bad", tt.raw)
			putRaw(t, db, bucketInstance, string(keyInstance), tt.raw)

			check := func(what string, err error, names bool) {
				t.Helper()
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("%s: err = %v, want ErrCorrupt", what, err)
					return
				}
				if names && !strings.Contains(err.Error(), "arn:task/bad") {
					t.Errorf("%s: error %q does not name the record", what, err)
				}
			}
			_, err := db.Tasks()
			check("Tasks", err, true)
			_, _, err = db.Task("arn:task/bad")
			check("Task", err, true)
			_, err = db.Ports()
			check("Ports", err, true)
			if tt.envelope {
				_, _, err = db.Instance()
				check("Instance", err, false)
			}

			// The damaged record can be removed, and the rest is intact.
			if err := db.DeleteTask("arn:task/bad"); err != nil {
				t.Fatal(err)
			}
			tasks, err := db.Tasks()
			if err != nil || len(tasks) != 1 || tasks[0].ARN != "arn:task/good" {
				t.Errorf("after deleting the bad record: %v, %v", tasks, err)
			}
		})
	}
}

func TestCorruptOrForeignFile(t *testing.T) {
	page := os.Getpagesize()
	junk := make([]byte, 4*page)
	for i := range junk {
		junk[i] = byte(i*7 + 3)
	}
	for name, content := range map[string][]byte{
		"text":          []byte("ECS_CLUSTER=default\n"),
		"junk pages":    junk,
		"one junk page": junk[:page],
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), FileName)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			db, err := Open(path)
			if err == nil {
				db.Close()
				t.Fatal("opened a file that is not a database")
			}
			if !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %v: want a clear ErrFailedPrecondition naming the file", err)
			}
		})
	}
	// An empty file (a crash right after creation) becomes a new database.
	path := filepath.Join(t.TempDir(), FileName)
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Open(path)
	if err != nil {
		t.Fatalf("empty file: %v", err)
	}
	db.Close()
}

func TestNewerSchemaRefused(t *testing.T) {
	db, path := openTemp(t)
	putRaw(t, db, bucketMeta, string(keySchema), []byte("2"))
	db.Close()
	if _, err := Open(path); !errors.Is(err, ErrNewerSchema) || !strings.Contains(err.Error(), "upgrade") {
		t.Errorf("Open of a newer schema = %v", err)
	}
	db2, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db2.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keySchema, []byte("x")) }); err != nil {
		t.Fatal(err)
	}
	db2.Close()
	if _, err := Open(path); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Open with a garbled schema = %v", err)
	}
}

func TestValidation(t *testing.T) {
	db, _ := openTemp(t)
	for name, err := range map[string]error{
		"task without ARN":     db.PutTask(Task{}),
		"task with bad Extra":  db.PutTask(Task{ARN: "a", Extra: json.RawMessage("{")}),
		"instance without ARN": db.SetInstance(Instance{Cluster: "default"}),
		"ports without owner":  db.PutPorts("", nil),
	} {
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestClosedDatabase(t *testing.T) {
	db, _ := openTemp(t)
	db.Close()
	if err := db.PutTask(sampleTask("a")); err == nil {
		t.Error("write to a closed database succeeded")
	}
	if _, err := db.Tasks(); err == nil {
		t.Error("read from a closed database succeeded")
	}
}

// TestHostPortsSurviveRestart is the agent-restart path: an allocator
// persisting through the DB, a restart, and Restore gives the same ports.
func TestHostPortsSurviveRestart(t *testing.T) {
	db, _ := openTemp(t)
	free := func(string, uint16) bool { return true }
	a, err := hostports.New(hostports.Config{DynamicRange: hostports.Range{First: 50000, Last: 50010}, Probe: free, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve("arn:task/a", []hostports.PortRequest{{Proto: "tcp"}, {Proto: "udp", HostPort: 5353}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve("arn:task/b", []hostports.PortRequest{{Proto: "tcp"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve("arn:task/c", []hostports.PortRequest{{Proto: "tcp"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.Release("arn:task/c"); err != nil {
		t.Fatal(err)
	}
	before := a.Allocations()

	db = reopen(t, db) // the agent restarts
	stored, err := db.Ports()
	if err != nil {
		t.Fatal(err)
	}
	a2, err := hostports.New(hostports.Config{DynamicRange: hostports.Range{First: 50000, Last: 50010}, Probe: free, Store: db})
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.Restore(stored); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, a2.Allocations()); diff != "" {
		t.Errorf("ports changed across a restart (-before +after):\n%s", diff)
	}
}

func FuzzDecodeTask(f *testing.F) {
	good, _ := encode(sampleTask("arn:task/a"))
	f.Add(good)
	f.Add([]byte(`{"v":1,"data":{"arn":"x","containers":[{"name":"c","exitCode":3}]}}`))
	f.Add([]byte(`{"v":2,"data":{}}`))
	f.Add([]byte(`{"v":1,"data":null}`))
	f.Add([]byte("\x00"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var tk Task
		if err := decode(raw, &tk); err != nil {
			return
		}
		// What decodes re-encodes and decodes to the same record.
		again, err := encode(tk)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var tk2 Task
		if err := decode(again, &tk2); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(normalizeExtra(tk), normalizeExtra(tk2), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

// normalizeExtra compacts Extra, which json.Marshal re-indents.
func normalizeExtra(t Task) Task {
	if len(t.Extra) > 0 {
		var v any
		if json.Unmarshal(t.Extra, &v) == nil {
			t.Extra, _ = json.Marshal(v)
		}
	}
	return t
}

func TestIdentityRoundTrip(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, ok, err := db.Identity(); ok || err != nil {
		t.Fatalf("empty db: ok=%v err=%v", ok, err)
	}
	if err := db.SetIdentity(Identity{AccessKeyID: "AKIA"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("incomplete identity accepted: %v", err)
	}
	want := Identity{AccessKeyID: "AKIA1", SecretAccessKey: "s", Region: "us-east-1", Endpoint: "http://127.0.0.1:7400", Cluster: "default"}
	if err := db.SetIdentity(want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := db.Identity()
	if err != nil || !ok || got != want {
		t.Fatalf("got %+v ok=%v err=%v", got, ok, err)
	}
	if _, ok, _ := db.Instance(); ok {
		t.Fatal("the identity must not read as an instance record")
	}
}
