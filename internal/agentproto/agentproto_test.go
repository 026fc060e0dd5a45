package agentproto

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestRoundTrip(t *testing.T) {
	msgs := []Message{
		{Type: TypeSync, ID: "s1", Sync: &Sync{Full: true, Tasks: []Task{{
			TaskARN: "arn:aws:ecs:us-east-1:123456789012:task/default/0123456789abcdef0123456789abcdef", Revision: 7,
			DesiredStatus: "RUNNING", Group: "family:web",
			TaskDefinition: types.TaskDefinition{Family: aws.String("web"), Revision: 3,
				ContainerDefinitions: []types.ContainerDefinition{{Name: aws.String("web"), Image: aws.String("img"), Cpu: 0}}},
			ContainerARNs: map[string]string{"web": "arn:aws:ecs:us-east-1:123456789012:container/default/x/y"},
		}}}},
		{Type: TypeAck, ID: "s1", Ack: &Ack{}},
		{Type: TypeHeartbeat, Heartbeat: &Heartbeat{SentAt: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}},
		{Type: TypeHealth, Health: &Health{TaskARN: "arn:aws:ecs:us-east-1:123456789012:task/default/abc", Containers: map[string]string{"app": "HEALTHY"}}},
	}
	for _, m := range msgs {
		b, err := Encode(m)
		if err != nil {
			t.Fatalf("encode %s: %v", m.Type, err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if diff := cmp.Diff(m, got, cmpopts.IgnoreUnexported(types.TaskDefinition{}, types.ContainerDefinition{})); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	for name, frame := range map[string]string{
		"not json":          `{`,
		"unknown type":      `{"type":"Bogus"}`,
		"no body":           `{"type":"Heartbeat"}`,
		"health no arn":     `{"type":"Health","health":{"containers":{}}}`,
		"health bad status": `{"type":"Health","health":{"taskArn":"t","containers":{"app":"SICK"}}}`,
		"two bodies":        `{"type":"Ack","id":"1","ack":{},"heartbeat":{}}`,
		"wrong body":        `{"type":"Ack","id":"1","heartbeat":{}}`,
		"sync without id":   `{"type":"Sync","sync":{"tasks":[]}}`,
		"task without arn":  `{"type":"Sync","id":"1","sync":{"tasks":[{"revision":1,"desiredStatus":"RUNNING"}]}}`,
		"task bad revision": `{"type":"Sync","id":"1","sync":{"tasks":[{"taskArn":"a","revision":0,"desiredStatus":"RUNNING"}]}}`,
		"task bad desired":  `{"type":"Sync","id":"1","sync":{"tasks":[{"taskArn":"a","revision":1,"desiredStatus":"PENDING"}]}}`,
		"too big":           `{"type":"Heartbeat","heartbeat":{},"x":"` + strings.Repeat("a", MaxMessageBytes) + `"}`,
	} {
		if _, err := Decode([]byte(frame)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
	if _, err := Encode(Message{Type: TypeAck}); !errors.Is(err, ErrMalformed) {
		t.Errorf("encode of a bad message: %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"type":"Sync","id":"1","sync":{"full":true,"tasks":[{"taskArn":"a","revision":1,"desiredStatus":"RUNNING","taskDefinition":{"family":"x"}}]}}`))
	f.Add([]byte(`{"type":"Ack","id":"1","ack":{}}`))
	f.Add([]byte(`{"type":"Heartbeat","heartbeat":{"sentAt":"2026-11-22T00:00:00Z"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must encode and decode again to the same type.
		out, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		if m2, err := Decode(out); err != nil || m2.Type != m.Type {
			t.Fatalf("re-decode: %v %v", m2.Type, err)
		}
	})
}
