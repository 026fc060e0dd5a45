package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/registry/api/errcode"
	v2 "github.com/distribution/distribution/v3/registry/api/v2"
	"github.com/distribution/reference"
	"github.com/gorilla/mux"
	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/ecr"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/iam"
)

// ServeHTTP authenticates the request, authorizes ECR's action for its
// route on the repository ARN, checks the repository exists (and, for an
// IMMUTABLE one, that a pushed tag is new), then lets distribution's app
// serve it, verifying the digest of manifests and blobs it reads out.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p, err := r.authenticate(req)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	req = req.WithContext(r.libCtx(req.Context()))

	var match mux.RouteMatch
	route := ""
	matched := r.router.Match(req, &match)
	if matched && match.Route != nil && match.Handler == nil {
		route = match.Route.GetName()
	}
	switch route {
	case "":
		if name, dgst, ok := parseReferrersPath(req.URL.Path); ok {
			r.serveReferrers(w, req, p, name, dgst)
			return
		}
		if matched && match.Handler != nil {
			// A trailing-slash redirect, which the app's router (the same
			// routes) answers; the target is authorized when followed.
			r.app.ServeHTTP(w, req)
			return
		}
		// Nothing that is not a route of ours reaches the app.
		http.NotFound(w, req)
	case v2.RouteNameBase:
		// Any authenticated caller may ping: `docker login` does.
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			writeMethodNotAllowed(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		_, _ = io.WriteString(w, "{}")
	case v2.RouteNameCatalog:
		r.serveCatalog(w, req, p)
	default:
		r.serveRepository(w, req, p, route, match.Vars)
	}
}

// routeActions returns the ECR actions a request needs: one per route and
// method, so that IAM policies written for ECR apply unchanged. ok is false
// for a method the route does not serve.
func routeActions(route, method string, hasBody bool) (actions []string, ok bool) {
	switch route {
	case v2.RouteNameManifest:
		switch method {
		case http.MethodGet, http.MethodHead:
			return []string{ecr.ActionBatchGetImage}, true
		case http.MethodPut:
			return []string{ecr.ActionPutImage}, true
		case http.MethodDelete:
			return []string{ecr.ActionBatchDeleteImage}, true
		}
	case v2.RouteNameBlob:
		switch method {
		case http.MethodGet:
			return []string{ecr.ActionGetDownloadURLForLayer}, true
		case http.MethodHead:
			return []string{ecr.ActionBatchCheckLayerAvailability}, true
		case http.MethodDelete:
			return []string{ecr.ActionBatchDeleteImage}, true
		}
	case v2.RouteNameBlobUpload:
		if method == http.MethodPost {
			return []string{ecr.ActionInitiateLayerUpload}, true
		}
	case v2.RouteNameBlobUploadChunk:
		switch method {
		case http.MethodGet, http.MethodHead, http.MethodPatch, http.MethodDelete:
			// Status, a chunk, and cancelling are all parts of an upload.
			return []string{ecr.ActionUploadLayerPart}, true
		case http.MethodPut:
			if hasBody {
				// The final chunk travels with the completion.
				return []string{ecr.ActionUploadLayerPart, ecr.ActionCompleteLayerUpload}, true
			}
			return []string{ecr.ActionCompleteLayerUpload}, true
		}
	case v2.RouteNameTags:
		if method == http.MethodGet {
			return []string{ecr.ActionListImages}, true
		}
	}
	return nil, false
}

func (r *Registry) serveRepository(w http.ResponseWriter, req *http.Request, p iam.Principal, route string, vars map[string]string) {
	ctx := req.Context()
	name := vars["name"]
	actions, ok := routeActions(route, req.Method, req.ContentLength != 0)
	if !ok {
		writeMethodNotAllowed(w)
		return
	}
	arn := r.repositoryARN(name)
	for _, a := range actions {
		if err := r.cfg.Authorizer.Authorize(ctx, p, a, arn); err != nil {
			r.writeError(w, req, err)
			return
		}
	}
	repo, err := r.lookup(ctx, name)
	if err != nil {
		r.writeError(w, req, err)
		return
	}

	if route == v2.RouteNameBlob && req.Method == http.MethodGet && r.files != nil && r.serveBlobFile(w, req, name, vars["digest"]) {
		return
	}
	switch {
	case route == v2.RouteNameTags:
		// A repository created and not pushed to yet has no directory in
		// the storage, and distribution would answer NAME_UNKNOWN: in ECR
		// it exists, with no tags.
		has, err := r.HasImages(ctx, name)
		if err != nil {
			r.writeError(w, req, err)
			return
		}
		if !has {
			w.Header().Set("Content-Type", "application/json")
			_, _ = fmt.Fprintf(w, "{\"name\":%q,\"tags\":[]}\n", name)
			return
		}
	case route == v2.RouteNameBlobUpload:
		if err := r.checkMount(ctx, req, p); err != nil {
			r.writeError(w, req, err)
			return
		}
	case route == v2.RouteNameManifest && req.Method == http.MethodPut:
		tag := vars["reference"]
		if _, err := digest.Parse(tag); err == nil {
			tag = "" // a push by digest moves no tag
		}
		if repo.Immutable() && tag != "" {
			mu := r.repoLock(name)
			mu.Lock()
			defer mu.Unlock()
			if err := r.checkTagFree(ctx, name, tag); err != nil {
				r.writeError(w, req, err)
				return
			}
		}
		subject, err := subjectOf(req)
		if err != nil {
			r.writeError(w, req, err)
			return
		}
		if subject != "" {
			w = &subjectHeaderWriter{ResponseWriter: w, subject: subject}
		}
	case req.Method == http.MethodGet && (route == v2.RouteNameManifest || route == v2.RouteNameBlob):
		vw := &verifyingWriter{ResponseWriter: w}
		r.app.ServeHTTP(vw, req)
		if !vw.finish() {
			r.log.Error("digest mismatch reading from storage: content is corrupt",
				"repository", name, "reference", vars["reference"]+vars["digest"], "want", vw.want, "got", vw.got)
			// Headers and all but the held-back tail are out; abort so the
			// client sees a broken transfer, not complete wrong content.
			panic(http.ErrAbortHandler)
		}
		return
	}
	if route == v2.RouteNameBlobUploadChunk && req.Method == http.MethodPut && r.files != nil {
		// distribution verified the digest of the upload it just stored:
		// that file version need not be hashed again on its first read.
		sw := &statusWriter{ResponseWriter: w}
		r.app.ServeHTTP(sw, req)
		if sw.status == http.StatusCreated {
			if d, err := digest.Parse(req.URL.Query().Get("digest")); err == nil {
				r.files.verifiedAtUpload(d)
			}
		}
		return
	}
	r.app.ServeHTTP(w, req)
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// checkTagFree refuses a tag that exists in an IMMUTABLE repository, with
// ECR's text. ECR refuses even a push that would keep the tag's digest.
func (r *Registry) checkTagFree(ctx context.Context, name, tag string) error {
	repo, err := r.viewRepository(ctx, r.view, name)
	if err != nil {
		return err
	}
	_, err = repo.Tags(ctx).Get(ctx, tag)
	var unknown distribution.ErrTagUnknown
	switch {
	case err == nil:
		return ecr.ImageTagAlreadyExists(tag, name)
	case errors.As(err, &unknown):
		return nil
	default:
		return errdefs.Internal(err)
	}
}

// checkMount keeps a cross-repository mount only when the caller may read
// the source repository and it exists; otherwise it drops the mount
// parameters and the app starts an ordinary upload, as the distribution
// spec allows.
func (r *Registry) checkMount(ctx context.Context, req *http.Request, p iam.Principal) error {
	if err := req.ParseForm(); err != nil {
		return errdefs.InvalidArgument("invalid query")
	}
	from, mount := req.Form.Get("from"), req.Form.Get("mount")
	if from == "" || mount == "" {
		return nil
	}
	if r.mayMountFrom(ctx, p, from) {
		return nil
	}
	req.Form.Del("from")
	req.Form.Del("mount")
	q := req.URL.Query()
	q.Del("from")
	q.Del("mount")
	req.URL.RawQuery = q.Encode()
	return nil
}

func (r *Registry) mayMountFrom(ctx context.Context, p iam.Principal, from string) bool {
	if r.cfg.Authorizer.Authorize(ctx, p, ecr.ActionGetDownloadURLForLayer, r.repositoryARN(from)) != nil {
		return false
	}
	_, ok, err := r.cfg.Repositories.Lookup(ctx, from)
	return ok && err == nil
}

// serveCatalog lists the repositories the caller may describe
// (ecr:DescribeRepositories on each), paginated as the distribution spec
// says (n, last, Link).
func (r *Registry) serveCatalog(w http.ResponseWriter, req *http.Request, p iam.Principal) {
	if req.Method != http.MethodGet {
		writeMethodNotAllowed(w)
		return
	}
	const maxEntries = 1000
	q := req.URL.Query()
	n := maxEntries
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			_ = errcode.ServeJSON(w, errcode.ErrorCodePaginationNumberInvalid.WithDetail(map[string]string{"n": s}))
			return
		}
		n = min(v, maxEntries)
	}
	last := q.Get("last")
	ctx := req.Context()
	all, err := r.cfg.Repositories.List(ctx)
	if err != nil {
		r.writeError(w, req, err)
		return
	}
	names := make([]string, 0, len(all))
	for _, repo := range all {
		names = append(names, repo.Name)
	}
	slices.Sort(names)
	out := []string{}
	more := false
	for _, name := range names {
		if name <= last {
			continue
		}
		err := r.cfg.Authorizer.Authorize(ctx, p, ecr.ActionDescribeRepositories, r.repositoryARN(name))
		if errors.Is(err, errdefs.ErrAccessDenied) {
			continue
		}
		if err != nil {
			r.writeError(w, req, err)
			return
		}
		if len(out) == n {
			more = true
			break
		}
		out = append(out, name)
	}
	if more && len(out) > 0 {
		v := url.Values{"last": {out[len(out)-1]}, "n": {strconv.Itoa(n)}}
		w.Header().Set("Link", fmt.Sprintf(`</v2/_catalog?%s>; rel="next"`, v.Encode()))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = jsonEncode(w, map[string][]string{"repositories": out})
}

// writeError answers with the registry error a berth error stands for,
// in ECR's words.
func (r *Registry) writeError(w http.ResponseWriter, req *http.Request, err error) {
	msg := errdefs.Message(err, "")
	var e errcode.Error
	switch {
	case errors.Is(err, ecr.ErrTokenExpired):
		e = errcode.ErrorCodeDenied.WithMessage(ecr.TokenExpiredMessage)
	case errors.Is(err, errdefs.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", r.challenge(req))
		e = errcode.ErrorCodeUnauthorized.WithMessage(ecr.NotAuthorizedMessage)
	case errors.Is(err, errdefs.ErrAccessDenied):
		e = errcode.ErrorCodeDenied.WithMessage(msg)
	case errors.Is(err, ecr.ErrRepositoryNotFound):
		e = errcode.ErrorCodeNameUnknown.WithMessage(msg)
	case errors.Is(err, ecr.ErrImageTagAlreadyExists):
		e = errcode.ErrorCodeTagInvalid.WithMessage(msg)
	case errors.Is(err, errdefs.ErrLimitExceeded):
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		_ = jsonEncode(w, errcode.Errors{errcode.ErrorCodeSizeInvalid.WithMessage(msg)})
		return
	case errors.Is(err, errdefs.ErrInvalidArgument):
		e = errcode.ErrorCodeUnsupported.WithMessage(msg)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = jsonEncode(w, errcode.Errors{e})
		return
	default:
		r.log.Error("registry request failed", "method", req.Method, "path", req.URL.Path, "err", err)
		e = errcode.ErrorCodeUnknown.WithMessage("internal error")
	}
	_ = errcode.ServeJSON(w, e)
}

// challenge is ECR's: Basic realm="https://<host>/",service="ecr.amazonaws.com".
func (r *Registry) challenge(req *http.Request) string {
	host := r.cfg.Host
	if host == "" {
		host = req.Host
	}
	scheme := "https"
	if req.TLS == nil && r.cfg.Host == "" && !strings.EqualFold(req.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "http"
	}
	return fmt.Sprintf(`Basic realm="%s://%s/",service="ecr.amazonaws.com"`, scheme, host)
}

func writeMethodNotAllowed(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusMethodNotAllowed)
	_ = jsonEncode(w, errcode.Errors{errcode.ErrorCodeUnsupported})
}

// authenticate returns the caller: an ECR authorization token as the
// Basic-auth password of user AWS, or a SigV4 signature. There is no
// anonymous access.
func (r *Registry) authenticate(req *http.Request) (iam.Principal, error) {
	if isSigV4(req) {
		if r.cfg.SigV4 == nil {
			return iam.Principal{}, errdefs.New(errdefs.ErrUnauthenticated, ecr.NotAuthorizedMessage)
		}
		body, err := r.bufferBody(req)
		if err != nil {
			return iam.Principal{}, err
		}
		return r.cfg.SigV4.Verify(req.Context(), req, body)
	}
	user, token, ok := req.BasicAuth()
	if !ok || user != ecr.AuthorizationUser {
		return iam.Principal{}, errdefs.New(errdefs.ErrUnauthenticated, ecr.NotAuthorizedMessage)
	}
	principalARN, err := ecr.VerifyToken(r.cfg.TokenKey, token, r.clock.Now())
	if err != nil {
		return iam.Principal{}, err
	}
	if r.cfg.PrincipalForToken == nil {
		return iam.Principal{ARN: principalARN, AccountID: r.cfg.AccountID}, nil
	}
	p, err := r.cfg.PrincipalForToken(req.Context(), principalARN)
	if errors.Is(err, errdefs.ErrNotFound) {
		return iam.Principal{}, errdefs.WithReason(errdefs.ErrUnauthenticated, ecr.ErrTokenInvalid, ecr.NotAuthorizedMessage)
	}
	return p, err
}

func isSigV4(req *http.Request) bool {
	if strings.HasPrefix(req.Header.Get("Authorization"), "AWS4-HMAC-SHA256") {
		return true
	}
	q := req.URL.Query()
	return q.Has("X-Amz-Signature") || q.Has("X-Amz-Algorithm")
}

// bufferBody reads a SigV4 request's body, whose hash the signature
// covers, and puts it back for the app.
func (r *Registry) bufferBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, r.cfg.MaxSigV4Body+1))
	_ = req.Body.Close()
	if err != nil {
		return nil, errdefs.InvalidArgument("reading request body: " + err.Error())
	}
	if int64(len(body)) > r.cfg.MaxSigV4Body {
		return nil, errdefs.New(errdefs.ErrLimitExceeded, fmt.Sprintf(
			"SigV4-signed request bodies are limited to %d bytes; log in with an authorization token to push larger layers", r.cfg.MaxSigV4Body))
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	return body, nil
}

// viewRepository opens a repository of a storage view.
func (r *Registry) viewRepository(ctx context.Context, ns distribution.Namespace, name string) (distribution.Repository, error) {
	named, err := reference.WithName(name)
	if err != nil {
		return nil, ecr.InvalidParameter(err.Error())
	}
	repo, err := ns.Repository(ctx, named)
	if err != nil {
		return nil, errdefs.Internal(err)
	}
	return repo, nil
}

// serveBlobFile serves a blob GET from the filesystem driver's file once
// the repository is known to link the blob; false leaves the request to
// distribution (unknown blob, other storage), which renders its errors.
func (r *Registry) serveBlobFile(w http.ResponseWriter, req *http.Request, name, ref string) bool {
	d, err := digest.Parse(ref)
	if err != nil {
		return false
	}
	ctx := req.Context()
	repo, err := r.viewRepository(ctx, r.view, name)
	if err != nil {
		return false
	}
	if _, err := repo.Blobs(ctx).Stat(ctx, d); err != nil {
		return false
	}
	handled, err := r.files.serve(w, req, d, r.touches.touch)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("blob content is corrupt or unreadable", "repository", name, "digest", d, "err", err)
			r.writeError(w, req, errdefs.Internal(err))
		}
		return true
	}
	return handled
}
