// Package monitoring_test tests what the chart gives Prometheus and
// Grafana: the alerts (promtool's rule unit tests, run against the rules as
// `helm template` renders them) and the dashboard (a real Prometheus
// scraping a running operator and token server under load, every panel's
// query answered).
package monitoring_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// tool finds a binary the Makefile builds: $env, else the newest
// bin/<glob>.
func tool(t *testing.T, env, glob, make string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	matches, _ := filepath.Glob(filepath.Join(repoRoot(t), "bin", glob))
	if len(matches) == 0 {
		testenv.MissingDependency(t, fmt.Errorf("no %s in bin/: run `%s`", glob, make))
	}
	slices.Sort(matches)
	return matches[len(matches)-1]
}

func helm(t *testing.T) string { return tool(t, "HELM", "helm-*", "make helm") }

func promtool(t *testing.T) string {
	return tool(t, "PROMTOOL", "promtool-*", "hack/prometheus.sh promtool")
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = repoRoot(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// ruleFile is a Prometheus rule file (and a PrometheusRule's spec).
type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for,omitempty"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func (f ruleFile) alerts() map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out[r.Alert] = r.Labels
		}
	}
	return out
}

// renderRules is the spec of the PrometheusRule `helm template` renders
// with the given --set values (alerts enabled), as a rule file.
func renderRules(t *testing.T, sets ...string) ([]byte, ruleFile) {
	t.Helper()
	args := []string{"template", "gatehouse", "charts/gatehouse", "--namespace", "gatehouse-system",
		"--show-only", "templates/prometheusrule.yaml", "--set", "alerts.enabled=true"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	var obj struct {
		Kind string `json:"kind"`
		Spec any    `json:"spec"`
	}
	if err := yaml.Unmarshal([]byte(run(t, helm(t), args...)), &obj); err != nil {
		t.Fatal(err)
	}
	if obj.Kind != "PrometheusRule" {
		t.Fatalf("rendered a %q, want a PrometheusRule", obj.Kind)
	}
	data, err := yaml.Marshal(obj.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var f ruleFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatal(err)
	}
	return data, f
}

// defaultRunbooks is the runbook base URL the chart renders by default:
// the repository's docs at the release tag, or main for an untagged chart.
func defaultRunbooks(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "charts", "gatehouse", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil {
		t.Fatal(err)
	}
	ref := "main"
	if strings.HasPrefix(chart.AppVersion, "v") {
		ref = chart.AppVersion
	}
	return "https://github.com/gatehouse-dev/gatehouse/blob/" + ref + "/docs/runbooks"
}

// promtoolTests is testdata/alerts.test.yaml as far as the coverage check
// needs it.
type promtoolTests struct {
	Tests []struct {
		Name       string `json:"name"`
		AlertTests []struct {
			Alertname string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

// TestAlertRules unit-tests every alert with promtool against the rules
// exactly as the chart renders them: each fires on its bad series and stays
// quiet on good ones. It also checks that every alert has its runbook, and
// that operations.md links it.
func TestAlertRules(t *testing.T) {
	root := repoRoot(t)
	rules, file := renderRules(t)
	alerts := file.alerts()
	if len(alerts) < 13 {
		t.Fatalf("the chart renders %d alerts: %v", len(alerts), alerts)
	}
	runbooks := defaultRunbooks(t)
	ops, err := os.ReadFile(filepath.Join(root, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, sev)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: no summary or description", r.Alert)
			}
			if want := runbooks + "/" + r.Alert + ".md"; r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
			if _, err := os.Stat(filepath.Join(root, "docs", "runbooks", r.Alert+".md")); err != nil {
				t.Errorf("%s has no runbook: %v", r.Alert, err)
			}
			if !bytes.Contains(ops, []byte("(runbooks/"+r.Alert+".md)")) {
				t.Errorf("docs/operations.md does not link runbooks/%s.md", r.Alert)
			}
		}
	}

	// Every alert has a case that fires and one that stays quiet.
	tests, err := os.ReadFile(filepath.Join(root, "test", "monitoring", "testdata", "alerts.test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var pt promtoolTests
	if err := yaml.Unmarshal(tests, &pt); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range pt.Tests {
		for _, at := range tc.AlertTests {
			if _, ok := alerts[at.Alertname]; !ok {
				t.Errorf("test %q checks %s, which the chart does not render", tc.Name, at.Alertname)
			}
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			} else {
				quiet[at.Alertname] = true
			}
		}
	}
	for a := range alerts {
		if !fires[a] || !quiet[a] {
			t.Errorf("%s: promtool cases that fire: %v, that stay quiet: %v; want both", a, fires[a], quiet[a])
		}
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tests = bytes.ReplaceAll(tests, []byte("${RUNBOOKS}"), []byte(runbooks))
	if err := os.WriteFile(filepath.Join(dir, "alerts.test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	pt2 := promtool(t)
	t.Logf("promtool check rules:\n%s", run(t, pt2, "check", "rules", filepath.Join(dir, "rules.yaml")))
	out := run(t, pt2, "test", "rules", "--diff", filepath.Join(dir, "alerts.test.yaml"))
	t.Logf("promtool test rules (%d alerts, %d test groups):\n%s", len(alerts), len(pt.Tests), out)
}

// TestAlertValues: alerts.disabled leaves an alert out, alerts.ruleLabels
// label every alert without overriding its severity, and
// alerts.runbookBaseURL moves the runbook links.
func TestAlertValues(t *testing.T) {
	_, all := renderRules(t)
	_, f := renderRules(t, "alerts.disabled={GatehouseTokenSlow}", "alerts.ruleLabels.team=identity",
		"alerts.ruleLabels.severity=page", "alerts.runbookBaseURL=https://runbooks.example.com/gatehouse/")
	alerts := f.alerts()
	if _, ok := alerts["GatehouseTokenSlow"]; ok {
		t.Error("alerts.disabled did not leave GatehouseTokenSlow out")
	}
	if len(alerts) != len(all.alerts())-1 {
		t.Errorf("%d alerts with one disabled, %d without", len(alerts), len(all.alerts()))
	}
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Labels["team"] != "identity" {
				t.Errorf("%s: labels %v lack team=identity", r.Alert, r.Labels)
			}
			if r.Labels["severity"] == "page" {
				t.Errorf("%s: ruleLabels overrode the alert's own severity", r.Alert)
			}
			if want := "https://runbooks.example.com/gatehouse/" + r.Alert + ".md"; r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
		}
	}
	// The PrometheusRule is opt-in.
	cmd := exec.Command(helm(t), "template", "gatehouse", "charts/gatehouse", "--show-only", "templates/prometheusrule.yaml")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "could not find template") {
		t.Errorf("the PrometheusRule renders without alerts.enabled: %v\n%s", err, out)
	}
}
