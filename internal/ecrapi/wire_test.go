package ecrapi

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
)

// TestWireShapes reads a response as it goes on the wire: members named as
// ECR names them, timestamps in epoch seconds, and scanOnPush sent when
// false, as ECR sends it.
func TestWireShapes(t *testing.T) {
	e := newEnv(t)
	svc := New(e.config())
	op, ok := svc.Operation("CreateRepository")
	if !ok {
		t.Fatal("no CreateRepository")
	}
	w := httptest.NewRecorder()
	if err := svc.Handle(e.ctx, w, op, []byte(`{"repositoryName":"team/app"}`)); err != nil {
		t.Fatal(err)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Errorf("content type %q", ct)
	}
	var out struct {
		Repository map[string]any `json:"repository"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	r := out.Repository
	scan, _ := r["imageScanningConfiguration"].(map[string]any)
	if v, ok := scan["scanOnPush"]; !ok || v != false {
		t.Errorf("scanOnPush: %v in %s", scan, w.Body)
	}
	if _, ok := r["createdAt"].(float64); !ok {
		t.Errorf("createdAt is not epoch seconds: %v", r["createdAt"])
	}
	enc, _ := r["encryptionConfiguration"].(map[string]any)
	if r["imageTagMutability"] != "MUTABLE" || enc["encryptionType"] != "AES256" || r["repositoryUri"] != e.host+"/team/app" {
		t.Errorf("repository %s", w.Body)
	}

	// An error is ECR's exception in the JSON envelope.
	w = httptest.NewRecorder()
	_ = svc.Handle(e.ctx, w, op, []byte(`{"repositoryName":"team/app"}`))
	if w.Code != 400 || w.Header().Get("X-Amzn-ErrorType") != "RepositoryAlreadyExistsException" {
		t.Errorf("duplicate: %d %s %s", w.Code, w.Header().Get("X-Amzn-ErrorType"), w.Body)
	}
}
