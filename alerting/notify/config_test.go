package notify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tidewatch/tidewatch/config"
)

// TestNotificationsSection checks the notifications section through the
// configuration loader: pasted alertmanager.yml sections load, and mistakes
// are reported at their line.
func TestNotificationsSection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		text string
		want []string // "line: field: message" substrings; none for a good file
	}{
		{name: "absent", text: "global: {}\n"},
		{name: "full", text: `rule_files: [rules/*.yml]
alerting:
  alertmanagers:
    - static_configs: [{targets: ["127.0.0.1:9093"]}]
notifications:
  data_dir: /var/lib/tidewatch/alerting
  global: {resolve_timeout: 1m, smtp_smarthost: "smtp.example.com:587", smtp_from: tw@example.com}
  route: {receiver: ops, group_by: [alertname, job], group_wait: 10s, group_interval: 1m, repeat_interval: 4h,
          routes: [{matchers: ['severity="page"'], receiver: pager, continue: false}]}
  inhibit_rules:
    - source_matchers: ['severity="page"']
      target_matchers: ['severity="warning"']
      equal: [alertname]
  receivers:
    - name: ops
      webhook_configs: [{url: "http://hooks.example.com/x", send_resolved: true}]
      email_configs: [{to: ops@example.com}]
    - name: pager
      pagerduty_configs: [{routing_key: abc}]
`},
		{name: "unknown keys", text: `notifications:
  route: {receiver: ops, group_wat: 10s}
  receivers:
    - name: ops
      webhook_configs: [{url: "http://x/", send_resolvd: true}]
`, want: []string{
			`:2: notifications.route.group_wat: unknown field (did you mean "group_wait"?)`,
			`:5: notifications.receivers[0].webhook_configs[0].send_resolvd: unknown field`,
		}},
		{name: "undefined receiver", text: `notifications:
  route: {receiver: nobody}
  receivers: [{name: ops}]
`, want: []string{`:1: notifications: undefined receiver "nobody" used in route`}},
		{name: "no route", text: `notifications:
  receivers: [{name: ops}]
`, want: []string{`notifications.route: required`}},
		{name: "bad duration", text: `notifications:
  route: {receiver: ops, group_wait: soon}
  receivers: [{name: ops}]
`, want: []string{`:2: notifications.route.group_wait:`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("tw.yml", []byte(tc.text), nil)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				return
			}
			var probs config.Problems
			if !errors.As(err, &probs) {
				t.Fatalf("error %v is not config.Problems", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(probs.Error(), w) {
					t.Errorf("problems lack %q:\n%v", w, probs)
				}
			}
		})
	}
}
