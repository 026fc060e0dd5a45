// Package e2e drives the built berth binary the way users do: the real AWS
// CLI v2 (Debian's /usr/bin/aws) and aws-sdk-go-v2 against `berth up`
// started on a free port with a temporary data directory.
package e2e
