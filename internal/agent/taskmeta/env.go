package taskmeta

import (
	"crypto/rand"
	"fmt"
	"strings"
)

// Where containers reach the endpoint (shared with the task credentials
// endpoint, §4 of the agent contract).
const (
	DefaultAddr    = "169.254.170.2:80"
	DefaultBaseURL = "http://169.254.170.2"
)

// The environment variables a container gets.
const (
	EnvMetadataURIV4 = "ECS_CONTAINER_METADATA_URI_V4"
	EnvMetadataURI   = "ECS_CONTAINER_METADATA_URI"
	EnvAgentURI      = "ECS_AGENT_URI"
)

// Env returns the variables that point a container at its endpoint, as
// "KEY=VALUE": the v4 and v3 metadata URIs and the agent API URI.
// baseURL is scheme and host ("http://169.254.170.2"; DefaultBaseURL when
// empty).
func Env(baseURL, endpointID string) []string {
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	baseURL = strings.TrimRight(baseURL, "/")
	return []string{
		EnvMetadataURIV4 + "=" + baseURL + "/v4/" + endpointID,
		EnvMetadataURI + "=" + baseURL + "/v3/" + endpointID,
		EnvAgentURI + "=" + baseURL + "/api/" + endpointID,
	}
}

// NewEndpointID returns a fresh endpoint ID: a random (version 4) UUID
// from crypto/rand, as the ECS agent issues them. Knowing an ID is what
// lets a caller read a task's metadata, so it must not be guessable.
func NewEndpointID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
