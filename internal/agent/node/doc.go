// Package node is the node agent: it joins a server with a join token,
// registers the machine as a container instance (RegisterContainerInstance,
// as the ECS agent does), keeps the agent channel open, runs the tasks the
// channel assigns through the task engine, reports their states through
// the ECS API and serves the task metadata endpoint. It composes the other
// agent packages; `berth agent` and `berth up` run it.
package node
