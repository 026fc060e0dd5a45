package acs

import (
	"context"
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
	"github.com/berth-dev/berth/internal/store"
)

// conn is one agent's channel. Only run's goroutine touches its fields
// (the reader goroutine talks to it through channels, the hub through the
// inbox), and only it writes to the socket.
type conn struct {
	s          *Server
	ws         *websocket.Conn
	cluster    string
	instanceID string
	in         *inbox
	log        *slog.Logger

	tasks   map[string]*entry   // by task id: what the agent has been told
	pending map[string]*pending // unacknowledged Syncs by id
	nextID  uint64
	// readRev is the revision of the last full read: changes at or below
	// it are already in tasks.
	readRev int64
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
		s: s, ws: ws, cluster: ci.Cluster, instanceID: ci.ID, log: log,
		tasks: map[string]*entry{}, pending: map[string]*pending{},
	}
}

// run serves the connection until ctx ends or the connection fails; it
// returns why. It and the reader are the connection's only goroutines;
// one timer wakes it for the next heartbeat or resend.
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

	// Registered before anything is read: the inbox asks for the full
	// read on connect, and holds every change after the hub's position.
	c.in = c.s.hub.register(c.cluster, c.instanceID)
	defer c.s.hub.unregister(c.in)
	nextBeat := time.Now().Add(c.s.cfg.HeartbeatInterval)
	timer := time.NewTimer(c.s.cfg.HeartbeatInterval)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-readDone:
			readDone <- err // for the deferred wait
			return err
		case id := <-acks:
			c.ack(id)
		case <-c.in.notify:
			if err := c.drain(ctx); err != nil {
				return err
			}
		case <-timer.C:
		}
		now := time.Now()
		if !now.Before(nextBeat) {
			if err := c.write(agentproto.Message{Type: agentproto.TypeHeartbeat, Heartbeat: &agentproto.Heartbeat{SentAt: c.s.cfg.Clock.Now().UTC()}}); err != nil {
				return err
			}
			nextBeat = now.Add(c.s.cfg.HeartbeatInterval)
		}
		if err := c.resendDue(now); err != nil {
			return err
		}
		next := nextBeat
		for _, p := range c.pending {
			if p.deadline.Before(next) {
				next = p.deadline
			}
		}
		timer.Reset(time.Until(next))
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

// drain applies what the hub has posted: the full read it asks for first,
// then the changes after that read.
func (c *conn) drain(ctx context.Context) error {
	changes, resync, minRev := c.in.take()
	if resync {
		if err := c.resync(ctx, minRev); err != nil {
			return err
		}
	}
	return c.changed(ctx, changes)
}

// resync reads the instance's tasks at a revision of at least minRev and
// sends them as a full Sync, which supersedes every pending one.
func (c *conn) resync(ctx context.Context, minRev int64) error {
	assigned, rev, err := c.s.cfg.Instances.AssignedTasks(ctx, c.cluster, c.instanceID)
	if err == nil && rev < minRev {
		// The cache lags the hub's watch: the changes in between were
		// posted before this connection registered. Wait for the cache.
		if err = store.Sync(ctx, c.s.cfg.Store); err == nil {
			assigned, rev, err = c.s.cfg.Instances.AssignedTasks(ctx, c.cluster, c.instanceID)
		}
		if err == nil && rev < minRev {
			err = fmt.Errorf("the state cache is at revision %d, behind the task watch at %d", rev, minRev)
		}
	}
	if err != nil {
		return fmt.Errorf("read the instance's tasks: %w", err)
	}
	c.readRev = rev
	c.tasks = make(map[string]*entry, len(assigned))
	clear(c.pending)
	for _, a := range assigned {
		// One decoded copy of each task definition for the whole server.
		if td, err := c.s.taskDefinition(ctx, a.Record.Family, a.Record.Revision); err == nil {
			a.TaskDefinition = td
		}
		c.tasks[a.Record.ID] = &entry{task: toTask(&a.Record, a.ModRevision, a.TaskDefinition)}
	}
	return c.push(true, nil)
}

// changed folds the hub's changes into the tasks and sends the tasks whose
// desired state changed.
func (c *conn) changed(ctx context.Context, changes []change) error {
	var ids []string
	for _, ch := range changes {
		t := ch.task
		if ch.rev <= c.readRev {
			continue // in the full read already
		}
		id := t.ID
		stopped := aws.ToString(t.Task.LastStatus) == domain.TaskStatusStopped
		old := c.tasks[id]
		switch {
		case old == nil && stopped:
			continue // never told, and nothing left to do
		case old != nil && old.task.Revision >= ch.rev:
			continue // already read at this revision or later
		}
		td, err := c.s.taskDefinition(ctx, t.Family, t.Revision)
		if err != nil {
			return err
		}
		task := toTask(t, ch.rev, td)
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
func (c *conn) resendDue(now time.Time) error {
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
