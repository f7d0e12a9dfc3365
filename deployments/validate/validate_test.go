// Package validate checks meshpulse's deployment files without a Docker
// engine or a Kubernetes cluster: the compose file against the Compose
// specification (compose-go, the library docker compose itself uses), and
// every Kubernetes manifest by strict decoding into the k8s.io/api types
// (unknown or misspelt fields fail). It is a module of its own so that
// meshpulse's binaries do not depend on these libraries.
package validate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

func TestComposeFile(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml"}, cli.WithName("meshpulse"),
		cli.WithWorkingDirectory("../.."))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not validate: %v", err)
	}
	want := map[string]bool{"kafka": true, "clickhouse": true, "migrate": true, "ingestor": true, "scorer": true}
	for name, svc := range project.Services {
		delete(want, name)
		if name != "migrate" && svc.HealthCheck == nil {
			t.Errorf("service %s has no health check", name)
		}
	}
	if len(want) > 0 {
		t.Errorf("services missing: %v", want)
	}
	if r := project.Services["ingestor"].Deploy; r == nil || r.Replicas == nil || *r.Replicas != 2 {
		t.Errorf("the ingestor should run 2 replicas")
	}
}

func TestKubernetesManifests(t *testing.T) {
	files, err := filepath.Glob("../kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	services, migrateJob := 0, false
	defer func() {
		if services < 4 || !migrateJob {
			t.Errorf("want the ingestor, scorer, openlineage and catalog Deployments and the migrate Job; got %d deployments, job %v", services, migrateJob)
		}
	}()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(b, []byte("\n---")) {
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			var meta struct{ Kind string }
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var obj any
			switch meta.Kind {
			case "Deployment":
				obj = &appsv1.Deployment{}
			case "Job":
				obj = &batchv1.Job{}
			case "ConfigMap":
				obj = &corev1.ConfigMap{}
			case "Secret":
				obj = &corev1.Secret{}
			case "Service":
				obj = &corev1.Service{}
			default:
				t.Fatalf("%s document %d: unexpected kind %q", f, i, meta.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("%s document %d (%s): %v", f, i, meta.Kind, err)
				continue
			}
			if d, ok := obj.(*appsv1.Deployment); ok {
				for _, c := range d.Spec.Template.Spec.Containers {
					if c.LivenessProbe == nil || c.ReadinessProbe == nil || c.Resources.Requests.Memory().IsZero() {
						t.Errorf("%s: container %s needs probes and a memory request", f, c.Name)
					}
					if c.SecurityContext == nil || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
						t.Errorf("%s: container %s must not allow privilege escalation", f, c.Name)
					}
				}
				if s := d.Spec.Template.Spec.SecurityContext; s == nil || s.RunAsNonRoot == nil || !*s.RunAsNonRoot {
					t.Errorf("%s: pods must run as non-root", f)
				}
				services++
			}
			if j, ok := obj.(*batchv1.Job); ok {
				if s := j.Spec.Template.Spec.SecurityContext; s == nil || s.RunAsNonRoot == nil || !*s.RunAsNonRoot {
					t.Errorf("%s: the migrate job must run as non-root", f)
				}
				migrateJob = true
			}
			if c, ok := obj.(*corev1.ConfigMap); ok && strings.HasPrefix(c.Name, "meshpulse-") && c.Data["MESHPULSE_CLICKHOUSE"] != "" {
				// Services run under least-privilege users: the schema is the job's.
				if c.Data["MESHPULSE_MIGRATE"] != "false" {
					t.Errorf("%s: ConfigMap %s must set MESHPULSE_MIGRATE to \"false\" (the migrate job owns the schema)", f, c.Name)
				}
			}
			t.Logf("%s: %s valid", filepath.Base(f), meta.Kind)
		}
	}
}

// TestKustomization: every resource and generated file it names exists.
func TestKustomization(t *testing.T) {
	b, err := os.ReadFile("../kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources          []string
		ConfigMapGenerator []struct {
			Name  string
			Files []string
		} `json:"configMapGenerator"`
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	files := append([]string(nil), k.Resources...)
	for _, g := range k.ConfigMapGenerator {
		files = append(files, g.Files...)
	}
	if len(files) < 3 {
		t.Fatalf("kustomization names %v", files)
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join("..", f)); err != nil {
			t.Errorf("kustomization names %s: %v", f, err)
		}
	}
}

func stripComments(doc []byte) []byte {
	var out []string
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}

// TestComposeClusterFile: the clustered variant merged onto the base file
// validates, has three brokers, four ClickHouse servers with their shared
// cluster configuration and their own macros, ZooKeeper, and services that
// name the cluster.
func TestComposeClusterFile(t *testing.T) {
	opts, err := cli.NewProjectOptions([]string{"../../docker-compose.yml", "../../docker-compose.cluster.yml"}, cli.WithName("meshpulse"),
		cli.WithWorkingDirectory("../.."))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml with docker-compose.cluster.yml does not validate: %v", err)
	}
	for _, name := range []string{"kafka", "kafka-2", "kafka-3", "zookeeper", "clickhouse", "clickhouse-s1r2", "clickhouse-s2r1", "clickhouse-s2r2"} {
		svc, ok := project.Services[name]
		if !ok {
			t.Errorf("service %s missing", name)
			continue
		}
		if svc.HealthCheck == nil {
			t.Errorf("service %s has no health check", name)
		}
		if strings.HasPrefix(name, "clickhouse") {
			macros := 0
			for _, v := range svc.Volumes {
				if v.Type == "bind" {
					if _, err := os.Stat(v.Source); err != nil {
						t.Errorf("%s mounts %s: %v", name, v.Source, err)
					}
					if strings.Contains(v.Source, "macros-") {
						macros++
					}
				}
			}
			if macros != 1 {
				t.Errorf("%s mounts %d macros files, want 1", name, macros)
			}
		}
		if strings.HasPrefix(name, "kafka") && svc.Environment["KAFKA_CONTROLLER_QUORUM_VOTERS"] == nil {
			t.Errorf("%s has no quorum voters", name)
		}
	}
	for _, name := range []string{"migrate", "ingestor", "scorer", "catalog"} {
		env := project.Services[name].Environment
		if v := env["MESHPULSE_CLICKHOUSE_CLUSTER"]; v == nil || *v != "mesh" {
			t.Errorf("%s does not name the ClickHouse cluster", name)
		}
		if v := env["MESHPULSE_CLICKHOUSE_USER"]; v == nil {
			t.Errorf("%s lost the base file's ClickHouse user", name)
		}
	}
	if v := project.Services["kafka"].Environment["KAFKA_NODE_ID"]; v == nil || *v != "1" {
		t.Errorf("the base broker is not node 1 of the quorum")
	}
}

// TestKustomizationCluster: the cluster overlay's patches are valid
// objects that patch objects of the base, and name the cluster.
func TestKustomizationCluster(t *testing.T) {
	b, err := os.ReadFile("../cluster/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string
		Patches   []struct{ Path string }
	}
	if err := yaml.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	if len(k.Resources) != 1 || k.Resources[0] != ".." || len(k.Patches) == 0 {
		t.Fatalf("the overlay should build on .. and patch it: %+v", k)
	}
	base := map[string]bool{} // kind/name of every object of the base
	files, _ := filepath.Glob("../kubernetes/*.yaml")
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, doc := range bytes.Split(data, []byte("\n---")) {
			var m struct {
				Kind     string
				Metadata struct{ Name string }
			}
			if yaml.Unmarshal(doc, &m) == nil && m.Kind != "" {
				base[m.Kind+"/"+m.Metadata.Name] = true
			}
		}
	}
	named := 0
	for _, p := range k.Patches {
		data, err := os.ReadFile(filepath.Join("../cluster", p.Path))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range bytes.Split(data, []byte("\n---")) {
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			var m struct {
				Kind     string
				Metadata struct{ Name string }
			}
			if err := yaml.Unmarshal(doc, &m); err != nil {
				t.Fatalf("%s: %v", p.Path, err)
			}
			if !base[m.Kind+"/"+m.Metadata.Name] {
				t.Errorf("%s patches %s/%s, which the base does not have", p.Path, m.Kind, m.Metadata.Name)
			}
			var obj any = &corev1.ConfigMap{}
			if m.Kind == "Job" {
				obj = &batchv1.Job{}
			}
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("%s (%s): %v", p.Path, m.Kind, err)
			}
			if bytes.Contains(doc, []byte("MESHPULSE_CLICKHOUSE_CLUSTER")) {
				named++
			}
		}
	}
	if named < 4 {
		t.Errorf("%d patched objects name the cluster; want the ingestor, scorer, catalog and migrate job", named)
	}
}
