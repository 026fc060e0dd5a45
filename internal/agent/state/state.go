// Package state is the node agent's local, persistent memory: which
// container instance it registered as and with which server, the tasks it
// runs (with their containers' runtime ids, network namespace, host ports
// and credentials id) and its host-port allocations. A restarted agent reads
// it to adopt its running containers instead of losing or duplicating them.
//
// It lives in one bbolt file, <ECS_DATADIR>/agent.db. Every write is one
// bbolt transaction, fsynced before it returns, so a crash loses nothing
// that was acknowledged. bbolt's file lock keeps a second agent off the
// same data directory. Records are versioned JSON, so a newer agent can
// read an older file and an older agent refuses a newer one.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/berth-dev/berth/internal/agent/hostports"
	"github.com/berth-dev/berth/internal/errdefs"
)

// FileName is the database's name inside ECS_DATADIR.
const FileName = "agent.db"

// SchemaVersion is the layout this code writes. Records carry it too.
const SchemaVersion = 1

// Reasons carried by this package's errors.
var (
	// ErrLocked: another process (another agent) has the database open.
	ErrLocked = errors.New("agent state is locked by another process")
	// ErrCorrupt: a record, or the file itself, cannot be read.
	ErrCorrupt = errors.New("agent state is corrupt")
	// ErrNewerSchema: the file was written by a newer berth.
	ErrNewerSchema = errors.New("agent state written by a newer berth")
)

// lockTimeout is how long Open waits for another process to let go of the
// file: long enough for a restarting agent's predecessor to exit.
var lockTimeout = 2 * time.Second

var (
	bucketMeta     = []byte("meta")
	bucketInstance = []byte("instance")
	bucketTasks    = []byte("tasks")
	bucketPorts    = []byte("ports")

	keySchema   = []byte("schema")
	keyInstance = []byte("instance")
	keyIdentity = []byte("identity")
)

// DB is the agent's state database. It is safe for concurrent use.
type DB struct {
	bolt *bolt.DB
	path string

	// Group commit: bolt commits one writer at a time, each with its
	// fsyncs, and a burst of task starts saves many records at once.
	// Writes that arrive while a commit runs wait in pending and go in
	// the next commit together; a write that finds none running commits
	// at once, so nothing is delayed to gather a batch.
	mu         sync.Mutex
	pending    []*write
	committing bool
}

// write is one queued change; done gets its result, or lead when its
// writer is to commit the queue.
type write struct {
	fn   func(*bolt.Tx) error
	done chan writeResult
}

type writeResult struct {
	err  error
	lead bool
}

// Open opens (creating if needed) the database at path, creating its
// directory 0700. If another process holds it, Open fails after a short
// wait with an error of reason ErrLocked.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, &errdefs.Error{Kind: errdefs.ErrFailedPrecondition, Message: "agent state: cannot create the directory of " + path, Cause: err}
	}
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, &errdefs.Error{Kind: errdefs.ErrFailedPrecondition, Reason: ErrLocked,
			Message: "agent state " + path + " is locked by another process: is another berth agent using this ECS_DATADIR?"}
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrVersionMismatch):
		return nil, &errdefs.Error{Kind: errdefs.ErrFailedPrecondition, Reason: ErrCorrupt,
			Message: "agent state " + path + " is not a berth agent database or is damaged", Cause: err}
	case err != nil:
		return nil, &errdefs.Error{Kind: errdefs.ErrFailedPrecondition, Message: "agent state: cannot open " + path, Cause: err}
	}
	db := &DB{bolt: b, path: path}
	if err := db.init(); err != nil {
		b.Close()
		return nil, err
	}
	return db, nil
}

func (d *DB) init() error {
	return d.bolt.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketInstance, bucketTasks, bucketPorts} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		raw := meta.Get(keySchema)
		if raw == nil {
			return meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
		}
		v, err := strconv.Atoi(string(raw))
		switch {
		case err != nil || v < 1:
			return d.corrupt("schema version", fmt.Errorf("%q", raw))
		case v > SchemaVersion:
			return &errdefs.Error{Kind: errdefs.ErrFailedPrecondition, Reason: ErrNewerSchema,
				Message: fmt.Sprintf("agent state %s has schema %d; this berth understands up to %d: upgrade berth", d.path, v, SchemaVersion)}
		}
		return nil
	})
}

// Close releases the database and its lock.
func (d *DB) Close() error { return d.bolt.Close() }

// Path is the database file.
func (d *DB) Path() string { return d.path }

func (d *DB) corrupt(what string, cause error) error {
	return &errdefs.Error{Kind: errdefs.ErrInternal, Reason: ErrCorrupt,
		Message: fmt.Sprintf("agent state %s: %s is corrupt", d.path, what), Cause: cause}
}

// envelope wraps every record with its schema version.
type envelope struct {
	V    int             `json:"v"`
	Data json.RawMessage `json:"data"`
}

func encode(v any) ([]byte, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return json.Marshal(envelope{V: SchemaVersion, Data: data})
}

// decode reads a record; the error is plain, the caller names the record.
func decode(raw []byte, into any) error {
	var e envelope
	if err := json.Unmarshal(raw, &e); err != nil {
		return err
	}
	switch {
	case e.V < 1:
		return errors.New("no record version")
	case e.V > SchemaVersion:
		return fmt.Errorf("record version %d is newer than this berth's %d", e.V, SchemaVersion)
	case len(e.Data) == 0:
		return errors.New("no data")
	}
	return json.Unmarshal(e.Data, into)
}

func (d *DB) put(bucket, key []byte, v any) error {
	raw, err := encode(v)
	if err != nil {
		return errdefs.Internal(err)
	}
	return d.update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put(key, raw) })
}

func (d *DB) del(bucket, key []byte) error {
	return d.update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete(key) })
}

// update applies fn in a write transaction, committed alone or with the
// writes queued beside it; it returns once fn's change is durable.
func (d *DB) update(fn func(*bolt.Tx) error) error {
	w := &write{fn: fn, done: make(chan writeResult, 1)}
	d.mu.Lock()
	d.pending = append(d.pending, w)
	lead := !d.committing
	d.committing = true
	d.mu.Unlock()
	if !lead {
		res := <-w.done
		if !res.lead {
			return res.err
		}
	}
	d.commitPending()
	res := <-w.done
	if res.err != nil {
		return &errdefs.Error{Kind: errdefs.ErrUnavailable, Message: "agent state " + d.path + ": write failed", Cause: res.err}
	}
	return nil
}

// commitPending commits the queue (which holds the leader's own write) in
// one transaction, then hands the lead to the first write queued
// meanwhile, if any. When the batch fails, each write is retried alone so
// that one bad write does not fail the others.
func (d *DB) commitPending() {
	d.mu.Lock()
	batch := d.pending
	d.pending = nil
	d.mu.Unlock()
	err := d.bolt.Update(func(tx *bolt.Tx) error {
		for _, w := range batch {
			if err := w.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	for _, w := range batch {
		if err != nil && len(batch) > 1 {
			w.done <- writeResult{err: d.bolt.Update(w.fn)}
			continue
		}
		w.done <- writeResult{err: err}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) == 0 {
		d.committing = false
		return
	}
	d.pending[0].done <- writeResult{lead: true}
}

// Instance is the agent's registration.
type Instance struct {
	// ContainerInstanceARN is what RegisterContainerInstance returned.
	ContainerInstanceARN string `json:"containerInstanceArn"`
	// Cluster is the cluster it joined.
	Cluster string `json:"cluster,omitempty"`
	// Server is the URL of the server it registered with; an agent pointed
	// at another server registers afresh.
	Server string `json:"server,omitempty"`
	// RegisteredAt is when it registered.
	RegisteredAt time.Time `json:"registeredAt,omitzero"`
}

// Instance returns the stored registration; ok is false when there is none.
func (d *DB) Instance() (inst Instance, ok bool, err error) {
	err = d.bolt.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketInstance).Get(keyInstance)
		if raw == nil {
			return nil
		}
		if err := decode(raw, &inst); err != nil {
			return d.corrupt("the instance record", err)
		}
		ok = true
		return nil
	})
	return inst, ok, err
}

// SetInstance stores the registration.
func (d *DB) SetInstance(inst Instance) error {
	if inst.ContainerInstanceARN == "" {
		return errdefs.InvalidArgument("agent state: an instance record needs its container instance ARN")
	}
	return d.put(bucketInstance, keyInstance, inst)
}

// ClearInstance forgets the registration (after deregistration).
func (d *DB) ClearInstance() error { return d.del(bucketInstance, keyInstance) }

// Identity is what the agent got for its join token: its own credentials
// and where to use them. The database file is private to root (0600).
type Identity struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	AccountID       string `json:"accountId,omitempty"`
	Region          string `json:"region"`
	Cluster         string `json:"cluster,omitempty"`
	Endpoint        string `json:"endpoint"`
	UserARN         string `json:"userArn,omitempty"`
	CAPin           string `json:"caPin,omitempty"`
}

// Identity returns the stored identity; ok is false when there is none.
func (d *DB) Identity() (id Identity, ok bool, err error) {
	err = d.bolt.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketInstance).Get(keyIdentity)
		if raw == nil {
			return nil
		}
		if err := decode(raw, &id); err != nil {
			return d.corrupt("the identity record", err)
		}
		ok = true
		return nil
	})
	return id, ok, err
}

// SetIdentity stores the identity.
func (d *DB) SetIdentity(id Identity) error {
	if id.AccessKeyID == "" || id.SecretAccessKey == "" || id.Endpoint == "" {
		return errdefs.InvalidArgument("agent state: an identity needs an access key, its secret and an endpoint")
	}
	return d.put(bucketInstance, keyIdentity, id)
}

// Task is what the agent keeps about one task. Runner-specific detail that
// state need not understand goes in Extra.
type Task struct {
	ARN           string      `json:"arn"`
	DesiredStatus string      `json:"desiredStatus,omitempty"`
	KnownStatus   string      `json:"knownStatus,omitempty"`
	Containers    []Container `json:"containers,omitempty"`
	// NetNSPath is the task's network namespace (awsvpc) or empty.
	NetNSPath string `json:"netnsPath,omitempty"`
	// CredentialsID keys the task's role credentials on the endpoint.
	CredentialsID string `json:"credentialsId,omitempty"`
	// Extra is opaque to this package and kept as given.
	Extra json.RawMessage `json:"extra,omitempty"`
}

// Container is one container of a task.
type Container struct {
	Name string `json:"name"`
	// RuntimeID is the runtime's container id; empty before creation.
	RuntimeID    string        `json:"runtimeId,omitempty"`
	KnownStatus  string        `json:"knownStatus,omitempty"`
	ExitCode     *int          `json:"exitCode,omitempty"`
	PortBindings []PortBinding `json:"portBindings,omitempty"`
}

// PortBinding maps a container port to a host port (ECS's networkBindings).
type PortBinding struct {
	ContainerPort uint16 `json:"containerPort"`
	HostPort      uint16 `json:"hostPort"`
	Protocol      string `json:"protocol"`
	BindIP        string `json:"bindIp,omitempty"`
}

// PutTask stores a task, replacing the record of the same ARN.
func (d *DB) PutTask(t Task) error {
	if t.ARN == "" {
		return errdefs.InvalidArgument("agent state: a task record needs its ARN")
	}
	if len(t.Extra) > 0 && !json.Valid(t.Extra) {
		return errdefs.InvalidArgument("agent state: task " + t.ARN + ": Extra is not valid JSON")
	}
	return d.put(bucketTasks, []byte(t.ARN), t)
}

// DeleteTask forgets a task; forgetting an unknown one is not an error.
func (d *DB) DeleteTask(arn string) error { return d.del(bucketTasks, []byte(arn)) }

// Task returns one task; ok is false when it is unknown.
func (d *DB) Task(arn string) (t Task, ok bool, err error) {
	err = d.bolt.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketTasks).Get([]byte(arn))
		if raw == nil {
			return nil
		}
		if err := decode(raw, &t); err != nil {
			return d.corrupt(fmt.Sprintf("the record of task %q", arn), err)
		}
		ok = true
		return nil
	})
	return t, ok, err
}

// Tasks returns every task, ordered by ARN. One unreadable record fails the
// whole call, naming it: an agent must not silently forget a task whose
// containers may still run. DeleteTask removes such a record.
func (d *DB) Tasks() ([]Task, error) {
	var out []Task
	err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTasks).ForEach(func(k, raw []byte) error {
			var t Task
			if err := decode(raw, &t); err != nil {
				return d.corrupt(fmt.Sprintf("the record of task %q", k), err)
			}
			out = append(out, t)
			return nil
		})
	})
	return out, err
}

// PutPorts stores the host ports owner holds (hostports.Persister).
func (d *DB) PutPorts(owner string, bindings []hostports.Binding) error {
	if owner == "" {
		return errdefs.InvalidArgument("agent state: host ports need an owner")
	}
	return d.put(bucketPorts, []byte(owner), slices.Clone(bindings))
}

// DeletePorts forgets owner's host ports (hostports.Persister).
func (d *DB) DeletePorts(owner string) error { return d.del(bucketPorts, []byte(owner)) }

// Ports returns the allocation table, for hostports.Allocator.Restore.
func (d *DB) Ports() (map[string][]hostports.Binding, error) {
	out := map[string][]hostports.Binding{}
	err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPorts).ForEach(func(k, raw []byte) error {
			var bs []hostports.Binding
			if err := decode(raw, &bs); err != nil {
				return d.corrupt(fmt.Sprintf("the host ports of %q", k), err)
			}
			out[string(k)] = bs
			return nil
		})
	})
	return out, err
}

var _ hostports.Persister = (*DB)(nil)
