package mesh

import (
	"fmt"

	"istio.io/api/annotation"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/llmproc/llmproc/envoy"
	"github.com/llmproc/llmproc/filter/config"
)

// EnvoyConfigFile is the bootstrap's key in the plain Envoy's ConfigMap.
const EnvoyConfigFile = "envoy.yaml"

// EnvoyDrainSeconds is how long a terminating plain Envoy keeps serving
// (preStop) after its endpoints are removed; Envoy itself exits at SIGTERM.
const EnvoyDrainSeconds = 15

// EnvoyBootstrap renders the bootstrap for Envoy running in the cluster:
// listening on all interfaces (envoy.listen's port) and reaching llmproc
// through the headless Service, so STRICT_DNS resolves every llmproc pod
// and Envoy spreads streams over them.
func EnvoyBootstrap(src *Source, o Options) ([]byte, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	_, lport, err := hostPort(src.Config.Envoy.Listen)
	if err != nil {
		return nil, fmt.Errorf("envoy.listen: %w", err)
	}
	_, grpc, err := hostPort(src.Config.Listen.GRPC)
	if err != nil {
		return nil, fmt.Errorf("listen.grpc: %w", err)
	}
	c := *src.Config
	c.Envoy.Listen = fmt.Sprintf("0.0.0.0:%d", lport)
	c.Envoy.LLMProc = fmt.Sprintf("%s.%s.svc.cluster.local:%d", HeadlessName, o.Namespace, grpc)
	rt, err := config.Topology(&c)
	if err != nil {
		return nil, err
	}
	bs, err := envoy.Bootstrap(rt)
	if err != nil {
		return nil, err
	}
	if err := envoy.Check(bs, rt); err != nil {
		return nil, fmt.Errorf("rendered Envoy config is invalid: %w", err)
	}
	return envoy.YAML(bs)
}

// Envoy renders a plain Envoy in front of llmproc, for clusters without
// Istio: a ConfigMap with EnvoyBootstrap, a Deployment, its Service (port
// 80), a PodDisruptionBudget, and the headless llmproc Service it resolves.
// Its pods opt out of sidecar injection: the bootstrap originates TLS to
// providers and speaks h2c to llmproc itself.
func Envoy(src *Source, o Options) ([]runtime.Object, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	bs, err := EnvoyBootstrap(src, o)
	if err != nil {
		return nil, err
	}
	_, lport, _ := hostPort(src.Config.Envoy.Listen)
	grpc, _, err := ports(src.Config)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{NameLabel: EnvoyName, "app.kubernetes.io/component": "proxy", "app.kubernetes.io/part-of": Name}
	sel := map[string]string{NameLabel: EnvoyName}
	grace := int64(EnvoyDrainSeconds + TerminationMarginSeconds)
	m := meta(o, EnvoyName)
	svc := &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: meta(o, EnvoyName),
		Spec: corev1.ServiceSpec{
			Selector: sel,
			Ports: []corev1.ServicePort{{
				Name:        "http",
				Port:        80,
				TargetPort:  intstr.FromString("http"),
				Protocol:    corev1.ProtocolTCP,
				AppProtocol: new("http"),
			}},
		},
	}
	return []runtime.Object{
		&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: meta(o, EnvoyName),
			Data:       map[string]string{EnvoyConfigFile: string(bs)},
		},
		&appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: m,
			Spec: appsv1.DeploymentSpec{
				Replicas: new(o.Replicas),
				Selector: &metav1.LabelSelector{MatchLabels: sel},
				Strategy: surgeFirst(),
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{
						Labels:      labels,
						Annotations: map[string]string{annotation.SidecarInject.Name: "false"},
					},
					Spec: corev1.PodSpec{
						AutomountServiceAccountToken:  new(false),
						TerminationGracePeriodSeconds: new(grace),
						SecurityContext: &corev1.PodSecurityContext{
							RunAsNonRoot:   new(true),
							RunAsUser:      new(int64(101)),
							RunAsGroup:     new(int64(101)),
							SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
						},
						TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
							MaxSkew:           1,
							TopologyKey:       "kubernetes.io/hostname",
							WhenUnsatisfiable: corev1.ScheduleAnyway,
							LabelSelector:     &metav1.LabelSelector{MatchLabels: sel},
						}},
						Containers: []corev1.Container{{
							Name:  "envoy",
							Image: o.EnvoyImage,
							Args:  []string{"-c", "/etc/envoy/" + EnvoyConfigFile, "--disable-hot-restart"},
							Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(lport), Protocol: corev1.ProtocolTCP}},
							Resources: corev1.ResourceRequirements{
								Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
								Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")},
							},
							ReadinessProbe: &corev1.Probe{
								ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}},
								PeriodSeconds: 5,
							},
							Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{
								Sleep: &corev1.SleepAction{Seconds: EnvoyDrainSeconds},
							}},
							VolumeMounts: []corev1.VolumeMount{{Name: "bootstrap", MountPath: "/etc/envoy", ReadOnly: true}},
							SecurityContext: &corev1.SecurityContext{
								AllowPrivilegeEscalation: new(false),
								ReadOnlyRootFilesystem:   new(true),
								Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
							},
						}},
						Volumes: []corev1.Volume{{Name: "bootstrap", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: EnvoyName},
						}}}},
					},
				},
			},
		},
		svc,
		&policyv1.PodDisruptionBudget{
			TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
			ObjectMeta: meta(o, EnvoyName),
			Spec: policyv1.PodDisruptionBudgetSpec{
				MaxUnavailable: new(intstr.FromInt32(1)),
				Selector:       &metav1.LabelSelector{MatchLabels: sel},
			},
		},
		service(o, HeadlessName, grpc, 0, true),
	}, nil
}
