package repocheck

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/alertsync/alertsync/internal/cli"
)

const k8sDir = "deploy/kubernetes"

// manifests are the objects of one kustomization, decoded strictly into
// their Kubernetes API types (a misspelt or misplaced field fails).
type manifests struct {
	deployments  []appsv1.Deployment
	statefulSets []appsv1.StatefulSet
	services     map[string]corev1.Service
	configMaps   map[string]corev1.ConfigMap
	pdbs         []policyv1.PodDisruptionBudget
	accounts     map[string]bool
	other        map[string][]byte // kind/name: the objects of CRDs
}

type kustomization struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Labels     []struct {
		Pairs            map[string]string `yaml:"pairs"`
		IncludeSelectors bool              `yaml:"includeSelectors"`
	} `yaml:"labels"`
	Resources []string `yaml:"resources"`
	Images    []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
}

// readKustomization decodes dir's kustomization.yaml and every object of
// the files it lists, and checks that it lists every manifest in dir.
func readKustomization(t *testing.T, dir string, except ...string) (kustomization, manifests) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	require.NoError(t, err)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var k kustomization
	require.NoError(t, dec.Decode(&k))
	require.Equal(t, "Kustomization", k.Kind)

	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	for _, f := range files {
		base := filepath.Base(f)
		if base != "kustomization.yaml" && !slices.Contains(except, base) {
			require.Contains(t, k.Resources, base, "%s is not in %s/kustomization.yaml", base, dir)
		}
	}
	m := manifests{services: map[string]corev1.Service{}, configMaps: map[string]corev1.ConfigMap{}, accounts: map[string]bool{}, other: map[string][]byte{}}
	for _, r := range k.Resources {
		raw, err := os.ReadFile(filepath.Join(dir, r))
		require.NoError(t, err, "resource %s", r)
		for i, doc := range strings.Split(string(raw), "\n---\n") {
			var head struct {
				Kind     string `json:"kind"`
				Metadata struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			require.NoError(t, sigsyaml.Unmarshal([]byte(doc), &head), "%s document %d", r, i)
			where := r + ": " + head.Kind + " " + head.Metadata.Name
			switch head.Kind {
			case "Deployment":
				m.deployments = append(m.deployments, decodeStrict[appsv1.Deployment](t, doc, where))
			case "StatefulSet":
				m.statefulSets = append(m.statefulSets, decodeStrict[appsv1.StatefulSet](t, doc, where))
			case "Service":
				m.services[head.Metadata.Name] = decodeStrict[corev1.Service](t, doc, where)
			case "ConfigMap":
				m.configMaps[head.Metadata.Name] = decodeStrict[corev1.ConfigMap](t, doc, where)
			case "PodDisruptionBudget":
				m.pdbs = append(m.pdbs, decodeStrict[policyv1.PodDisruptionBudget](t, doc, where))
			case "ServiceAccount":
				decodeStrict[corev1.ServiceAccount](t, doc, where)
				m.accounts[head.Metadata.Name] = true
			default:
				m.other[head.Kind+"/"+head.Metadata.Name] = []byte(doc)
			}
		}
	}
	return k, m
}

// decodeStrict decodes a manifest into its API type; a field the type does
// not have fails.
func decodeStrict[T any](t *testing.T, doc, where string) T {
	t.Helper()
	var o T
	require.NoError(t, sigsyaml.UnmarshalStrict([]byte(doc), &o), where)
	return o
}

// workload is a Deployment's or StatefulSet's name, pod template and
// replicas.
type workload struct {
	name     string
	kind     string
	replicas int32
	tmpl     corev1.PodTemplateSpec
	selector map[string]string
}

func (m manifests) workloads() []workload {
	var out []workload
	for _, d := range m.deployments {
		out = append(out, workload{d.Name, "Deployment", *d.Spec.Replicas, d.Spec.Template, d.Spec.Selector.MatchLabels})
	}
	for _, s := range m.statefulSets {
		out = append(out, workload{s.Name, "StatefulSet", *s.Spec.Replicas, s.Spec.Template, s.Spec.Selector.MatchLabels})
	}
	return out
}

// TestKubernetesManifests: the kustomization's objects decode strictly; the
// whole pipeline runs with the settings its components need (each
// component's configuration, as mounted, passes `alertsync config check`);
// probes, ports, services, secrets, shutdown and security settings agree
// with the binary and with one another.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(root, k8sDir)
	k, m := readKustomization(t, dir, "secret.example.yaml")
	require.Empty(t, m.other, "objects of kinds this test does not check")
	require.Len(t, k.Images, 1)

	var secret corev1.Secret
	raw, err := os.ReadFile(filepath.Join(dir, "secret.example.yaml"))
	require.NoError(t, err)
	require.NoError(t, sigsyaml.UnmarshalStrict(raw, &secret))

	env, ok := m.configMaps["alertsync-env"]
	require.True(t, ok, "ConfigMap alertsync-env")
	files, ok := m.configMaps["alertsync-config"]
	require.True(t, ok, "ConfigMap alertsync-config")
	docs, err := os.ReadFile(filepath.Join(root, "docs/configuration.md"))
	require.NoError(t, err)
	for key := range env.Data {
		require.Contains(t, string(docs), "`"+key+"`", "alertsync-env sets %s, which is no documented key", key)
	}
	shutdown, err := time.ParseDuration(env.Data["ALERTSYNC_SHUTDOWN_TIMEOUT"])
	require.NoError(t, err)
	require.Equal(t, ":9464", env.Data["ALERTSYNC_ADMIN_LISTEN"], "the admin server must listen beyond the pod's loopback")

	run := map[string]bool{}
	for _, w := range m.workloads() {
		t.Run(w.name, func(t *testing.T) {
			pod := w.tmpl.Spec
			require.Equal(t, w.selector, w.tmpl.Labels, "the selector is the pod labels")
			require.True(t, m.accounts[pod.ServiceAccountName], "service account %q", pod.ServiceAccountName)
			require.NotNil(t, pod.TerminationGracePeriodSeconds)
			require.GreaterOrEqual(t, time.Duration(*pod.TerminationGracePeriodSeconds)*time.Second, shutdown+10*time.Second,
				"the grace period must outlast shutdown.timeout, which bounds the whole shutdown, with 10s to spare, or the kubelet kills a draining component")
			require.NotNil(t, pod.SecurityContext.RunAsNonRoot)
			require.True(t, *pod.SecurityContext.RunAsNonRoot)
			require.Len(t, pod.Containers, 1)
			c := pod.Containers[0]
			require.Equal(t, "alertsync", c.Image, "the image kustomization.yaml sets")
			require.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
			require.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
			limit, ok := c.Resources.Limits[corev1.ResourceMemory]
			require.True(t, ok, "no memory limit")
			// GOMEMLIMIT keeps the Go heap under the limit, with room for
			// what is not Go's.
			i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
			require.GreaterOrEqual(t, i, 0, "no GOMEMLIMIT")
			goLimit, err := resource.ParseQuantity(strings.TrimSuffix(c.Env[i].Value, "B"))
			require.NoError(t, err, "GOMEMLIMIT %q", c.Env[i].Value)
			require.Less(t, goLimit.Value(), limit.Value()*9/10, "GOMEMLIMIT %s leaves under 10%% of the %s limit", c.Env[i].Value, limit.String())

			// The subcommand and its configuration file.
			i = slices.Index(c.Args, "--config")
			require.Positive(t, i, "args %v name no --config file", c.Args)
			sub, cfgPath := c.Args[:i], c.Args[i+1]
			component := strings.Join(sub[:min(len(sub), 2)], "-")
			if sub[0] == "transform" || sub[0] == "reconcile" {
				component = sub[0]
			}
			require.Equal(t, "alertsync-"+component, w.name)
			run[component] = true

			mounts := map[string]corev1.Volume{}
			for _, vm := range c.VolumeMounts {
				for _, v := range pod.Volumes {
					if v.Name == vm.Name {
						mounts[vm.MountPath] = v
					}
				}
				require.Contains(t, mounts, vm.MountPath, "volume %s is not declared", vm.Name)
			}
			cfgVol := mounts[filepath.Dir(cfgPath)]
			require.NotNil(t, cfgVol.ConfigMap, "%s is not on a ConfigMap volume", cfgPath)
			require.Equal(t, "alertsync-config", cfgVol.ConfigMap.Name)
			content, ok := files.Data[filepath.Base(cfgPath)]
			require.True(t, ok, "alertsync-config has no %s", filepath.Base(cfgPath))

			// The secret files the configuration names are mounted from
			// the Secret's keys.
			secrets := t.TempDir()
			for _, line := range strings.Split(content, "\n") {
				_, path, ok := strings.Cut(line, "password_file: ")
				if !ok {
					continue
				}
				vol := mounts[filepath.Dir(path)]
				require.NotNil(t, vol.Secret, "%s names %s, which no secret volume mounts", cfgPath, path)
				require.Equal(t, secret.Name, vol.Secret.SecretName)
				key := filepath.Base(path)
				require.Contains(t, secret.StringData, key, "the Secret has no key %s", key)
				if len(vol.Secret.Items) > 0 {
					require.True(t, slices.ContainsFunc(vol.Secret.Items, func(it corev1.KeyToPath) bool { return it.Key == key && it.Path == key }),
						"the secret volume does not project %s", key)
				}
				require.NoError(t, os.WriteFile(filepath.Join(secrets, key), []byte("x"), 0o600))
			}

			// The configuration, as the container sees it, passes the
			// binary's own check.
			cfgFile := filepath.Join(t.TempDir(), "config.yaml")
			require.NoError(t, os.WriteFile(cfgFile, []byte(strings.ReplaceAll(content, "/var/run/secrets/alertsync", secrets)), 0o600))
			vars := map[string]string{}
			for _, ef := range c.EnvFrom {
				require.NotNil(t, ef.ConfigMapRef)
				cm, ok := m.configMaps[ef.ConfigMapRef.Name]
				require.True(t, ok, "ConfigMap %s", ef.ConfigMapRef.Name)
				for k, v := range cm.Data {
					vars[k] = v
				}
			}
			for _, e := range c.Env {
				if strings.HasPrefix(e.Name, "ALERTSYNC_") {
					require.Contains(t, string(docs), "`"+e.Name+"`", "%s is no documented key", e.Name)
					vars[e.Name] = e.Value
					if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
						vars[e.Name] = w.name + "-0"
					}
				}
			}
			var out, errOut bytes.Buffer
			err = cli.ConfigCheck(component, []string{"--config", cfgFile}, func(k string) (string, bool) {
				v, ok := vars[k]
				return v, ok
			}, &out, &errOut)
			require.NoError(t, err, "alertsync config check %s: %s", component, errOut.String())

			// Probes and the admin port.
			require.Len(t, c.Ports, 1)
			require.Equal(t, "admin", c.Ports[0].Name)
			require.EqualValues(t, 9464, c.Ports[0].ContainerPort)
			for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
				require.NotNil(t, p, "%s probe", name)
				require.Equal(t, intstr.FromString("admin"), p.HTTPGet.Port, "%s probe", name)
			}
			require.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
			require.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)

			// A Service selects the pods on the admin port.
			svc, ok := m.services[w.name]
			require.True(t, ok, "no Service %s", w.name)
			require.Equal(t, w.selector, svc.Spec.Selector)
			require.Equal(t, intstr.FromString("admin"), svc.Spec.Ports[0].TargetPort)
			require.Equal(t, "admin", svc.Spec.Ports[0].Name, "the ServiceMonitor scrapes the port named admin")
			require.Equal(t, "alertsync", svc.Labels["app.kubernetes.io/name"], "the ServiceMonitor selects this label")

			// The captures run alone and are replaced, not rolled.
			if strings.HasPrefix(component, "capture-") {
				require.Equal(t, "Deployment", w.kind)
				require.EqualValues(t, 1, w.replicas)
				d := m.deployments[slices.IndexFunc(m.deployments, func(d appsv1.Deployment) bool { return d.Name == w.name })]
				require.Equal(t, appsv1.RecreateDeploymentStrategyType, d.Spec.Strategy.Type)
			}
			// Scaled components keep a stable name and one pod at a time.
			if component == "transform" || strings.HasPrefix(component, "apply-") {
				require.Equal(t, "StatefulSet", w.kind, "a stable pod name is the replica's transactional id / the apply's owner")
				s := m.statefulSets[slices.IndexFunc(m.statefulSets, func(s appsv1.StatefulSet) bool { return s.Name == w.name })]
				require.Equal(t, w.name, s.Spec.ServiceName)
				require.True(t, slices.ContainsFunc(m.pdbs, func(p policyv1.PodDisruptionBudget) bool {
					return p.Spec.Selector != nil && maps.Equal(p.Spec.Selector.MatchLabels, w.selector)
				}), "no PodDisruptionBudget for %s", w.name)
			}
		})
	}
	for _, c := range []string{"capture-dps", "capture-nomis", "transform", "apply-dps", "apply-nomis", "reconcile"} {
		require.True(t, run[c], "nothing runs %s", c)
	}
}

// TestKubernetesMonitoring: the ServiceMonitor selects the components'
// Services on their admin port, and the PrometheusRule holds exactly the
// rules of deploy/prometheus (make docs regenerates it).
func TestKubernetesMonitoring(t *testing.T) {
	t.Parallel()
	_, pipeline := readKustomization(t, filepath.Join(root, k8sDir), "secret.example.yaml")
	_, m := readKustomization(t, filepath.Join(root, k8sDir, "monitoring"))

	var sm struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Metadata   struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Endpoints []struct {
				Port     string `yaml:"port"`
				Path     string `yaml:"path"`
				Interval string `yaml:"interval"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}
	strictYAML(t, m.other["ServiceMonitor/alertsync"], &sm)
	require.Equal(t, "monitoring.coreos.com/v1", sm.APIVersion)
	require.NotEmpty(t, sm.Spec.Selector.MatchLabels)
	require.Len(t, pipeline.services, 6)
	for name, svc := range pipeline.services {
		for k, v := range sm.Spec.Selector.MatchLabels {
			require.Equal(t, v, svc.Labels[k], "the ServiceMonitor does not select Service %s", name)
		}
		require.True(t, strings.HasPrefix(name, "alertsync"), "Service %s: the rules select job=~\"alertsync.*\"", name)
	}
	require.Equal(t, "admin", sm.Spec.Endpoints[0].Port)
	require.Equal(t, "/metrics", sm.Spec.Endpoints[0].Path)

	var pr struct {
		APIVersion string         `yaml:"apiVersion"`
		Kind       string         `yaml:"kind"`
		Metadata   map[string]any `yaml:"metadata"`
		Spec       map[string]any `yaml:"spec"`
	}
	strictYAML(t, m.other["PrometheusRule/alertsync"], &pr)
	var rules map[string]any
	b, err := os.ReadFile(filepath.Join(root, "deploy/prometheus/alertsync.rules.yml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &rules))
	require.NotEmpty(t, rules["groups"])
	require.True(t, reflect.DeepEqual(rules, pr.Spec), "deploy/kubernetes/monitoring/prometheusrule.yaml is stale: run make docs")
}

func strictYAML(t *testing.T, b []byte, into any) {
	t.Helper()
	require.NotEmpty(t, b)
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(into))
}
