package acs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/internal/agentproto"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/store"
)

// maxDefs bounds a connection's cache of task definitions; past it the
// cache starts over.
const maxDefs = 256

// conn is one agent's channel. Only run's goroutine touches its fields
// (the reader goroutine talks to it through channels), and only it writes
// to the socket.
type conn struct {
	s          *Server
	ws         *websocket.Conn
	cluster    string
	instanceID string
	needle     []byte // the instance id, to skip other instances' tasks cheaply
	log        *slog.Logger

	tasks   map[string]*entry   // by task id: what the agent has been told
	pending map[string]*pending // unacknowledged Syncs by id
	nextID  uint64
	defs    map[string]types.TaskDefinition // by family:revision
}

// entry is the latest state of one task of the instance.
type entry struct {
	task agentproto.Task
	// stopped: the task is STOPPED; it is told once, left out of full
	// Syncs, and forgotten once no pending Sync names it.
	stopped bool
}

// pending is a Sync awaiting its Ack. A resend carries the current state
// of the same tasks (all tasks, for a full Sync) under the same id.
type pending struct {
	full     bool
	ids      []string
	deadline time.Time
}

func newConn(s *Server, ws *websocket.Conn, ci domain.ContainerInstance, log *slog.Logger) *conn {
	return &conn{
		s: s, ws: ws, cluster: ci.Cluster, instanceID: ci.ID, needle: []byte(`"` + ci.ID + `"`), log: log,
		tasks: map[string]*entry{}, pending: map[string]*pending{}, defs: map[string]types.TaskDefinition{},
	}
}

// run serves the connection until ctx ends or the connection fails; it
// returns why.
func (c *conn) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.ws.SetReadLimit(agentproto.MaxMessageBytes)
	acks := make(chan string)
	readDone := make(chan error, 1)
	go func() { readDone <- c.read(ctx, acks) }()
	defer func() {
		// Closing the socket ends a read in progress; the reader then
		// finds ctx done.
		cancel()
		_ = c.ws.Close()
		<-readDone
	}()

	watch, stopWatch, err := c.resync(ctx)
	if err != nil {
		return err
	}
	defer func() { stopWatch() }()
	heartbeat := time.NewTicker(c.s.cfg.HeartbeatInterval)
	defer heartbeat.Stop()
	resend := time.NewTicker(max(c.s.cfg.AckTimeout/4, time.Millisecond))
	defer resend.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readDone:
			readDone <- err // for the deferred wait
			return err
		case id := <-acks:
			c.ack(id)
		case resp, ok := <-watch:
			if ok && resp.Err == nil {
				if err := c.changed(ctx, resp.Events); err != nil {
					return err
				}
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Compacted, or the store's stream broke: read everything
			// again and tell the agent all of it.
			c.log.Info("agent channel: watch ended, resyncing", "error", resp.Err)
			stopWatch()
			if watch, stopWatch, err = c.resync(ctx); err != nil {
				return err
			}
		case <-heartbeat.C:
			if err := c.write(agentproto.Message{Type: agentproto.TypeHeartbeat, Heartbeat: &agentproto.Heartbeat{SentAt: c.s.cfg.Clock.Now().UTC()}}); err != nil {
				return err
			}
		case <-resend.C:
			if err := c.resendDue(); err != nil {
				return err
			}
		}
	}
}

// read reads the agent's frames until the connection fails or is silent
// for DisconnectAfter. Acks go to run; health is applied here, so a slow
// store delays reading, not the Syncs.
func (c *conn) read(ctx context.Context, acks chan<- string) error {
	for {
		if err := c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.DisconnectAfter)); err != nil {
			return err
		}
		typ, b, err := c.ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read: %w", err)
		}
		if typ != websocket.TextMessage {
			continue
		}
		m, err := agentproto.Decode(b)
		if err != nil {
			// Liveness counts; a frame a newer agent sends is not fatal.
			c.log.Warn("agent channel: malformed frame ignored", "error", err)
			continue
		}
		switch m.Type {
		case agentproto.TypeAck:
			select {
			case acks <- m.ID:
			case <-ctx.Done():
				return ctx.Err()
			}
		case agentproto.TypeHealth:
			c.health(ctx, m.Health)
		}
	}
}

func (c *conn) health(ctx context.Context, h *agentproto.Health) {
	containers := make(map[string]types.HealthStatus, len(h.Containers))
	for name, st := range h.Containers {
		containers[name] = types.HealthStatus(st)
	}
	if err := c.s.cfg.Instances.ReportHealth(ctx, c.cluster, c.instanceID, h.TaskARN, containers); err != nil && ctx.Err() == nil {
		c.log.Warn("agent channel: health not recorded", "task", h.TaskARN, "error", err)
	}
}

// resync reads the instance's tasks, sends them as a full Sync and watches
// from the revision they were read at, so no later change is missed.
func (c *conn) resync(ctx context.Context) (<-chan store.WatchResponse, context.CancelFunc, error) {
	assigned, rev, err := c.s.cfg.Instances.AssignedTasks(ctx, c.cluster, c.instanceID)
	if err != nil {
		return nil, nil, fmt.Errorf("read the instance's tasks: %w", err)
	}
	c.tasks = make(map[string]*entry, len(assigned))
	clear(c.pending)
	for _, a := range assigned {
		c.tasks[a.Record.ID] = &entry{task: toTask(&a.Record, a.ModRevision, a.TaskDefinition)}
	}
	wctx, stop := context.WithCancel(ctx)
	watch := c.s.cfg.Store.Watch(wctx, domain.TasksPrefix(c.cluster), rev)
	if err := c.push(true, nil); err != nil {
		stop()
		return nil, nil, err
	}
	return watch, stop, nil
}

// changed folds store events into the tasks and sends the tasks whose
// desired state changed.
func (c *conn) changed(ctx context.Context, events []store.Event) error {
	var ids []string
	for _, ev := range events {
		_, id, ok := domain.ParseTaskKey(ev.KV.Key)
		if !ok {
			continue
		}
		if ev.Type == store.EventDelete {
			// Reaped long after it stopped; nothing to tell.
			if e := c.tasks[id]; e != nil && !c.referenced(id) {
				delete(c.tasks, id)
			}
			continue
		}
		if !bytes.Contains(ev.KV.Value, c.needle) {
			continue // another instance's task
		}
		var t domain.TaskRecord
		if err := json.Unmarshal(ev.KV.Value, &t); err != nil {
			c.log.Warn("agent channel: undecodable task record", "key", ev.KV.Key, "error", err)
			continue
		}
		if t.InstanceID != c.instanceID {
			continue
		}
		stopped := aws.ToString(t.Task.LastStatus) == domain.TaskStatusStopped
		old := c.tasks[id]
		switch {
		case old == nil && stopped:
			continue // never told, and nothing left to do
		case old != nil && old.task.Revision >= ev.KV.ModRevision:
			continue // already read at this revision or later
		}
		td, err := c.taskDefinition(ctx, t.Family, t.Revision)
		if err != nil {
			return err
		}
		task := toTask(&t, ev.KV.ModRevision, td)
		if old != nil && old.task.DesiredStatus == task.DesiredStatus && old.task.StopCode == task.StopCode && old.task.StoppedReason == task.StoppedReason {
			// A report the agent made itself: nothing new to act on.
			old.task.Revision = task.Revision
			if old.stopped = stopped; stopped && !c.referenced(id) {
				delete(c.tasks, id)
			}
			continue
		}
		c.tasks[id] = &entry{task: task, stopped: stopped}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if len(c.pending) >= maxPending {
		// The agent is not acknowledging; one full Sync replaces the lot.
		clear(c.pending)
		return c.push(true, nil)
	}
	return c.push(false, ids)
}

func (c *conn) taskDefinition(ctx context.Context, family string, revision int32) (types.TaskDefinition, error) {
	k := family + ":" + strconv.Itoa(int(revision))
	if td, ok := c.defs[k]; ok {
		return td, nil
	}
	td, err := c.s.cfg.Instances.TaskDefinition(ctx, family, revision)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return td, err
	}
	if len(c.defs) >= maxDefs {
		clear(c.defs)
	}
	c.defs[k] = td // immutable but for status and tags, which tasks do not use
	return td, nil
}

// push sends a new Sync (full, or of the tasks ids) and awaits its Ack.
func (c *conn) push(full bool, ids []string) error {
	c.nextID++
	id := strconv.FormatUint(c.nextID, 10)
	p := &pending{full: full, ids: ids}
	c.pending[id] = p
	return c.send(id, p)
}

// send writes the current state of p's tasks under id and sets its
// deadline.
func (c *conn) send(id string, p *pending) error {
	sync := &agentproto.Sync{Full: p.full, Tasks: []agentproto.Task{}}
	if p.full {
		for _, e := range c.tasks {
			if !e.stopped {
				sync.Tasks = append(sync.Tasks, e.task)
			}
		}
	} else {
		for _, tid := range p.ids {
			if e := c.tasks[tid]; e != nil {
				sync.Tasks = append(sync.Tasks, e.task)
			}
		}
	}
	slices.SortFunc(sync.Tasks, func(a, b agentproto.Task) int { return strings.Compare(a.TaskARN, b.TaskARN) })
	p.deadline = time.Now().Add(c.s.cfg.AckTimeout)
	return c.write(agentproto.Message{Type: agentproto.TypeSync, ID: id, Sync: sync})
}

// ack settles a Sync and forgets the stopped tasks nothing pending names.
func (c *conn) ack(id string) {
	p, ok := c.pending[id]
	if !ok {
		return // a duplicate, or a Sync a resync superseded
	}
	delete(c.pending, id)
	for _, tid := range p.ids {
		if e := c.tasks[tid]; e != nil && e.stopped && !c.referenced(tid) {
			delete(c.tasks, tid)
		}
	}
	if p.full {
		for tid, e := range c.tasks {
			if e.stopped && !c.referenced(tid) {
				delete(c.tasks, tid)
			}
		}
	}
}

// referenced reports whether a pending partial Sync names task id.
func (c *conn) referenced(id string) bool {
	for _, p := range c.pending {
		if slices.Contains(p.ids, id) {
			return true
		}
	}
	return false
}

// resendDue sends again every Sync not acknowledged in time.
func (c *conn) resendDue() error {
	now := time.Now()
	for id, p := range c.pending {
		if now.Before(p.deadline) {
			continue
		}
		c.log.Debug("agent channel: resending unacknowledged sync", "id", id)
		if err := c.send(id, p); err != nil {
			return err
		}
	}
	return nil
}

// write sends one frame within WriteTimeout.
func (c *conn) write(m agentproto.Message) error {
	b, err := agentproto.Encode(m)
	if err != nil {
		return err
	}
	if len(b) > agentproto.MaxMessageBytes {
		return fmt.Errorf("a %s message of %d bytes exceeds the channel's limit of %d", m.Type, len(b), agentproto.MaxMessageBytes)
	}
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout)); err != nil {
		return err
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// toTask is the desired state of a task as the agent receives it.
func toTask(t *domain.TaskRecord, rev int64, td types.TaskDefinition) agentproto.Task {
	arns := make(map[string]string, len(t.Task.Containers))
	for _, ct := range t.Task.Containers {
		arns[aws.ToString(ct.Name)] = aws.ToString(ct.ContainerArn)
	}
	return agentproto.Task{
		TaskARN:        t.ARN(),
		Revision:       rev,
		DesiredStatus:  aws.ToString(t.Task.DesiredStatus),
		TaskDefinition: td,
		Overrides:      t.Task.Overrides,
		ContainerARNs:  arns,
		Group:          aws.ToString(t.Task.Group),
		StartedBy:      aws.ToString(t.Task.StartedBy),
		LaunchType:     string(t.Task.LaunchType),
		StopCode:       string(t.Task.StopCode),
		StoppedReason:  aws.ToString(t.Task.StoppedReason),
	}
}
