package server

import (
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/ecsapi"
	"github.com/berth-dev/berth/internal/jointoken"
)

// explainPlacement serves ecsapi.ExplainPlacementPath (`berth
// explain-placement`): a RunTask request, SigV4-signed for berth's own
// endpoints, answered with what RunTask would do without placing anything.
// Authorization is RunTask's, inside the Explainer.
type explainPlacement struct {
	verifier  *sigv4.Verifier
	explainer *ecsapi.Explainer
}

func (x *explainPlacement) register(mux *http.ServeMux) {
	mux.HandleFunc(ecsapi.ExplainPlacementPath, x.serve)
}

// explainErrors answers errors with ECS's exception names, as RunTask's.
var explainErrors = &awsjson.Service{MapError: ecsapi.MapError}

func (x *explainPlacement) serve(w http.ResponseWriter, r *http.Request) {
	if !requirePost(w, r) {
		return
	}
	body, err := readLimited(w, r)
	if err != nil {
		explainErrors.WriteError(w, err)
		return
	}
	p, err := x.verifier.VerifyService(r.Context(), r, body, jointoken.SigningName)
	if err != nil {
		explainErrors.WriteError(w, err)
		return
	}
	var in ecs.RunTaskInput
	if err := decodeJSON(body, &in); err != nil {
		explainErrors.WriteError(w, err)
		return
	}
	out, err := x.explainer.ExplainPlacement(awsapi.WithPrincipal(r.Context(), p), &in)
	if err != nil {
		explainErrors.WriteError(w, err)
		return
	}
	writeJoinJSON(w, out)
}
