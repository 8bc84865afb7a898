//! Lists, gets, RBAC refusals and malformed requests.

use super::*;

#[tokio::test]
async fn list_and_get_pods_through_a_generated_kubeconfig() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.apply_pod(pod("default", "other-a", &[("run", "other")], "10.1.0.3", true));
    kube.apply_pod(pod(
        "kube-system",
        "greetserver-x",
        &[("run", "greetserver")],
        "10.1.0.4",
        true,
    ));

    // The client reads the kubeconfig from a file, as the binaries will.
    let dir = std::env::temp_dir().join(format!("fake-kube-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = kube.write_kubeconfig(&dir, "default");
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    assert_eq!(config.cluster_url.to_string().trim_end_matches('/'), kube.url());
    assert_eq!(config.default_namespace, "default");
    let client = kube::Client::try_from(config).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let pods: Api<Pod> = Api::default_namespaced(client);
    let list = within("list", pods.list(&ListParams::default().labels(SELECTOR)))
        .await
        .unwrap();
    assert_eq!(names(&list.items), ["greetserver-a", "greetserver-b"]);
    assert_eq!(
        list.metadata.resource_version.as_deref(),
        Some(kube.resource_version().as_str())
    );
    let a = &list.items[0];
    assert!(a.resource_version().is_some_and(|rv| rv.parse::<u64>().is_ok()));
    let status = a.status.as_ref().unwrap();
    assert_eq!(status.pod_ip.as_deref(), Some("10.1.0.1"));
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let ready = status
        .conditions
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    assert_eq!(status.container_statuses.as_ref().unwrap()[0].restart_count, 0);
    assert!(a.metadata.creation_timestamp.is_some());
    assert!(a.spec.as_ref().unwrap().node_name.is_some());

    let everything = within("list all", pods.list(&ListParams::default())).await.unwrap();
    assert_eq!(names(&everything.items), ["greetserver-a", "greetserver-b", "other-a"]);
    let with_two = ListParams::default().labels("run=greetserver,app=greet");
    assert_eq!(
        names(&within("list", pods.list(&with_two)).await.unwrap().items),
        ["greetserver-a", "greetserver-b"]
    );
    let not = ListParams::default().labels("run!=greetserver");
    assert_eq!(
        names(&within("list", pods.list(&not)).await.unwrap().items),
        ["other-a"]
    );

    let got = within("get", pods.get("greetserver-b")).await.unwrap();
    assert_eq!(got.status.unwrap().pod_ip.as_deref(), Some("10.1.0.2"));
    let missing = within("get missing", pods.get("nope")).await.unwrap_err();
    let status = api_status(&missing);
    assert_eq!(status.code, 404);
    assert!(status.is_not_found(), "{status:?}");
    assert_eq!(status.message, "pods \"nope\" not found");

    assert!(
        kube.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/default/pods?")
                && r.contains("labelSelector=run%3Dgreetserver")),
        "{:?}",
        kube.requests()
    );
    assert_eq!(kube.list_count("pods"), 4);
    assert_eq!(kube.watch_count(), 0);
}

#[tokio::test]
async fn forbidden_pods_fail_list_and_watch_until_allowed() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    let pods: Api<Pod> = Api::namespaced(kube.client("default").await, "default");
    kube.forbid("pods", true);

    let error = within("list", pods.list(&ListParams::default().labels(SELECTOR)))
        .await
        .unwrap_err();
    assert_forbidden(
        &error,
        &format!(
            "pods is forbidden: User \"{FAKE_USER}\" cannot list resource \"pods\" in API group \"\" in the \
             namespace \"default\""
        ),
    );
    let error = within("get", pods.get("greetserver-a")).await.unwrap_err();
    assert!(api_status(&error).message.contains("cannot get resource \"pods\""));
    let all: Api<Pod> = Api::all(kube.client("default").await);
    let error = within("list all", all.list(&ListParams::default())).await.unwrap_err();
    assert!(
        api_status(&error)
            .message
            .ends_with("cannot list resource \"pods\" in API group \"\" at the cluster scope")
    );

    // The watcher reports the initial list failing with the 403, then recovers once allowed.
    let mut watched = Watched::start(pods.clone(), watcher::Config::default().labels(SELECTOR));
    watched.step().await;
    watched.step().await;
    assert_eq!(watched.log[0], "Init");
    match &watched.errors[..] {
        [watcher::Error::InitialListFailed(kube::Error::Api(status))] => assert_eq!(status.code, 403),
        other => panic!("expected InitialListFailed(Api 403), got {other:?}"),
    }
    kube.forbid("pods", false);
    watched.until_names(&["greetserver-a"]).await;

    // A watch answers 403 too.
    kube.forbid("pods", true);
    let error = within("watch", pods.watch(&WatchParams::default(), "0"))
        .await
        .err()
        .expect("watch refused");
    assert!(api_status(&error).message.contains("cannot watch resource \"pods\""));
}

#[tokio::test]
async fn bad_requests_get_status_errors_and_the_server_survives() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    let client = kube.client("default").await;
    let raw = |uri: &str| http::Request::get(uri).body(Vec::new()).unwrap();

    for (uri, code) in [
        ("/api/v1/namespaces/default/pods?timeoutSeconds=abc&watch=true", 400),
        ("/api/v1/namespaces/default/pods?labelSelector=run+in+%28a%2Cb%29", 400),
        ("/api/v1/namespaces/default/pods?watch=maybe", 400),
        ("/api/v1/namespaces/default/pods?resourceVersion=x", 400),
        ("/api/v1/namespaces/default/pods?%zz", 200),
        ("/api/v1/namespaces/default/services", 404),
        ("/apis/apps/v1/namespaces/default/deployments", 404),
        ("/version", 404),
    ] {
        let result = within(uri, client.request_text(raw(uri))).await;
        match (code, result) {
            (200, Ok(_)) => {}
            (_, Err(error)) => assert_eq!(api_status(&error).code, code, "{uri}: {error}"),
            (_, Ok(text)) => panic!("{uri}: expected {code}, got {text}"),
        }
    }
    let post = http::Request::post("/api/v1/namespaces/default/pods")
        .body(b"{}".to_vec())
        .unwrap();
    let error = within("post", client.request_text(post)).await.unwrap_err();
    assert_eq!(api_status(&error).code, 405);

    // A wrong token is turned away.
    let yaml = kube.kubeconfig_yaml("default").replace(FAKE_TOKEN, "wrong");
    let config =
        kube::Config::from_custom_kubeconfig(kube::config::Kubeconfig::from_yaml(&yaml).unwrap(), &Default::default())
            .await
            .unwrap();
    let intruder: Api<Pod> = Api::default_namespaced(kube::Client::try_from(config).unwrap());
    let error = within("list", intruder.list(&ListParams::default())).await.unwrap_err();
    assert_eq!(api_status(&error).code, 401);

    let pods: Api<Pod> = Api::default_namespaced(client);
    assert_eq!(
        names(&within("list", pods.list(&ListParams::default())).await.unwrap().items),
        ["greetserver-a"]
    );
}
