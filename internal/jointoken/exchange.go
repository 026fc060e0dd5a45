package jointoken

import "time"

// The join exchange on a berth server's API listener (see
// docs/architecture/agent-join.md). Both ends import these definitions.
const (
	// TokensPath mints a token: POST, SigV4-signed with scope service
	// SigningName by a principal allowed berth:CreateJoinToken (the admin).
	TokensPath = "/agent/v1/tokens"
	// JoinPath redeems a token: POST, unsigned; the token is the credential.
	JoinPath = "/agent/v1/join"
	// SigningName is the SigV4 service name of berth's own endpoints.
	SigningName = "berth"
	// MaxRequestBytes bounds the body of both requests.
	MaxRequestBytes = 64 << 10
)

// CreateRequest is the body of POST TokensPath. Every field is optional.
type CreateRequest struct {
	// Cluster the agents join; "" means "default".
	Cluster string `json:"cluster,omitempty"`
	// TTLSeconds is the token's lifetime; 0 means 24 hours.
	TTLSeconds int64 `json:"ttlSeconds,omitempty"`
	// ServerURL is the URL written into the token for agents to reach the
	// server at; "" means the server's own endpoint. Set it when agents
	// reach the server by another address than the local one.
	ServerURL string `json:"serverUrl,omitempty"`
}

// CreateResponse answers POST TokensPath.
type CreateResponse struct {
	Token     string    `json:"token"`
	TokenID   string    `json:"tokenId"`
	Cluster   string    `json:"cluster"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// JoinRequest is the body of POST JoinPath.
type JoinRequest struct {
	Token string `json:"token"`
}

// JoinResponse answers POST JoinPath: the agent's own long-lived
// credentials (an IAM user under /berth/instances/) and where to use them.
type JoinResponse struct {
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
	AccountID       string `json:"accountId"`
	Region          string `json:"region"`
	Cluster         string `json:"cluster"`
	// Endpoint is the server URL to send API calls to: the token's.
	Endpoint string `json:"endpoint"`
	// UserARN is the agent's identity, as error messages name it.
	UserARN string `json:"userArn"`
}

// ErrorResponse is the body of every error answer, in the awsJson shape.
type ErrorResponse struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}
