//! API objects as their controllers write them, for tests to apply.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{Value, json};

/// An EndpointSlice of `service` as the EndpointSlice controller writes it: labels
/// `kubernetes.io/service-name=<service>` and the controller's managed-by, IPv4, one TCP port named
/// `port_name`, and per endpoint `(ip, pod name, ready, terminating)` a target ref to the pod, a
/// node name and conditions `serving = ready`, `terminating`, `ready = ready && !terminating`
/// (the controller's rule; `ready` means "the pod passes its readiness probe").
pub fn endpoint_slice(
    namespace: &str,
    name: &str,
    service: &str,
    port_name: &str,
    port: i32,
    endpoints: &[(&str, &str, bool, bool)],
) -> EndpointSlice {
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|&(ip, pod, ready, terminating)| {
            json!({
                "addresses": [ip],
                "conditions": {"ready": ready && !terminating, "serving": ready, "terminating": terminating},
                "nodeName": "fake-node-1",
                "targetRef": {"kind": "Pod", "namespace": namespace, "name": pod},
            })
        })
        .collect();
    serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))
    .expect("valid EndpointSlice")
}

/// A running Pod: `labels`, pod IP `ip`, node `fake-node-1`, a creationTimestamp, one container
/// `greetserver` (running, restartCount 0) and `Ready`/`ContainersReady` conditions set to `ready`.
pub fn pod(namespace: &str, name: &str, labels: &[(&str, &str)], ip: &str, ready: bool) -> Pod {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    let condition = if ready { "True" } else { "False" };
    let started = "2025-01-01T00:00:01Z";
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
        "spec": {
            "nodeName": "fake-node-1",
            "containers": [{"name": "greetserver", "image": "greet-top:test"}],
        },
        "status": {
            "phase": "Running",
            "hostIP": "10.0.0.1",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": started,
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": started},
                {"type": "Ready", "status": condition, "lastTransitionTime": started},
                {"type": "ContainersReady", "status": condition, "lastTransitionTime": started},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
            ],
            "containerStatuses": [{
                "name": "greetserver",
                "image": "greet-top:test",
                "imageID": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                "ready": ready,
                "started": true,
                "restartCount": 0,
                "state": {"running": {"startedAt": started}},
            }],
        },
    }))
    .expect("valid Pod")
}
