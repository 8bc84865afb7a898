use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec, PodStatus};
use kube::api::ObjectMeta;
use pod_metrics::{Target, Via};

use super::*;

fn pod(name: &str, ip: Option<&str>, metrics_port: Option<i32>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "greet".to_owned(),
                ports: Some(
                    [Some(("grpc", 50051)), metrics_port.map(|p| ("metrics", p))]
                        .into_iter()
                        .flatten()
                        .map(|(name, port)| ContainerPort {
                            name: Some(name.to_owned()),
                            container_port: port,
                            ..ContainerPort::default()
                        })
                        .collect(),
                ),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: Some(PodStatus {
            pod_ip: ip.map(str::to_owned),
            ..PodStatus::default()
        }),
    }
}

fn proxied(pod: &str, ip: &str, port: u16) -> Target {
    Target {
        pod: pod.to_owned(),
        ip: ip.to_owned(),
        via: Via::PodProxy {
            namespace: "ns".to_owned(),
            pod: pod.to_owned(),
            port,
            path: "/metrics".to_owned(),
        },
    }
}

#[test]
fn pods_are_scraped_on_their_port_named_metrics_unless_one_is_given() {
    let pods = [
        pod("b", Some("10.0.0.2"), Some(9090)),
        pod("a", Some("10.0.0.1"), Some(9464)),
        pod("pending", None, Some(9090)),
        pod("portless", Some("10.0.0.3"), None),
    ];
    let mut targets = ProxyTargets {
        namespace: "ns".to_owned(),
        port: None,
        path: "/metrics".to_owned(),
    };
    assert_eq!(
        targets.of(&pods),
        (
            vec![proxied("a", "10.0.0.1", 9464), proxied("b", "10.0.0.2", 9090)],
            vec!["portless".to_owned()]
        )
    );
    targets.port = Some(8080);
    let (all, portless) = targets.of(&pods);
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|t| matches!(t.via, Via::PodProxy { port: 8080, .. })));
    assert!(portless.is_empty());
}

#[test]
fn metrics_urls_name_their_rows_by_name_or_address() {
    let urls = [
        "http://127.0.0.1:9090/metrics".to_owned(),
        "pod-b=http://[::1]:9091/m".to_owned(),
    ];
    assert_eq!(
        from_urls(&urls),
        Ok(vec![
            Target {
                pod: String::new(),
                ip: "127.0.0.1".to_owned(),
                via: Via::Url("http://127.0.0.1:9090/metrics".to_owned()),
            },
            Target {
                pod: "pod-b".to_owned(),
                ip: "::1".to_owned(),
                via: Via::Url("http://[::1]:9091/m".to_owned()),
            },
        ])
    );
}

#[test]
fn a_bad_metrics_url_is_refused_with_an_example() {
    assert_eq!(
        from_urls(&["https://10.0.0.1:9090/metrics".to_owned()]),
        Err(
            "--metrics-url \"https://10.0.0.1:9090/metrics\": only http:// is scraped directly; \
             for TLS endpoints use a port-forward or the pod proxy"
                .to_owned()
        )
    );
    assert_eq!(
        from_urls(&["10.0.0.1:9090".to_owned()]).unwrap_err(),
        "--metrics-url \"10.0.0.1:9090\": only http:// is scraped directly; for TLS endpoints use a port-forward or the pod proxy"
    );
}
