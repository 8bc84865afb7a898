//! `kube::runtime::watcher` over the fake: follows, resumes, re-lists, streaming lists, EndpointSlices.

use super::*;

#[tokio::test]
async fn pod_watcher_lists_follows_resumes_and_relists() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    kube.apply_pod(pod("default", "other-a", &[("run", "other")], "10.1.0.3", true));
    let pods: Api<Pod> = Api::namespaced(kube.client("default").await, "default");
    let mut watched = Watched::start(pods, watcher::Config::default().labels(SELECTOR));

    // (2) list, then watch.
    watched.until_names(&["greetserver-a", "greetserver-b"]).await;
    assert_eq!(
        watched.log,
        ["Init", "InitApply greetserver-a", "InitApply greetserver-b", "InitDone"]
    );
    assert_eq!(kube.list_count("pods"), 1);

    let mark = watched.log.len();
    kube.apply_pod(greet_pod("greetserver-c", "10.1.0.4"));
    watched
        .until_names(&["greetserver-a", "greetserver-b", "greetserver-c"])
        .await;
    kube.delete_pod("default", "greetserver-b");
    watched.until_names(&["greetserver-a", "greetserver-c"]).await;
    // Leaving the selector reads as a delete, as from the API server's watch cache.
    kube.apply_pod(pod(
        "default",
        "greetserver-a",
        &[("run", "elsewhere")],
        "10.1.0.1",
        true,
    ));
    watched.until_names(&["greetserver-c"]).await;
    assert_eq!(
        watched.log_since(mark),
        ["Apply greetserver-c", "Delete greetserver-b", "Delete greetserver-a"]
    );
    // Changes outside the selector are not sent at all.
    kube.apply_pod(pod("default", "other-a", &[("run", "other")], "10.9.9.9", false));
    assert_eq!(kube.watch_count(), 1);

    // (3) The watch dies abruptly; what changed meanwhile arrives from the history on resume,
    // without a re-list.
    kube.drop_watches();
    kube.apply_pod(greet_pod("greetserver-d", "10.1.0.5"));
    kube.delete_pod("default", "greetserver-c");
    let mark = watched.log.len();
    watched.until_names(&["greetserver-d"]).await;
    let events: Vec<&String> = watched
        .log_since(mark)
        .iter()
        .filter(|l| !l.starts_with("Error"))
        .collect();
    assert_eq!(events, ["Apply greetserver-d", "Delete greetserver-c"]);
    assert_eq!(kube.list_count("pods"), 1, "resumed without a re-list");
    assert_eq!(kube.watch_count(), 2);
    kube.apply_pod(greet_pod("greetserver-e", "10.1.0.6"));
    watched.until_names(&["greetserver-d", "greetserver-e"]).await;

    // (4) The watch dies and the history is compacted past the watcher's resourceVersion: the
    // resume gets 410 Expired and the watcher re-lists.
    kube.drop_watches();
    kube.apply_pod(greet_pod("greetserver-f", "10.1.0.7"));
    kube.delete_pod("default", "greetserver-d");
    kube.expire_history();
    let mark = watched.log.len();
    watched.until_names(&["greetserver-e", "greetserver-f"]).await;
    let gone = watched
        .errors
        .iter()
        .find_map(|error| match error {
            watcher::Error::WatchError(status) => Some(status),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no WatchError in {:?}", watched.log));
    assert_eq!(gone.code, 410);
    assert_eq!(gone.reason, "Expired");
    assert!(
        watched.log_since(mark).contains(&"Init".to_owned()),
        "{:?}",
        watched.log
    );
    assert_eq!(kube.list_count("pods"), 2, "{:#?}", kube.requests());
    // And it follows live changes again.
    kube.apply_pod(greet_pod("greetserver-g", "10.1.0.8"));
    watched
        .until_names(&["greetserver-e", "greetserver-f", "greetserver-g"])
        .await;
    assert_eq!(watched.log.last().unwrap(), "Apply greetserver-g");
}

#[tokio::test]
async fn watcher_with_streaming_lists() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.apply_pod(pod("default", "other-a", &[("run", "other")], "10.1.0.3", true));
    let pods: Api<Pod> = Api::namespaced(kube.client("default").await, "default");
    let mut watched = Watched::start(pods, watcher::Config::default().labels(SELECTOR).streaming_lists());
    watched.until_names(&["greetserver-a"]).await;
    assert_eq!(watched.log, ["Init", "InitApply greetserver-a", "InitDone"]);
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    watched.until_names(&["greetserver-a", "greetserver-b"]).await;
    assert_eq!(kube.list_count("pods"), 0);
    assert!(
        kube.requests()[0].contains("sendInitialEvents=true"),
        "{:?}",
        kube.requests()
    );
}

#[tokio::test]
async fn endpoint_slices_by_service_name() {
    let kube = FakeKube::start().await;
    // Every slice here: namespace default, port "http" 8080.
    let slice = |name: &str, service: &str, endpoints: &[(&str, &str, bool, bool)]| {
        endpoint_slice("default", name, service, "http", 8080, endpoints)
    };
    kube.apply_slice(slice(
        "greetserver-abcde",
        "greetserver",
        &[
            ("10.1.0.1", "greetserver-a", true, false),
            ("10.1.0.2", "greetserver-b", true, false),
        ],
    ));
    kube.apply_slice(slice(
        "greetserver-fghij",
        "greetserver",
        &[("10.1.0.3", "greetserver-c", false, false)],
    ));
    kube.apply_slice(slice("other-klmno", "other", &[("10.1.0.9", "other-a", true, false)]));
    let slices: Api<EndpointSlice> = Api::namespaced(kube.client("default").await, "default");

    let list = within("list", slices.list(&ListParams::default().labels(SLICE_SELECTOR)))
        .await
        .unwrap();
    assert_eq!(names(&list.items), ["greetserver-abcde", "greetserver-fghij"]);
    let first = &list.items[0];
    assert_eq!(first.address_type, "IPv4");
    assert_eq!(first.ports.as_ref().unwrap()[0].port, Some(8080));
    assert_eq!(first.ports.as_ref().unwrap()[0].name.as_deref(), Some("http"));
    let endpoint = &first.endpoints[0];
    assert_eq!(endpoint.addresses, ["10.1.0.1"]);
    assert_eq!(
        endpoint.target_ref.as_ref().unwrap().name.as_deref(),
        Some("greetserver-a")
    );
    assert_eq!(endpoint.conditions.as_ref().unwrap().ready, Some(true));
    assert_eq!(
        list.items[1].endpoints[0].conditions.as_ref().unwrap().ready,
        Some(false)
    );

    let mut watched = Watched::start(slices.clone(), watcher::Config::default().labels(SLICE_SELECTOR));
    watched.until_names(&["greetserver-abcde", "greetserver-fghij"]).await;

    // One endpoint starts terminating: the slice is modified.
    kube.apply_slice(slice(
        "greetserver-abcde",
        "greetserver",
        &[
            ("10.1.0.1", "greetserver-a", true, false),
            ("10.1.0.2", "greetserver-b", true, true),
        ],
    ));
    let mark = watched.log.len();
    while watched.log.len() == mark {
        watched.step().await;
    }
    assert_eq!(watched.log_since(mark), ["Apply greetserver-abcde"]);
    let conditions = watched.store["greetserver-abcde"].endpoints[1]
        .conditions
        .clone()
        .unwrap();
    assert_eq!(
        (conditions.ready, conditions.serving, conditions.terminating),
        (Some(false), Some(true), Some(true))
    );
    kube.delete_slice("default", "greetserver-fghij");
    kube.delete_slice("default", "other-klmno");
    watched.until_names(&["greetserver-abcde"]).await;

    // Resume and re-list work the same for slices.
    kube.drop_watches();
    kube.apply_slice(slice("greetserver-zzzzz", "greetserver", &[]));
    kube.expire_history();
    watched.until_names(&["greetserver-abcde", "greetserver-zzzzz"]).await;
    assert_eq!(kube.list_count("endpointslices"), 3, "{:#?}", kube.requests());

    // Forbidden, with the API server's wording.
    kube.forbid("endpointslices", true);
    let error = within("list", slices.list(&ListParams::default().labels(SLICE_SELECTOR)))
        .await
        .unwrap_err();
    assert_forbidden(
        &error,
        &format!(
            "endpointslices.discovery.k8s.io is forbidden: User \"{FAKE_USER}\" cannot list resource \
             \"endpointslices\" in API group \"discovery.k8s.io\" in the namespace \"default\""
        ),
    );
    assert_eq!(api_status(&error).details.as_ref().unwrap().group, "discovery.k8s.io");
    kube.forbid("endpointslices", false);
    within("list", slices.list(&ListParams::default())).await.unwrap();
}
