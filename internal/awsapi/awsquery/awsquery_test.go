package awsquery

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	smithy "github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/berth-dev/berth/internal/awsapi/apierror"
	"github.com/berth-dev/berth/internal/awsapi/sigv4"
	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParams(t *testing.T) {
	p, err := ParseForm([]byte("Action=AssumeRole&Version=2011-06-15" +
		"&Tags.member.2.Key=b&Tags.member.2.Value=2&Tags.member.1.Key=a&Tags.member.1.Value=1&Tags.member.10.Key=j" +
		"&TransitiveTagKeys.member.2=y&TransitiveTagKeys.member.1=x&TransitiveTagKeys.member.01=bad&TransitiveTagKeys.member.x=bad" +
		"&Attributes.entry.1.key=k1&Attributes.entry.1.value=v1&Attributes.entry.2.key=k2" +
		"&LoadBalancer.Scheme=internal&LoadBalancer.Subnets.member.1=s-1" +
		"&Empty=&Flat.1=f1&Flat.2=f2&Dup=first&Dup=second&Space=a+b%20c"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Action() != "AssumeRole" || p.Version() != "2011-06-15" {
		t.Fatalf("action %q version %q", p.Action(), p.Version())
	}
	var keys []string
	for _, e := range p.List("Tags.member") {
		keys = append(keys, e.Get("Key")+"="+e.Get("Value"))
	}
	if diff := cmp.Diff([]string{"a=1", "b=2", "j="}, keys); diff != "" {
		t.Errorf("Tags: %s", diff)
	}
	if diff := cmp.Diff([]string{"x", "y"}, p.Strings("TransitiveTagKeys.member")); diff != "" {
		t.Errorf("TransitiveTagKeys: %s", diff)
	}
	if diff := cmp.Diff(map[string]string{"k1": "v1", "k2": ""}, p.Map("Attributes.entry")); diff != "" {
		t.Errorf("Attributes: %s", diff)
	}
	lb := p.Sub("LoadBalancer")
	if lb.Get("Scheme") != "internal" || !cmp.Equal(lb.Strings("Subnets.member"), []string{"s-1"}) {
		t.Errorf("LoadBalancer view: scheme %q subnets %v", lb.Get("Scheme"), lb.Strings("Subnets.member"))
	}
	if !cmp.Equal(p.Strings("Flat"), []string{"f1", "f2"}) {
		t.Errorf("flattened list: %v", p.Strings("Flat"))
	}
	if v, ok := p.Lookup("Empty"); !ok || v != "" || !p.Has("Empty") || !p.Has("Tags") || p.Has("Nope") || p.Has("Tag") {
		t.Error("Lookup/Has")
	}
	if p.Get("Dup") != "first" || p.Get("Space") != "a b c" {
		t.Errorf("Dup %q Space %q", p.Get("Dup"), p.Get("Space"))
	}
	if p.List("Nope") != nil && len(p.List("Nope")) != 0 || p.Strings("Nope") != nil || p.Map("Nope") != nil {
		t.Error("absent list not empty")
	}
}

func TestParseRequest(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/?Action=FromQuery&X-Amz-Date=20240101T000000Z", nil)
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	p, err := ParseRequest(r, []byte("Action=FromBody&Version=1"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Action() != "FromBody" || p.Version() != "1" || p.Get("X-Amz-Date") != "20240101T000000Z" {
		t.Fatalf("params %v", p.m)
	}
	r.Header.Set("Content-Type", "application/json")
	if p, _ := ParseRequest(r, []byte("Action=FromBody")); p.Action() != "FromQuery" {
		t.Fatalf("a JSON body was read as a form: %v", p.m)
	}
	_, err = ParseForm([]byte("a=%zz"))
	if !errors.Is(err, ErrMalformedQuery) {
		t.Fatalf("err = %v", err)
	}
}

// sts is a toy STS: two actions, enough to prove the XML and form shapes
// against the SDK's own STS client.
type stsResult struct {
	Arn     string
	UserID  string `xml:"UserId"`
	Account string
}

type assumeRoleResult struct {
	Credentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string
		SessionToken    string
		Expiration      time.Time
	}
	AssumedRoleUser struct {
		Arn           string
		AssumedRoleID string `xml:"AssumedRoleId"`
	}
	PackedPolicySize int
}

var errNoSuchRole = errors.New("no such role")

type recorder struct {
	mu   sync.Mutex
	last Params
}

func newSTS(rec *recorder) *Service {
	return &Service{
		SigningName:  "sts",
		Version:      "2011-06-15",
		XMLNamespace: "https://sts.amazonaws.com/doc/2011-06-15/",
		Actions: map[string]Handler{
			"GetCallerIdentity": func(context.Context, Params) (any, error) {
				return stsResult{Arn: "arn:aws:iam::123456789012:user/admin", UserID: "AIDAEXAMPLE", Account: "123456789012"}, nil
			},
			"AssumeRole": func(_ context.Context, p Params) (any, error) {
				rec.mu.Lock()
				rec.last = p
				rec.mu.Unlock()
				switch p.Get("RoleArn") {
				case "arn:aws:iam::123456789012:role/missing":
					return nil, errdefs.WithReason(errdefs.ErrNotFound, errNoSuchRole, "Role not found.")
				case "arn:aws:iam::123456789012:role/boom":
					return nil, errdefs.Internal(errors.New("secret detail"))
				}
				var r assumeRoleResult
				r.Credentials.AccessKeyID = "ASIAEXAMPLE"
				r.Credentials.SecretAccessKey = "s3cr3t"
				r.Credentials.SessionToken = "token"
				r.Credentials.Expiration = time.Date(2024, 1, 1, 1, 0, 0, 0, time.UTC)
				r.AssumedRoleUser.Arn = "arn:aws:sts::123456789012:assumed-role/r/" + p.Get("RoleSessionName")
				r.AssumedRoleUser.AssumedRoleID = "AROAEXAMPLE:" + p.Get("RoleSessionName")
				r.PackedPolicySize = len(p.List("PolicyArns.member"))
				return &r, nil
			},
			"GetSessionToken": func(context.Context, Params) (any, error) { return (*assumeRoleResult)(nil), nil },
		},
		MapError: func(err error) *apierror.Error {
			if errors.Is(err, errNoSuchRole) {
				return &apierror.Error{Code: "NoSuchEntity", Message: errdefs.Message(err, ""), HTTPStatus: 404}
			}
			return nil
		},
	}
}

// handler serves svc without authentication, as the router does after
// verifying the signature.
func handler(svc *Service) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		p, err := ParseRequest(r, body)
		if err != nil {
			svc.WriteError(w, "req-1", err)
			return
		}
		_ = svc.Handle(r.Context(), w, "req-1", p)
	})
}

func newClient(t *testing.T, h http.Handler) *sts.Client {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return sts.New(sts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}, nil
		}),
		RetryMaxAttempts: 1,
	})
}

func TestSDKRoundTrip(t *testing.T) {
	rec := &recorder{}
	c := newClient(t, handler(newSTS(rec)))
	ctx := context.Background()

	id, err := c.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Arn) != "arn:aws:iam::123456789012:user/admin" || aws.ToString(id.Account) != "123456789012" || aws.ToString(id.UserId) != "AIDAEXAMPLE" {
		t.Fatalf("GetCallerIdentity = %+v", id)
	}

	ar, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:           aws.String("arn:aws:iam::123456789012:role/r"),
		RoleSessionName:   aws.String("sess"),
		PolicyArns:        []types.PolicyDescriptorType{{Arn: aws.String("arn:p1")}, {Arn: aws.String("arn:p2")}},
		Tags:              []types.Tag{{Key: aws.String("team"), Value: aws.String("web")}, {Key: aws.String("env"), Value: aws.String("prod & test")}},
		TransitiveTagKeys: []string{"team"},
		DurationSeconds:   aws.Int32(900),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(ar.Credentials.AccessKeyId) != "ASIAEXAMPLE" || aws.ToString(ar.Credentials.SessionToken) != "token" ||
		!ar.Credentials.Expiration.Equal(time.Date(2024, 1, 1, 1, 0, 0, 0, time.UTC)) ||
		aws.ToString(ar.AssumedRoleUser.AssumedRoleId) != "AROAEXAMPLE:sess" || aws.ToInt32(ar.PackedPolicySize) != 2 {
		t.Fatalf("AssumeRole = %+v %+v %+v", ar.Credentials, ar.AssumedRoleUser, ar.PackedPolicySize)
	}
	rec.mu.Lock()
	p := rec.last
	rec.mu.Unlock()
	var tags []string
	for _, e := range p.List("Tags.member") {
		tags = append(tags, e.Get("Key")+"="+e.Get("Value"))
	}
	var policies []string
	for _, e := range p.List("PolicyArns.member") {
		policies = append(policies, e.Get("arn"))
	}
	if !cmp.Equal(tags, []string{"team=web", "env=prod & test"}) || !cmp.Equal(policies, []string{"arn:p1", "arn:p2"}) ||
		!cmp.Equal(p.Strings("TransitiveTagKeys.member"), []string{"team"}) || p.Get("DurationSeconds") != "900" {
		t.Fatalf("the handler saw tags %v policies %v transitive %v", tags, policies, p.Strings("TransitiveTagKeys.member"))
	}

	// A nil result: an empty Result element, and the SDK is content.
	if _, err := c.GetSessionToken(ctx, &sts.GetSessionTokenInput{}); err != nil {
		t.Fatal(err)
	}
}

func TestSDKErrors(t *testing.T) {
	c := newClient(t, handler(newSTS(&recorder{})))
	ctx := context.Background()
	for _, tc := range []struct {
		role, code, msg string
	}{
		{"missing", "NoSuchEntity", "Role not found."},
		{"boom", "InternalFailure", InternalFailureMessage},
	} {
		_, err := c.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/" + tc.role), RoleSessionName: aws.String("s")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || ae.ErrorMessage() != tc.msg {
			t.Errorf("%s: err = %v; want %s: %s", tc.role, err, tc.code, tc.msg)
		}
	}
	_, err := c.DecodeAuthorizationMessage(ctx, &sts.DecodeAuthorizationMessageInput{EncodedMessage: aws.String("x")})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "InvalidAction" || ae.ErrorMessage() != "Could not find operation DecodeAuthorizationMessage for version 2011-06-15" {
		t.Fatalf("unknown action: %v", err)
	}
}

func TestResponseXML(t *testing.T) {
	svc := newSTS(&recorder{})
	p, _ := ParseForm([]byte("Action=GetCallerIdentity&Version=2011-06-15"))
	rec := httptest.NewRecorder()
	if err := svc.Handle(context.Background(), rec, "0f3d-id", p); err != nil {
		t.Fatal(err)
	}
	want := `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">` +
		`<GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/admin</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult>` +
		`<ResponseMetadata><RequestId>0f3d-id</RequestId></ResponseMetadata></GetCallerIdentityResponse>`
	if rec.Body.String() != want || rec.Header().Get("Content-Type") != "text/xml" || rec.Code != 200 {
		t.Fatalf("got %d %q\n%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

func TestErrorXML(t *testing.T) {
	auth := func(reason error, msg string) error {
		return errdefs.WithReason(errdefs.ErrUnauthenticated, reason, msg)
	}
	for _, tc := range []struct {
		name   string
		svc    *Service
		err    error
		status int
		typ    string
		code   string
		msg    string
	}{
		{"missing", nil, auth(sigv4.ErrMissingAuth, "Missing Authentication Token"), 403, "Sender", "MissingAuthenticationToken", "Request is missing Authentication Token"},
		{"unknown key", newSTS(nil), auth(sigv4.ErrUnknownAccessKey, "The security token included in the request is invalid."), 403, "Sender", "InvalidClientTokenId", "The security token included in the request is invalid."},
		{"mismatch", newSTS(nil), auth(sigv4.ErrSignatureMismatch, "sig"), 403, "Sender", "SignatureDoesNotMatch", "sig"},
		{"expired", newSTS(nil), auth(sigv4.ErrExpired, "Signature expired: x"), 403, "Sender", "SignatureDoesNotMatch", "Signature expired: x"},
		{"incomplete", newSTS(nil), auth(sigv4.ErrIncompleteSignature, "inc"), 403, "Sender", "IncompleteSignature", "inc"},
		{"invalid action", newSTS(nil), InvalidAction("Nope", ""), 400, "Sender", "InvalidAction", "Could not find operation Nope for version NO_VERSION_SPECIFIED"},
		{"validation", newSTS(nil), errdefs.InvalidArgument("bad"), 400, "Sender", "ValidationError", "bad"},
		{"internal", newSTS(nil), errors.New("db password is hunter2"), 500, "Receiver", "InternalFailure", InternalFailureMessage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tc.svc.WriteError(rec, "rid", tc.err)
			var got struct {
				XMLName   xml.Name
				Error     struct{ Type, Code, Message string }
				RequestID string `xml:"RequestId"`
			}
			if err := xml.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("%v: %s", err, rec.Body)
			}
			if rec.Code != tc.status || got.XMLName.Local != "ErrorResponse" || got.Error.Type != tc.typ || got.Error.Code != tc.code ||
				got.Error.Message != tc.msg || got.RequestID != "rid" {
				t.Fatalf("got %d %s", rec.Code, rec.Body)
			}
			if tc.svc != nil && got.XMLName.Space != tc.svc.XMLNamespace {
				t.Fatalf("namespace %q", got.XMLName.Space)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	svc := newSTS(&recorder{})
	for _, tc := range []struct {
		form string
		msg  string
	}{
		{"Action=GetCallerIdentity&Version=2011-06-15", ""},
		{"Action=GetCallerIdentity&Version=2010-01-01", "Could not find operation GetCallerIdentity for version 2010-01-01"},
		{"Action=GetCallerIdentity", "Could not find operation GetCallerIdentity for version NO_VERSION_SPECIFIED"},
		{"Action=Nope&Version=2011-06-15", "Could not find operation Nope for version 2011-06-15"},
	} {
		p, _ := ParseForm([]byte(tc.form))
		_, err := svc.Resolve(p)
		if (err == nil) != (tc.msg == "") || err != nil && (errdefs.Message(err, "") != tc.msg || !errors.Is(err, ErrInvalidAction)) {
			t.Errorf("%s: %v", tc.form, err)
		}
	}
}

func FuzzParseForm(f *testing.F) {
	for _, s := range []string{
		"", "Action=GetCallerIdentity&Version=2011-06-15",
		"Tags.member.1.Key=a&Tags.member.1.Value=b&Tags.member.2.Key=c",
		"Attributes.entry.1.key=k&Attributes.entry.1.value=v",
		"a=%zz", "a;b=c", "Tags.member.0=x&Tags.member.999999999=y&Tags.member.1000000000=z&Tags.member.=e&Tags.member..x=f",
		"=&&&=x&%00=%FF",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseForm(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedQuery) {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		_ = p.Action() + p.Version()
		for _, prefix := range []string{"Tags.member", "Attributes.entry", "Tags", ""} {
			for _, e := range p.List(prefix) {
				_ = e.Get("Key") + e.Get("")
				_ = e.Strings("member")
			}
			_ = p.Map(prefix)
			_ = p.Strings(prefix)
			_ = p.Sub(prefix).Has("x")
		}
		// A handler's answer for any parsed form is well-formed XML.
		rec := httptest.NewRecorder()
		_ = newSTS(&recorder{}).Handle(context.Background(), rec, "id", p)
		if !strings.HasPrefix(rec.Body.String(), "<") {
			t.Fatalf("response %q", rec.Body)
		}
		if err := xml.Unmarshal(rec.Body.Bytes(), new(struct{})); err != nil {
			t.Fatalf("malformed XML for %q: %v\n%s", body, err, rec.Body)
		}
	})
}
