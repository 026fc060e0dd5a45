package server

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/account"
)

// LocalAgentCredentials creates an instance user for the agent that this
// process starts beside the server (`berth up`): no join token needs to
// change hands within one process. The agent stores what it gets and asks
// again only when its state is gone.
func (s *Server) LocalAgentCredentials(ctx context.Context, cluster string) (account.InstanceCredentials, error) {
	return account.CreateInstanceUser(ctx, s.backend.store, s.account, cluster, time.Now())
}
