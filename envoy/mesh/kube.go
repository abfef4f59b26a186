package mesh

import (
	"bytes"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"gopkg.in/yaml.v3"
	"istio.io/api/annotation"
	"istio.io/api/label"
	apisecurity "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/llmproc/llmproc/filter/config"
)

// Timing of a pod's end. PreStopSeconds lets endpoint removal reach every
// Envoy before llmproc stops taking streams; llmproc then lets in-flight
// streams run for limits.shutdown_grace; TerminationMarginSeconds is slack
// before the kubelet's SIGKILL.
const (
	PreStopSeconds           = 5
	TerminationMarginSeconds = 5
)

// SidecarInjectionLabel is the namespace label of sidecar injection.
const SidecarInjectionLabel = "istio-injection"

func selector() map[string]string { return map[string]string{NameLabel: Name} }

func podLabels() map[string]string {
	return map[string]string{NameLabel: Name, "app.kubernetes.io/component": "ext-proc", "app.kubernetes.io/part-of": Name}
}

// ports is llmproc's gRPC port and its metrics port (0 when listen.http is
// off).
func ports(c *config.Config) (grpc, metrics uint32, err error) {
	if _, grpc, err = hostPort(c.Listen.GRPC); err != nil {
		return 0, 0, fmt.Errorf("listen.grpc: %w", err)
	}
	if c.Listen.HTTP == "off" {
		return grpc, 0, nil
	}
	if _, metrics, err = hostPort(c.Listen.HTTP); err != nil {
		return 0, 0, fmt.Errorf("listen.http: %w", err)
	}
	return grpc, metrics, nil
}

// Kubernetes renders llmproc itself: its Namespace (labelled for the mesh
// mode), ServiceAccount, the ConfigMap holding the config (listening on all
// interfaces), the Deployment, the Service (gRPC port with appProtocol grpc),
// a PodDisruptionBudget, a ServiceMonitor, and unless Mesh is MeshNone an
// AuthorizationPolicy that lets only the LLM gateway call the gRPC port.
// Credentials come from Secret references; no secret value is rendered.
func Kubernetes(src *Source, o Options) ([]runtime.Object, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	grpc, metrics, err := ports(src.Config)
	if err != nil {
		return nil, err
	}
	text, err := podConfig(src.Text, grpc, metrics)
	if err != nil {
		return nil, err
	}
	dep, err := deployment(src.Config, o, grpc, metrics)
	if err != nil {
		return nil, err
	}
	objs := []runtime.Object{
		namespace(o),
		&corev1.ServiceAccount{
			TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta:                   meta(o, Name),
			AutomountServiceAccountToken: new(false),
		},
		&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: meta(o, ConfigMapName),
			Data:       map[string]string{ConfigFile: string(text)},
		},
		dep,
		service(o, Name, grpc, metrics, false),
		&policyv1.PodDisruptionBudget{
			TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
			ObjectMeta: meta(o, Name),
			Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: new(intstr.FromInt32(1)),
				Selector:       &metav1.LabelSelector{MatchLabels: selector()},
			},
		},
	}
	if metrics != 0 {
		objs = append(objs, serviceMonitor(o))
	}
	if o.Mesh != MeshNone {
		objs = append(objs, authorizationPolicy(o, grpc, metrics))
	}
	return objs, nil
}

func namespace(o Options) *corev1.Namespace {
	ns := &corev1.Namespace{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: o.Namespace},
	}
	switch o.Mesh {
	case MeshSidecar:
		ns.Labels = map[string]string{SidecarInjectionLabel: "enabled"}
	case MeshAmbient:
		ns.Labels = map[string]string{label.IoIstioDataplaneMode.Name: "ambient"}
	}
	return ns
}

// podConfig is the config text for the pod: the user's file with listen.grpc
// and listen.http moved to all interfaces (same ports), so the Service can
// reach them. Everything else, comments included, is kept.
func podConfig(text []byte, grpc, metrics uint32) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config: not a YAML mapping")
	}
	listen := mapping(doc.Content[0], "listen")
	set(listen, "grpc", fmt.Sprintf("0.0.0.0:%d", grpc))
	if metrics != 0 {
		set(listen, "http", fmt.Sprintf("0.0.0.0:%d", metrics))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return buf.Bytes(), nil
}

// mapping returns the mapping under key in m, adding an empty one if absent.
func mapping(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.MappingNode {
			return m.Content[i+1]
		}
	}
	v := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v
}

// set sets a string scalar under key in m.
func set(m *yaml.Node, key, val string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
			return
		}
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val})
}

// credentials lists every credential of the config (backends' keys, both
// during a rotation, Redis passwords) in config order.
func credentials(c *config.Config) []config.Credential {
	var out []config.Credential
	for _, b := range c.Backends {
		out = append(out, b.Credential, b.CredentialNext) // an empty one is skipped
	}
	if r := c.Cache.Redis; r != nil {
		out = append(out, r.Password)
	}
	if r := c.BudgetStore.Redis; r != nil {
		out = append(out, r.Password)
	}
	return out
}

// secretRefs turns credentials into Secret references: env credentials into
// env vars from secretKeyRef (key = the variable's name), file credentials
// into read-only Secret volumes, one per directory, with key base(file).
// Secret volumes are updated in place, so rotating the Secret rotates the
// credential (llmproc re-reads changed credential files).
func secretRefs(c *config.Config, secret string) ([]corev1.EnvVar, []corev1.Volume, []corev1.VolumeMount, error) {
	var env []corev1.EnvVar
	seenEnv := map[string]bool{}
	dirs := map[string][]corev1.KeyToPath{}
	var order []string
	keyDir := map[string]string{}
	for _, cr := range credentials(c) {
		switch {
		case cr.Env != "" && !seenEnv[cr.Env]:
			seenEnv[cr.Env] = true
			env = append(env, corev1.EnvVar{Name: cr.Env, ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: cr.Env},
			}})
		case cr.File != "":
			dir, key := path.Split(path.Clean(cr.File))
			dir = path.Clean(dir)
			if d, ok := keyDir[key]; ok {
				if d != dir {
					return nil, nil, nil, fmt.Errorf("credential files %s and %s share the Secret key %q; give them different names", path.Join(d, key), cr.File, key)
				}
				continue
			}
			keyDir[key] = dir
			if _, ok := dirs[dir]; !ok {
				order = append(order, dir)
			}
			dirs[dir] = append(dirs[dir], corev1.KeyToPath{Key: key, Path: key})
		}
	}
	var vols []corev1.Volume
	var mounts []corev1.VolumeMount
	for i, dir := range order {
		name := "credentials-" + strconv.Itoa(i)
		vols = append(vols, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secret, Items: dirs[dir], DefaultMode: new(int32(0o440)),
		}}})
		mounts = append(mounts, corev1.VolumeMount{Name: name, MountPath: dir, ReadOnly: true})
	}
	return env, vols, mounts, nil
}

// SecretKeys lists the keys the Secret must hold for a config: env
// credential names and credential file base names.
func SecretKeys(c *config.Config) []string {
	var out []string
	for _, cr := range credentials(c) {
		k := cr.Env
		if cr.File != "" {
			k = path.Base(cr.File)
		}
		if k != "" && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}

// memoryMiB is the memory llmproc is given: the in-process cache plus room
// for requests in flight.
func memoryMiB(c *config.Config) int64 { return int64(c.Cache.MemoryMB) + 256 }

func deployment(c *config.Config, o Options, grpc, metrics uint32) (*appsv1.Deployment, error) {
	env, vols, mounts, err := secretRefs(c, o.Secret)
	if err != nil {
		return nil, err
	}
	grace := int64(c.Limits.ShutdownGrace.Seconds()) + PreStopSeconds + TerminationMarginSeconds
	probe := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(grpc), Service: new("")}},
			PeriodSeconds:    period,
			FailureThreshold: failures,
		}
	}
	cports := []corev1.ContainerPort{{Name: GRPCPortName, ContainerPort: int32(grpc), Protocol: corev1.ProtocolTCP}}
	if metrics != 0 {
		cports = append(cports, corev1.ContainerPort{Name: MetricsPortName, ContainerPort: int32(metrics), Protocol: corev1.ProtocolTCP})
	}
	annotations := map[string]string{}
	if o.Mesh == MeshSidecar {
		// The sidecar must outlive llmproc's drain (its default is 5s), and
		// Prometheus scrapes the metrics port without mTLS.
		annotations[annotation.ProxyConfig.Name] = fmt.Sprintf(`{"terminationDrainDuration":"%ds"}`, grace)
		if metrics != 0 {
			annotations[annotation.SidecarTrafficExcludeInboundPorts.Name] = strconv.Itoa(int(metrics))
		}
	}
	if len(annotations) == 0 {
		annotations = nil
	}
	mem := resource.MustParse(strconv.FormatInt(memoryMiB(c), 10) + "Mi")
	memLimit := resource.MustParse(strconv.FormatInt(2*memoryMiB(c), 10) + "Mi")
	volumes := append([]corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: ConfigMapName},
	}}}}, vols...)
	volumeMounts := append([]corev1.VolumeMount{{Name: "config", MountPath: ConfigDir, ReadOnly: true}}, mounts...)

	spread := func(key string) corev1.TopologySpreadConstraint {
		return corev1.TopologySpreadConstraint{
			MaxSkew:           1,
			TopologyKey:       key,
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: selector()},
		}
	}
	m := meta(o, Name)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: m,
		Spec: appsv1.DeploymentSpec{
			Replicas: new(o.Replicas),
			Selector: &metav1.LabelSelector{MatchLabels: selector()},
			Strategy: surgeFirst(),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels(), Annotations: annotations},
				Spec: corev1.PodSpec{
					ServiceAccountName:            Name,
					AutomountServiceAccountToken:  new(false),
					TerminationGracePeriodSeconds: new(grace),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   new(true),
						RunAsUser:      new(int64(65532)),
						RunAsGroup:     new(int64(65532)),
						FSGroup:        new(int64(65532)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
						spread("topology.kubernetes.io/zone"),
						spread("kubernetes.io/hostname"),
					},
					Containers: []corev1.Container{{
						Name:  Name,
						Image: o.Image,
						Args:  []string{"serve", "-config", path.Join(ConfigDir, ConfigFile)},
						Ports: cports,
						Env:   env,
						Resources: corev1.ResourceRequirements{
							Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: mem},
							Limits:   corev1.ResourceList{corev1.ResourceMemory: memLimit},
						},
						StartupProbe:   probe(2, 30),
						ReadinessProbe: probe(5, 2),
						LivenessProbe:  probe(10, 3),
						Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
							Sleep: &corev1.SleepAction{Seconds: PreStopSeconds},
						}},
						VolumeMounts: volumeMounts,
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: new(false),
							ReadOnlyRootFilesystem:   new(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
					Volumes: volumes,
				},
			},
		},
	}, nil
}

// service is llmproc's Service: gRPC with appProtocol grpc (so Istio and
// Gateway implementations speak HTTP/2 to it) and the metrics port. A
// headless one resolves to every pod, for plain Envoy's STRICT_DNS cluster.
func service(o Options, name string, grpc, metrics uint32, headless bool) *corev1.Service {
	sp := []corev1.ServicePort{{
		Name:        GRPCPortName,
		Port:        int32(grpc),
		TargetPort:  intstr.FromString(GRPCPortName),
		Protocol:    corev1.ProtocolTCP,
		AppProtocol: new("grpc"),
	}}
	if metrics != 0 && !headless {
		sp = append(sp, corev1.ServicePort{
			Name:        MetricsPortName,
			Port:        int32(metrics),
			TargetPort:  intstr.FromString(MetricsPortName),
			Protocol:    corev1.ProtocolTCP,
			AppProtocol: new("http"),
		})
	}
	s := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(o, name),
		Spec: corev1.ServiceSpec{
			Selector: selector(),
			Ports:    sp,
		},
	}
	s.Labels[NameLabel] = Name
	if headless {
		s.Spec.ClusterIP = corev1.ClusterIPNone
	}
	return s
}

func serviceMonitor(o Options) *monitoringv1.ServiceMonitor {
	return &monitoringv1.ServiceMonitor{
		TypeMeta:   metav1.TypeMeta{APIVersion: "monitoring.coreos.com/v1", Kind: "ServiceMonitor"},
		ObjectMeta: meta(o, Name),
		Spec: monitoringv1.ServiceMonitorSpec{
			Selector: metav1.LabelSelector{MatchLabels: selector()},
			Endpoints: []monitoringv1.Endpoint{{
				Port:     MetricsPortName,
				Path:     "/metrics",
				Interval: "30s",
			}},
		},
	}
}

// authorizationPolicy allows the LLM gateway's identity to call llmproc's
// gRPC port and anyone to scrape its metrics port; being an ALLOW policy,
// it denies everything else.
func authorizationPolicy(o Options, grpc, metrics uint32) *securityv1.AuthorizationPolicy {
	rules := []*apisecurity.Rule{{
		From: []*apisecurity.Rule_From{{Source: &apisecurity.Source{Principals: []string{o.gatewayPrincipal()}}}},
		To:   []*apisecurity.Rule_To{{Operation: &apisecurity.Operation{Ports: []string{strconv.Itoa(int(grpc))}}}},
	}}
	if metrics != 0 {
		rules = append(rules, &apisecurity.Rule{
			To: []*apisecurity.Rule_To{{Operation: &apisecurity.Operation{Ports: []string{strconv.Itoa(int(metrics))}}}},
		})
	}
	return &securityv1.AuthorizationPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy"},
		ObjectMeta: meta(o, Name),
		Spec: apisecurity.AuthorizationPolicy{
			Selector: &typev1beta1.WorkloadSelector{MatchLabels: selector()},
			Action:   apisecurity.AuthorizationPolicy_ALLOW,
			Rules:    rules,
		},
	}
}

// secretComment is a YAML comment naming the Secret and the keys it needs.
func secretComment(c *config.Config, o Options) string {
	keys := SecretKeys(c)
	if len(keys) == 0 {
		return ""
	}
	return fmt.Sprintf("# Credentials: create Secret %s/%s with keys %s (not rendered; no value is ever inlined).\n",
		o.Namespace, o.Secret, strings.Join(keys, ", "))
}

// surgeFirst rolls a Deployment one new pod at a time, never below the
// replica count, so streams keep a ready pod to land on.
func surgeFirst() appsv1.DeploymentStrategy {
	return appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: new(intstr.FromInt32(0)),
			MaxSurge:       new(intstr.FromInt32(1)),
		},
	}
}
