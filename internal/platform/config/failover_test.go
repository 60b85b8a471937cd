package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestFailover(t *testing.T) {
	cfg, err := Load("testdata/good/failover.yaml", testEnv)
	if err != nil {
		t.Fatal(err)
	}
	web := cfg.Box("web").Failover
	want := &Failover{
		HAProxy: []HAProxy{
			{Address: "/run/haproxy/admin.sock", Backend: "web_pool", Timeout: Duration(DefaultHAProxyTimeout)},
			{Address: "lb2.internal:9999", Backend: "web_pool", Timeout: Duration(2 * time.Second)},
		},
		Webhook:      &Webhook{URL: "https://dns.example.net/failover", SecretFile: "failover-secret", Timeout: Duration(DefaultWebhookTimeout)},
		Servers:      map[string]string{"web2": "web-2"},
		RecoverAfter: Duration(2 * time.Minute),
	}
	if diff := cmp.Diff(want, web, cmpopts.IgnoreFields(Webhook{}, "Secret")); diff != "" {
		t.Errorf("web failover (-want +got):\n%s", diff)
	}
	if got := web.Webhook.Secret.Reveal(); got != "failover-hmac-key" {
		t.Errorf("webhook secret = %q, want the file's content", got)
	}
	if got := fmt.Sprintf("%v %+v", web.Webhook, *web.Webhook); strings.Contains(got, "failover-hmac-key") {
		t.Errorf("the webhook secret shows when the config is printed: %s", got)
	}
	if got, want := web.ServerName("web1")+" "+web.ServerName("web2"), "web1 web-2"; got != want {
		t.Errorf("server names = %q, want %q", got, want)
	}
	if !web.HAProxy[0].IsUnix() || web.HAProxy[1].IsUnix() {
		t.Errorf("IsUnix: %v %v, want true false", web.HAProxy[0].IsUnix(), web.HAProxy[1].IsUnix())
	}
	if cfg.Box("mail").Failover.Webhook != nil {
		t.Error("mail box has a webhook it was not given")
	}
}
