use k8s_openapi::api::core::v1::{ContainerStatus, PodCondition, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use std::time::Duration;

use super::*;
use crate::kube_source::is_live_gateway;

fn pod(ready: &str, phase: &str, restarts: &[i32], created_secs_ago: u64) -> Pod {
    let created = SystemTime::now() - Duration::from_secs(created_secs_ago);
    Pod {
        metadata: ObjectMeta {
            name: Some("greetserver-deploy-7595ccbdd5-l8kmv".into()),
            creation_timestamp: Some(Time(k8s_openapi::jiff::Timestamp::try_from(created).unwrap())),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            node_name: Some("minikube".into()),
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            phase: Some(phase.into()),
            pod_ip: Some("172.17.0.2".into()),
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: ready.into(),
                ..PodCondition::default()
            }]),
            container_statuses: Some(
                restarts
                    .iter()
                    .map(|r| ContainerStatus {
                        restart_count: *r,
                        ..ContainerStatus::default()
                    })
                    .collect(),
            ),
            ..PodStatus::default()
        }),
    }
}

#[test]
fn pod_info_reads_readiness_restarts_node_and_age() {
    let now = (Instant::now(), SystemTime::now());
    let info = pod_info(&pod("True", "Running", &[1, 2], 120), now);
    assert_eq!(info.name, "greetserver-deploy-7595ccbdd5-l8kmv");
    assert_eq!(info.ip, "172.17.0.2");
    assert!(info.ready);
    assert_eq!(info.phase.as_deref(), Some("Running"));
    assert_eq!(info.restarts, 3);
    assert_eq!(info.node.as_deref(), Some("minikube"));
    let age = now.0.duration_since(info.created.unwrap()).as_secs();
    assert!((119..=121).contains(&age), "{age}");
}

#[test]
fn pod_text_is_sanitised_where_it_enters() {
    let now = (Instant::now(), SystemTime::now());
    let mut evil = pod("True", "Run\u{1b}[2Jning for a very long time indeed", &[], 1);
    evil.metadata.name = Some("pod\u{1b}]0;x\u{7}-a".into());
    evil.spec = Some(PodSpec {
        node_name: Some("node\r\n".into()),
        ..PodSpec::default()
    });
    let info = pod_info(&evil, now);
    assert_eq!(info.name, "pod]0;x-a");
    assert_eq!(info.node.as_deref(), Some("node"));
    assert_eq!(info.phase.as_deref(), Some("Run[2Jning for a ve…"));
}

#[test]
fn not_ready_and_terminating_pods_are_not_ready() {
    let now = (Instant::now(), SystemTime::now());
    assert!(!pod_info(&pod("False", "Running", &[], 1), now).ready);
    let mut deleting = pod("True", "Running", &[], 1);
    deleting.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    let info = pod_info(&deleting, now);
    assert!(!info.ready);
    assert_eq!(info.phase.as_deref(), Some("Terminating"));
    assert!(!is_live_gateway(&deleting));
    assert!(is_live_gateway(&pod("True", "Running", &[], 1)));
    assert!(!is_live_gateway(&pod("False", "Pending", &[], 1)));
}
