// Package agentproto defines the agent channel: the long-lived stream from
// the control plane to each node agent that carries the tasks assigned to
// the agent's container instance. It is the only package that both the
// server side and the agent import (DESIGN.md §7).
//
// The channel is a WebSocket on the API listener at ChannelPath, opened by
// the agent with a SigV4-signed upgrade request (action ecs:Poll, as the
// ECS agent's ACS session). Registration and state reports do not travel on
// it: the agent calls the ECS API (RegisterContainerInstance,
// SubmitTaskStateChange, SubmitContainerStateChange) like the ECS agent.
//
// The protocol is level-based. On every (re)connect the server sends a full
// Sync with every task assigned to the instance; afterwards it sends a Sync
// with the tasks that changed. Each task carries the store revision of its
// record, so an agent ignores anything older than what it has acted on: a
// task is never started twice, and a lost message is repaired by the next
// full Sync. The agent acknowledges every Sync by id; a Sync not
// acknowledged within AckTimeout is sent again. Either side sends a
// Heartbeat every HeartbeatInterval; a server that hears nothing for
// DisconnectAfter marks the instance agentConnected=false (its tasks keep
// running, as on ECS).
package agentproto

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ChannelPath is the URL path of the channel on the API listener. The query
// carries ParamCluster and ParamContainerInstance (ARN or id).
const (
	ChannelPath            = "/agent/v1/channel"
	ParamCluster           = "cluster"
	ParamContainerInstance = "containerInstance"
)

// Timing of the channel.
const (
	HeartbeatInterval = 10 * time.Second
	DisconnectAfter   = 3 * HeartbeatInterval
	AckTimeout        = 15 * time.Second
)

// MaxMessageBytes bounds one message on the wire in either direction.
const MaxMessageBytes = 8 << 20

// Type names a message.
type Type string

// Message types.
const (
	TypeSync      Type = "Sync"      // server → agent
	TypeAck       Type = "Ack"       // agent → server
	TypeHeartbeat Type = "Heartbeat" // both ways
	TypeHealth    Type = "Health"    // agent → server
)

// Message is one frame on the channel. Exactly the field that Type names is
// set.
type Message struct {
	Type      Type       `json:"type"`
	ID        string     `json:"id,omitempty"` // server-chosen id of a Sync, echoed by its Ack
	Sync      *Sync      `json:"sync,omitempty"`
	Ack       *Ack       `json:"ack,omitempty"`
	Heartbeat *Heartbeat `json:"heartbeat,omitempty"`
	Health    *Health    `json:"health,omitempty"`
}

// Sync carries desired state.
type Sync struct {
	// Full means Tasks is every task assigned to the instance that the
	// agent still has to act on. A task the agent runs that is absent from
	// a full Sync is not the server's: the agent reports and stops it.
	Full  bool   `json:"full"`
	Tasks []Task `json:"tasks"`
}

// Task is the desired state of one task on this instance.
type Task struct {
	TaskARN string `json:"taskArn"`
	// Revision is the store revision of the task record this state was read
	// at; it only grows. An agent ignores a Task whose Revision is below the
	// one it has acted on.
	Revision       int64                `json:"revision"`
	DesiredStatus  string               `json:"desiredStatus"` // RUNNING or STOPPED
	TaskDefinition types.TaskDefinition `json:"taskDefinition"`
	Overrides      *types.TaskOverride  `json:"overrides,omitempty"`
	// ContainerARNs maps container names to the ARNs the server assigned.
	ContainerARNs map[string]string `json:"containerArns"`
	Group         string            `json:"group,omitempty"`
	StartedBy     string            `json:"startedBy,omitempty"`
	LaunchType    string            `json:"launchType,omitempty"`
	StopCode      string            `json:"stopCode,omitempty"`
	StoppedReason string            `json:"stoppedReason,omitempty"`
}

// Ack acknowledges the Sync whose Message.ID it names.
type Ack struct{}

// Heartbeat proves the sender is alive.
type Heartbeat struct {
	SentAt time.Time `json:"sentAt"`
}

// Health carries the health-check results of a task's containers: the
// SubmitXxxStateChange shapes have no field for them. Containers maps a
// container name to HEALTHY, UNHEALTHY or UNKNOWN. It is not acknowledged:
// the agent sends the current health again on every change and after every
// reconnect.
type Health struct {
	TaskARN    string            `json:"taskArn"`
	Containers map[string]string `json:"containers"`
}

// ErrMalformed marks a frame that is not a valid message.
var ErrMalformed = fmt.Errorf("agentproto: malformed message: %w", errdefs.ErrInvalidArgument)

// Decode parses one frame and checks that it is well formed.
func Decode(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxMessageBytes {
		return m, fmt.Errorf("%w: %d bytes exceeds %d", ErrMalformed, len(b), MaxMessageBytes)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := m.validate(); err != nil {
		return Message{}, err
	}
	return m, nil
}

// Encode renders m as one frame.
func Encode(m Message) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

func (m Message) validate() error {
	set := 0
	for _, present := range []bool{m.Sync != nil, m.Ack != nil, m.Heartbeat != nil, m.Health != nil} {
		if present {
			set++
		}
	}
	want := map[Type]bool{TypeSync: m.Sync != nil, TypeAck: m.Ack != nil, TypeHeartbeat: m.Heartbeat != nil, TypeHealth: m.Health != nil}
	ok, known := want[m.Type]
	switch {
	case !known:
		return fmt.Errorf("%w: unknown type %q", ErrMalformed, m.Type)
	case !ok || set != 1:
		return fmt.Errorf("%w: a %s message must carry exactly its own body", ErrMalformed, m.Type)
	case (m.Type == TypeSync || m.Type == TypeAck) && m.ID == "":
		return fmt.Errorf("%w: a %s message needs an id", ErrMalformed, m.Type)
	}
	if h := m.Health; h != nil {
		if h.TaskARN == "" {
			return fmt.Errorf("%w: a Health message needs a task ARN", ErrMalformed)
		}
		for name, st := range h.Containers {
			if name == "" || st != "HEALTHY" && st != "UNHEALTHY" && st != "UNKNOWN" {
				return fmt.Errorf("%w: task %s: container %q health %q", ErrMalformed, h.TaskARN, name, st)
			}
		}
	}
	if m.Sync != nil {
		for i, t := range m.Sync.Tasks {
			if t.TaskARN == "" || t.Revision <= 0 {
				return fmt.Errorf("%w: task %d needs an ARN and a positive revision", ErrMalformed, i)
			}
			if t.DesiredStatus != "RUNNING" && t.DesiredStatus != "STOPPED" {
				return fmt.Errorf("%w: task %s: desired status %q", ErrMalformed, t.TaskARN, t.DesiredStatus)
			}
		}
	}
	return nil
}
