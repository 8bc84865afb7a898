use super::*;

fn parts(path: &str) -> Option<(&str, &str, Option<&str>)> {
    pod_proxy_path(path).map(|p| (p.namespace, p.id, p.rest))
}

#[test]
fn proxy_paths_keep_everything_after_proxy_as_the_rest() {
    assert_eq!(
        parts("/api/v1/namespaces/ns/pods/p:9090/proxy/metrics"),
        Some(("ns", "p:9090", Some("metrics")))
    );
    assert_eq!(
        parts("/api/v1/namespaces/ns/pods/p/proxy/a/b/"),
        Some(("ns", "p", Some("a/b/")))
    );
    assert_eq!(
        parts("/api/v1/namespaces/ns/pods/p/proxy/"),
        Some(("ns", "p", Some("")))
    );
    assert_eq!(parts("/api/v1/namespaces/ns/pods/p/proxy"), Some(("ns", "p", None)));
    assert_eq!(parts("/api/v1/namespaces/ns/pods/p/portforward"), None);
    assert_eq!(parts("/api/v1/namespaces/ns/pods/p"), None);
    assert_eq!(parts("/api/v1/namespaces//pods/p/proxy/metrics"), None);
    assert_eq!(parts("/api/v1/namespaces/ns/pods//proxy/metrics"), None);
    assert_eq!(parts("/api/v1/namespaces/ns/services/s/proxy/metrics"), None);
}

#[test]
fn ids_split_as_apimachinery_does() {
    assert_eq!(split_scheme_name_port("p"), Some((Scheme::Http, "p", None)));
    assert_eq!(
        split_scheme_name_port("p:9090"),
        Some((Scheme::Http, "p", Some("9090")))
    );
    assert_eq!(split_scheme_name_port("p:"), Some((Scheme::Http, "p", None)));
    assert_eq!(
        split_scheme_name_port("http:p:9090"),
        Some((Scheme::Http, "p", Some("9090")))
    );
    assert_eq!(
        split_scheme_name_port("https:p:9090"),
        Some((Scheme::Https, "p", Some("9090")))
    );
    assert_eq!(
        split_scheme_name_port(":p:9090"),
        Some((Scheme::Http, "p", Some("9090")))
    );
    assert_eq!(
        split_scheme_name_port("p:metrics"),
        Some((Scheme::Http, "p", Some("metrics")))
    );
    assert_eq!(split_scheme_name_port("ftp:p:21"), None);
    assert_eq!(split_scheme_name_port(":9090"), None);
    assert_eq!(split_scheme_name_port("a:b:c:d"), None);
}

#[test]
fn ports_read_as_go_dials_them() {
    assert_eq!(port_number("9090"), Ok(9090));
    assert_eq!(port_number("99999"), Err("address 99999: invalid port".to_owned()));
    assert_eq!(
        port_number("metrics"),
        Err("lookup tcp/metrics: unknown port".to_owned())
    );
}

#[test]
fn default_port_is_the_first_declared_container_port() {
    let pod = json!({"spec": {"containers": [
        {"name": "sidecar"},
        {"name": "greetserver", "ports": [{"containerPort": 9090}, {"containerPort": 50051}]},
    ]}});
    assert_eq!(default_port(&pod, Scheme::Https), "9090");
    let bare = json!({"spec": {"containers": [{"name": "greetserver"}]}});
    assert_eq!(default_port(&bare, Scheme::Http), "80");
    assert_eq!(default_port(&bare, Scheme::Https), "443");
}

#[test]
fn hosts_join_with_brackets_for_ipv6() {
    assert_eq!(join_host_port("10.1.0.1", "9090"), "10.1.0.1:9090");
    assert_eq!(join_host_port("fd00::1", "9090"), "[fd00::1]:9090");
}

#[test]
fn ids_are_quoted_as_go_quotes_them() {
    assert_eq!(go_quote("ftp:p:21"), "\"ftp:p:21\"");
    assert_eq!(go_quote("a\"b"), "\"a\\\"b\"");
}
