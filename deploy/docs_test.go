// Package deploy holds what an operator deploys (NATS configuration,
// systemd units, Compose and Kubernetes manifests) and the test that the
// steps of docs/deploy.md run as written.
package deploy

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/testkit/servertest"
)

// TestDeployDocs runs test-deploy-docs.sh: the marked steps of
// docs/deploy.md on three nats-server nodes on loopback.
func TestDeployDocs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tocsin and nats-server and runs a three-node cluster")
	}
	for _, tool := range []string{"bash", "openssl", "curl", "ss", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			servertest.SkipOrFail(t, "%s is not installed", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", "test-deploy-docs.sh").CombinedOutput()
	if err != nil {
		t.Fatalf("test-deploy-docs.sh: %v\n%s", err, out)
	}
}
