// Package ecsapi is berth's Amazon ECS API: one handler per ECS action,
// taking and returning the AWS SDK's own input and output types, over the
// state store. It knows nothing about HTTP framing: New hands the handlers
// to the awsJson1_1 protocol (package awsjson), which decodes requests and
// encodes responses with the SDK's schema serializer.
//
// Every handler authorizes first (ecs:<Action> on the resource ARN, or "*"
// for actions without one), validates, then reads from the store (in
// production a watch-fed cache) and writes with compare-and-swap
// transactions that are retried on conflict. Errors are errdefs kinds with
// ECS's messages; MapError turns them into ECS exception names once.
package ecsapi

import (
	"context"
	"io"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/ecs/schemas"
	smithy "github.com/aws/smithy-go"

	"github.com/berth-dev/berth/internal/awsapi"
	"github.com/berth-dev/berth/internal/awsapi/awsjson"
	"github.com/berth-dev/berth/internal/clock"
	domain "github.com/berth-dev/berth/internal/ecs"
	"github.com/berth-dev/berth/internal/iam"
	"github.com/berth-dev/berth/internal/store"
)

// Wire identity of the ECS API (botocore's service model metadata).
const (
	TargetPrefix = "AmazonEC2ContainerServiceV20141113"
	SigningName  = "ecs"
	JSONVersion  = "1.1"
)

// Config is what the ECS API needs from the server.
type Config struct {
	Store      store.Store
	Authorizer iam.Authorizer
	Clock      clock.Clock // nil means the wall clock
	Region     string
	AccountID  string
	Logger     *slog.Logger // nil discards
	// RegistryHosts are image registry hosts whose images count as ECR
	// images when a task definition's requiresAttributes are computed
	// (berth's own registry belongs here).
	RegistryHosts []string
	// Endpoint is the server's advertised URL (e.g. http://127.0.0.1:7400):
	// DiscoverPollEndpoint returns it to agents.
	Endpoint string
}

// New returns the ECS API as an awsJson1_1 service.
func New(cfg Config) *awsjson.Service {
	h := newHandlers(cfg)
	return &awsjson.Service{
		TargetPrefix: TargetPrefix,
		SigningName:  SigningName,
		JSONVersion:  JSONVersion,
		Schema:       schemas.AmazonEC2ContainerServiceV20141113,
		Operations:   h.operations(),
		MapError:     h.mapError,
		Primitives:   primitiveShapes,
	}
}

// primitiveShapes are the ECS model's non-boxed primitives: ECS always sends
// members of these types, zero included ("runningTasksCount": 0).
var primitiveShapes = []smithy.ShapeID{
	{Namespace: "com.amazonaws.ecs", Name: "Integer"},
	{Namespace: "com.amazonaws.ecs", Name: "Boolean"},
	{Namespace: "com.amazonaws.ecs", Name: "Long"},
	{Namespace: "com.amazonaws.ecs", Name: "Double"},
}

// handlers holds the ECS actions. Its methods have the signature
// func(context.Context, *ecs.XInput) (*ecs.XOutput, error).
type handlers struct {
	store         store.Store
	authz         iam.Authorizer
	clock         clock.Clock
	region        string
	account       string
	log           *slog.Logger
	registryHosts []string
	endpoint      string

	// Decoded records for describe paths, once per change (read-only).
	clusters  store.Memo[domain.Cluster]
	taskDefs  store.Memo[domain.TaskDefinitionRecord]
	instances store.Memo[domain.ContainerInstance]
	tasks     store.Memo[domain.TaskRecord]
	services  store.Memo[domain.ServiceRecord]
	// phases is the task records' phases, for instances' task counts.
	phases store.Memo[domain.TaskPhaseView]
	// snaps is each cluster's last placement snapshot.
	snaps snapCache
	// placeGates bounds each cluster's placements in flight.
	placeGates clusterGates
}

func newHandlers(cfg Config) *handlers {
	h := &handlers{
		store:         cfg.Store,
		authz:         cfg.Authorizer,
		clock:         cfg.Clock,
		region:        cfg.Region,
		account:       cfg.AccountID,
		log:           cfg.Logger,
		registryHosts: cfg.RegistryHosts,
		endpoint:      cfg.Endpoint,
	}
	if h.clock == nil {
		h.clock = clock.Real{}
	}
	if h.log == nil {
		h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return h
}

func bind[In any, Out smithy.Serializable](op, req, resp *smithy.Schema, fn func(context.Context, *In) (Out, error)) awsjson.Operation {
	return awsjson.Bind(smithy.NewOperationSchema(op, req, resp), fn)
}

// operations lists every action the ECS API implements so far.
func (h *handlers) operations() []awsjson.Operation {
	return []awsjson.Operation{
		// Clusters.
		bind(schemas.CreateCluster, schemas.CreateClusterRequest, schemas.CreateClusterResponse, h.CreateCluster),
		bind(schemas.DescribeClusters, schemas.DescribeClustersRequest, schemas.DescribeClustersResponse, h.DescribeClusters),
		bind(schemas.ListClusters, schemas.ListClustersRequest, schemas.ListClustersResponse, h.ListClusters),
		bind(schemas.UpdateCluster, schemas.UpdateClusterRequest, schemas.UpdateClusterResponse, h.UpdateCluster),
		bind(schemas.UpdateClusterSettings, schemas.UpdateClusterSettingsRequest, schemas.UpdateClusterSettingsResponse, h.UpdateClusterSettings),
		bind(schemas.DeleteCluster, schemas.DeleteClusterRequest, schemas.DeleteClusterResponse, h.DeleteCluster),
		// Task definitions.
		bind(schemas.RegisterTaskDefinition, schemas.RegisterTaskDefinitionRequest, schemas.RegisterTaskDefinitionResponse, h.RegisterTaskDefinition),
		bind(schemas.DescribeTaskDefinition, schemas.DescribeTaskDefinitionRequest, schemas.DescribeTaskDefinitionResponse, h.DescribeTaskDefinition),
		bind(schemas.ListTaskDefinitions, schemas.ListTaskDefinitionsRequest, schemas.ListTaskDefinitionsResponse, h.ListTaskDefinitions),
		bind(schemas.ListTaskDefinitionFamilies, schemas.ListTaskDefinitionFamiliesRequest, schemas.ListTaskDefinitionFamiliesResponse, h.ListTaskDefinitionFamilies),
		bind(schemas.DeregisterTaskDefinition, schemas.DeregisterTaskDefinitionRequest, schemas.DeregisterTaskDefinitionResponse, h.DeregisterTaskDefinition),
		bind(schemas.DeleteTaskDefinitions, schemas.DeleteTaskDefinitionsRequest, schemas.DeleteTaskDefinitionsResponse, h.DeleteTaskDefinitions),
		// Tags.
		bind(schemas.TagResource, schemas.TagResourceRequest, schemas.TagResourceResponse, h.TagResource),
		bind(schemas.UntagResource, schemas.UntagResourceRequest, schemas.UntagResourceResponse, h.UntagResource),
		bind(schemas.ListTagsForResource, schemas.ListTagsForResourceRequest, schemas.ListTagsForResourceResponse, h.ListTagsForResource),
		// Container instances and attributes.
		bind(schemas.RegisterContainerInstance, schemas.RegisterContainerInstanceRequest, schemas.RegisterContainerInstanceResponse, h.RegisterContainerInstance),
		bind(schemas.DeregisterContainerInstance, schemas.DeregisterContainerInstanceRequest, schemas.DeregisterContainerInstanceResponse, h.DeregisterContainerInstance),
		bind(schemas.DescribeContainerInstances, schemas.DescribeContainerInstancesRequest, schemas.DescribeContainerInstancesResponse, h.DescribeContainerInstances),
		bind(schemas.ListContainerInstances, schemas.ListContainerInstancesRequest, schemas.ListContainerInstancesResponse, h.ListContainerInstances),
		bind(schemas.UpdateContainerInstancesState, schemas.UpdateContainerInstancesStateRequest, schemas.UpdateContainerInstancesStateResponse, h.UpdateContainerInstancesState),
		bind(schemas.DiscoverPollEndpoint, schemas.DiscoverPollEndpointRequest, schemas.DiscoverPollEndpointResponse, h.DiscoverPollEndpoint),
		bind(schemas.PutAttributes, schemas.PutAttributesRequest, schemas.PutAttributesResponse, h.PutAttributes),
		bind(schemas.DeleteAttributes, schemas.DeleteAttributesRequest, schemas.DeleteAttributesResponse, h.DeleteAttributes),
		bind(schemas.ListAttributes, schemas.ListAttributesRequest, schemas.ListAttributesResponse, h.ListAttributes),
		// Tasks.
		bind(schemas.RunTask, schemas.RunTaskRequest, schemas.RunTaskResponse, h.RunTask),
		bind(schemas.StartTask, schemas.StartTaskRequest, schemas.StartTaskResponse, h.StartTask),
		bind(schemas.StopTask, schemas.StopTaskRequest, schemas.StopTaskResponse, h.StopTask),
		bind(schemas.DescribeTasks, schemas.DescribeTasksRequest, schemas.DescribeTasksResponse, h.DescribeTasks),
		bind(schemas.ListTasks, schemas.ListTasksRequest, schemas.ListTasksResponse, h.ListTasks),
		bind(schemas.SubmitTaskStateChange, schemas.SubmitTaskStateChangeRequest, schemas.SubmitTaskStateChangeResponse, h.SubmitTaskStateChange),
		bind(schemas.SubmitContainerStateChange, schemas.SubmitContainerStateChangeRequest, schemas.SubmitContainerStateChangeResponse, h.SubmitContainerStateChange),
		// Services.
		bind(schemas.CreateService, schemas.CreateServiceRequest, schemas.CreateServiceResponse, h.CreateService),
		bind(schemas.UpdateService, schemas.UpdateServiceRequest, schemas.UpdateServiceResponse, h.UpdateService),
		bind(schemas.DeleteService, schemas.DeleteServiceRequest, schemas.DeleteServiceResponse, h.DeleteService),
		bind(schemas.DescribeServices, schemas.DescribeServicesRequest, schemas.DescribeServicesResponse, h.DescribeServices),
		bind(schemas.ListServices, schemas.ListServicesRequest, schemas.ListServicesResponse, h.ListServices),
		// Account settings.
		bind(schemas.ListAccountSettings, schemas.ListAccountSettingsRequest, schemas.ListAccountSettingsResponse, h.ListAccountSettings),
		bind(schemas.PutAccountSetting, schemas.PutAccountSettingRequest, schemas.PutAccountSettingResponse, h.PutAccountSetting),
		bind(schemas.PutAccountSettingDefault, schemas.PutAccountSettingDefaultRequest, schemas.PutAccountSettingDefaultResponse, h.PutAccountSettingDefault),
	}
}

// mapError maps err with MapError and logs server faults with their cause,
// which the caller never sees.
func (h *handlers) mapError(err error) *awsapi.Error {
	e := MapError(err)
	if e.HTTPStatus >= 500 {
		h.log.Error("ecs request failed", "code", e.Code, "err", err)
	}
	return e
}
