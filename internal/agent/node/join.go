package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/internal/agent/state"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/jointoken"
)

// Join redeems a join token at the server the token names and returns the
// agent's identity. The token is single-use on the server's side only in
// the sense that each redemption creates a new instance user; the agent
// stores the identity and never redeems again.
//
// An https server must present a certificate of the CA the token pins;
// plain HTTP is accepted on loopback only.
func Join(ctx context.Context, token string) (state.Identity, error) {
	tok, err := jointoken.Parse(strings.TrimSpace(token))
	if err != nil {
		return state.Identity{}, err
	}
	client, _, err := httpClient(tok.Server, tok.CAPin, 0)
	if err != nil {
		return state.Identity{}, err
	}
	body, err := json.Marshal(jointoken.JoinRequest{Token: strings.TrimSpace(token)})
	if err != nil {
		return state.Identity{}, errdefs.Internal(err)
	}
	url := strings.TrimRight(tok.Server, "/") + jointoken.JoinPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return state.Identity{}, errdefs.InvalidArgument(fmt.Sprintf("join token: server URL %q: %v", tok.Server, err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return state.Identity{}, &errdefs.Error{Kind: errdefs.ErrUnavailable, Message: "joining " + tok.Server + " failed", Cause: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, jointoken.MaxRequestBytes))
	if err != nil {
		return state.Identity{}, &errdefs.Error{Kind: errdefs.ErrUnavailable, Message: "joining " + tok.Server + ": reading the answer failed", Cause: err}
	}
	return joinAnswer(tok, resp.StatusCode, resp.Status, raw)
}

// joinAnswer reads the server's answer to a join request.
func joinAnswer(tok jointoken.Token, code int, status string, raw []byte) (state.Identity, error) {
	if code != http.StatusOK {
		var e jointoken.ErrorResponse
		_ = json.Unmarshal(raw, &e)
		msg := e.Message
		if msg == "" {
			msg = strings.TrimSpace(string(raw))
		}
		kind := errdefs.ErrUnavailable
		if code == http.StatusForbidden || code == http.StatusUnauthorized {
			kind = errdefs.ErrAccessDenied
		}
		return state.Identity{}, errdefs.New(kind, fmt.Sprintf("the server refused the join token (%s %s): %s", status, e.Type, msg))
	}
	var jr jointoken.JoinResponse
	if err := json.Unmarshal(raw, &jr); err != nil {
		return state.Identity{}, errdefs.New(errdefs.ErrUnavailable, fmt.Sprintf("joining %s: the answer is not a join response: %v", tok.Server, err))
	}
	id := state.Identity{
		AccessKeyID: jr.AccessKeyID, SecretAccessKey: jr.SecretAccessKey, AccountID: jr.AccountID,
		Region: jr.Region, Cluster: jr.Cluster, UserARN: jr.UserARN, CAPin: tok.CAPin,
		// The identity is used where the token pointed: the pin holds for
		// that server's address.
		Endpoint: strings.TrimRight(tok.Server, "/"),
	}
	if id.AccessKeyID == "" || id.SecretAccessKey == "" || id.Region == "" {
		return state.Identity{}, errdefs.New(errdefs.ErrUnavailable, "joining "+tok.Server+": the answer lacks credentials or a region")
	}
	return id, nil
}
