// Package version holds the build's version, set at link time with
// -ldflags "-X github.com/berth-dev/berth/internal/version.Version=...".
package version

// Version is berth's version string.
var Version = "0.1.0-dev"

// APIVersion is the ECS API version berth speaks.
const APIVersion = "2014-11-13"
