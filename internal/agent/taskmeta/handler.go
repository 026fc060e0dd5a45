package taskmeta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// route is what a request path asks for.
type route struct {
	version    int    // 3 or 4
	endpointID string // may be empty (then unknown)
	kind       kind
}

type kind int

const (
	kindContainer kind = iota
	kindTask
	kindTaskWithTags
	kindStats
	kindTaskStats
)

// parsePath splits "/v4/<id>[/task|/taskWithTags|/stats|/task/stats]" (and
// the v3 paths, which lack taskWithTags). The ID is everything up to the
// next slash, as the ECS agent's router takes it.
func parsePath(p string) (route, bool) {
	var r route
	switch {
	case strings.HasPrefix(p, "/v4/"):
		r.version = 4
	case strings.HasPrefix(p, "/v3/"):
		r.version = 3
	default:
		return route{}, false
	}
	rest := p[len("/v4/"):]
	id, sub, hasSub := strings.Cut(rest, "/")
	r.endpointID = id
	switch {
	case !hasSub:
		r.kind = kindContainer
	case sub == "task":
		r.kind = kindTask
	case sub == "taskWithTags" && r.version == 4:
		r.kind = kindTaskWithTags
	case sub == "stats":
		r.kind = kindStats
	case sub == "task/stats":
		r.kind = kindTaskStats
	default:
		return route{}, false
	}
	return r, true
}

// errorPrefix is the ECS agent's prefix of a lookup failure's message.
func (r route) errorPrefix() string {
	what := map[kind]string{
		kindContainer: "container metadata", kindTask: "task metadata", kindTaskWithTags: "task metadata",
		kindStats: "container stats", kindTaskStats: "task stats",
	}[r.kind]
	return fmt.Sprintf("V%d %s handler", r.version, what)
}

// DefaultMaxSamples bounds the stats samples a handler keeps.
const DefaultMaxSamples = 4096

// statsTimeout bounds one runtime sample.
const statsTimeout = 10 * time.Second

type handler struct {
	src     Source
	stats   StatsSource
	samples *samples
}

// Handler serves the task metadata endpoint: GET (or HEAD) on
//
//	/v4/<id>                 the caller's container
//	/v4/<id>/task            its task, with every container
//	/v4/<id>/taskWithTags    the same (tags, when the Source gives them)
//	/v4/<id>/stats           Docker stats of the caller's container
//	/v4/<id>/task/stats      Docker stats of every container, by DockerId
//
// and the v3 equivalents (no taskWithTags; v2-era fields only, no
// network_rate_stats). Answers and errors are written as the ECS agent
// writes them: JSON, errors as a JSON string with status 404 for an
// unknown ID, 500 when stats cannot be read. The last stats sample per
// container is kept (at most DefaultMaxSamples) for precpu_stats.
func Handler(src Source, stats StatsSource) http.Handler {
	return &handler{src: src, stats: stats, samples: newSamples(DefaultMaxSamples)}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rt, ok := parsePath(req.URL.Path)
	if !ok {
		writeJSON(w, http.StatusNotFound, "404 page not found")
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSON(w, http.StatusMethodNotAllowed, "method not allowed")
		return
	}
	task, name, found := Task{}, "", false
	if rt.endpointID != "" {
		task, name, found = h.src.Lookup(rt.endpointID)
	}
	self := -1
	if found {
		for i, c := range task.Containers {
			if c.Name == name {
				self = i
			}
		}
	}
	if self < 0 {
		writeJSON(w, http.StatusNotFound, rt.errorPrefix()+": "+lookupFailure(rt))
		return
	}
	task = normalize(task)
	switch rt.kind {
	case kindContainer:
		if rt.version == 3 {
			writeJSON(w, http.StatusOK, toV3Container(task.Containers[self]))
		} else {
			writeJSON(w, http.StatusOK, task.Containers[self])
		}
	case kindTask, kindTaskWithTags:
		if rt.kind == kindTask {
			task.TaskTags, task.ContainerInstanceTags = nil, nil
		}
		if rt.version == 3 {
			writeJSON(w, http.StatusOK, toV3Task(task))
		} else {
			writeJSON(w, http.StatusOK, task)
		}
	case kindStats:
		c := task.Containers[self]
		resp, err := h.sample(req.Context(), c)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, "Unable to get container stats for: "+c.DockerID)
			return
		}
		writeJSON(w, http.StatusOK, forVersion(resp, rt.version))
	case kindTaskStats:
		out := map[string]StatsResponse{}
		for _, c := range task.Containers {
			if c.DockerID == "" {
				continue // not created yet
			}
			resp, err := h.sample(req.Context(), c)
			if err != nil {
				resp = StatsResponse{} // written as {}, as ECS does
			}
			out[c.DockerID] = forVersion(resp, rt.version)
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// lookupFailure is the ECS agent's reason text for an unknown endpoint ID.
func lookupFailure(rt route) string {
	if rt.kind == kindContainer {
		return "unable to get container ID from request: unable to get docker ID from v3 endpoint ID: " + rt.endpointID
	}
	return "unable to get task arn from request: unable to get task Arn from v3 endpoint ID: " + rt.endpointID
}

// sample reads a container's stats and pairs them with its previous
// sample. A container that has gone (or stopped) loses its sample.
func (h *handler) sample(ctx context.Context, c Container) (StatsResponse, error) {
	if c.DockerID == "" {
		return StatsResponse{}, errdefs.New(errdefs.ErrFailedPrecondition, "container "+c.Name+" has not been created")
	}
	ctx, cancel := context.WithTimeout(ctx, statsTimeout)
	defer cancel()
	cur, err := h.stats.Stats(ctx, c.DockerID)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrFailedPrecondition) {
			h.samples.drop(c.DockerID)
		}
		return StatsResponse{}, err
	}
	prev := h.samples.swap(c.DockerID, cur)
	return NewStatsResponse("/"+c.DockerName, c.DockerID, cur, prev), nil
}

// forVersion drops what v3 lacks.
func forVersion(s StatsResponse, version int) StatsResponse {
	if version == 3 {
		s.NetworkRateStats = nil
	}
	return s
}

// normalize returns a copy of t with times in UTC, as ECS writes them.
func normalize(t Task) Task {
	t.PullStartedAt, t.PullStoppedAt, t.ExecutionStoppedAt = utc(t.PullStartedAt), utc(t.PullStoppedAt), utc(t.ExecutionStoppedAt)
	if t.ClockDrift != nil {
		cd := *t.ClockDrift
		cd.ReferenceTimestamp = utc(cd.ReferenceTimestamp)
		t.ClockDrift = &cd
	}
	cs := make([]Container, len(t.Containers))
	for i, c := range t.Containers {
		c.CreatedAt, c.StartedAt, c.FinishedAt = utc(c.CreatedAt), utc(c.StartedAt), utc(c.FinishedAt)
		if c.Health != nil {
			hs := *c.Health
			hs.Since = utc(hs.Since)
			c.Health = &hs
		}
		cs[i] = c
	}
	t.Containers = cs
	return t
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// v3Task and v3Container are the v2-era shapes v3 serves (the ECS agent's
// v2.TaskResponse and v2.ContainerResponse, with v3's networks).
type v3Task struct {
	Cluster               string            `json:"Cluster"`
	TaskARN               string            `json:"TaskARN"`
	Family                string            `json:"Family"`
	Revision              string            `json:"Revision"`
	DesiredStatus         string            `json:"DesiredStatus,omitempty"`
	KnownStatus           string            `json:"KnownStatus"`
	Containers            []v3Container     `json:"Containers,omitempty"`
	Limits                TaskLimits        `json:"Limits,omitzero"`
	PullStartedAt         time.Time         `json:"PullStartedAt,omitzero"`
	PullStoppedAt         time.Time         `json:"PullStoppedAt,omitzero"`
	ExecutionStoppedAt    time.Time         `json:"ExecutionStoppedAt,omitzero"`
	AvailabilityZone      string            `json:"AvailabilityZone,omitempty"`
	TaskTags              map[string]string `json:"TaskTags,omitempty"`
	ContainerInstanceTags map[string]string `json:"ContainerInstanceTags,omitempty"`
}

type v3Container struct {
	DockerID      string            `json:"DockerId"`
	Name          string            `json:"Name"`
	DockerName    string            `json:"DockerName"`
	Image         string            `json:"Image"`
	ImageID       string            `json:"ImageID"`
	Ports         []Port            `json:"Ports,omitempty"`
	Labels        map[string]string `json:"Labels,omitempty"`
	DesiredStatus string            `json:"DesiredStatus"`
	KnownStatus   string            `json:"KnownStatus"`
	ExitCode      *int              `json:"ExitCode,omitempty"`
	Limits        ContainerLimits   `json:"Limits"`
	CreatedAt     time.Time         `json:"CreatedAt,omitzero"`
	StartedAt     time.Time         `json:"StartedAt,omitzero"`
	FinishedAt    time.Time         `json:"FinishedAt,omitzero"`
	Type          string            `json:"Type"`
	Networks      []v3Network       `json:"Networks,omitempty"`
	Health        *Health           `json:"Health,omitempty"`
	Volumes       []Volume          `json:"Volumes,omitempty"`
}

type v3Network struct {
	NetworkMode   string   `json:"NetworkMode,omitempty"`
	IPv4Addresses []string `json:"IPv4Addresses,omitempty"`
	IPv6Addresses []string `json:"IPv6Addresses,omitempty"`
}

func toV3Task(t Task) v3Task {
	out := v3Task{
		Cluster: t.Cluster, TaskARN: t.TaskARN, Family: t.Family, Revision: t.Revision,
		DesiredStatus: t.DesiredStatus, KnownStatus: t.KnownStatus, Limits: t.Limits,
		PullStartedAt: t.PullStartedAt, PullStoppedAt: t.PullStoppedAt, ExecutionStoppedAt: t.ExecutionStoppedAt,
		AvailabilityZone: t.AvailabilityZone,
	}
	for _, c := range t.Containers {
		out.Containers = append(out.Containers, toV3Container(c))
	}
	return out
}

func toV3Container(c Container) v3Container {
	out := v3Container{
		DockerID: c.DockerID, Name: c.Name, DockerName: c.DockerName, Image: c.Image, ImageID: c.ImageID,
		Ports: c.Ports, Labels: c.Labels, DesiredStatus: c.DesiredStatus, KnownStatus: c.KnownStatus,
		ExitCode: c.ExitCode, Limits: c.Limits, CreatedAt: c.CreatedAt, StartedAt: c.StartedAt,
		FinishedAt: c.FinishedAt, Type: c.Type, Health: c.Health, Volumes: c.Volumes,
	}
	for _, n := range c.Networks {
		out.Networks = append(out.Networks, v3Network{NetworkMode: n.NetworkMode, IPv4Addresses: n.IPv4Addresses, IPv6Addresses: n.IPv6Addresses})
	}
	return out
}
