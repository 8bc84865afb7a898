//! The watch protocol on the wire: bookmarks, selector transitions, 410 Expired, dropped watches.

use super::*;

/// Sends a raw HTTP/1.1 watch request; returns the stream once the response head has arrived.
async fn raw_watch(kube: &FakeKube, query: &str) -> (tokio::net::TcpStream, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = kube.url().trim_start_matches("http://").to_owned();
    let mut tcp = within("connect", tokio::net::TcpStream::connect(addr)).await.unwrap();
    let request = format!(
        "GET /api/v1/namespaces/default/pods?watch=true&{query} HTTP/1.1\r\nHost: fake\r\nAuthorization: Bearer \
         {FAKE_TOKEN}\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        let mut buf = [0; 4096];
        let n = within("the response head", tcp.read(&mut buf)).await.unwrap();
        assert!(n > 0, "closed before the head: {}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
    }
    (tcp, received)
}

/// Reads until the chunked body's terminating chunk or until the server closes the connection;
/// returns whether the body was terminated properly.
async fn read_body_end(tcp: &mut tokio::net::TcpStream, received: &mut Vec<u8>) -> bool {
    use tokio::io::AsyncReadExt;
    loop {
        if received.ends_with(b"\r\n0\r\n\r\n") {
            return true;
        }
        let mut buf = [0; 4096];
        let n = within("the end of the body", tcp.read(&mut buf)).await.unwrap_or(0);
        if n == 0 {
            return false;
        }
        received.extend_from_slice(&buf[..n]);
    }
}

#[tokio::test]
async fn raw_watch_sends_bookmarks_transitions_and_410() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    let pods: Api<Pod> = Api::namespaced(kube.client("default").await, "default");
    let rv = kube.resource_version();
    let mut stream = within("watch", pods.watch(&WatchParams::default().labels(SELECTOR), &rv))
        .await
        .unwrap()
        .boxed();
    // The next event that is not a bookmark (bookmarks may come in between at any time).
    let mut next = async || loop {
        match within("a watch event", stream.next())
            .await
            .expect("stream open")
            .unwrap()
        {
            WatchEvent::Bookmark(_) => continue,
            event => break event,
        }
    };

    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    assert!(matches!(next().await, WatchEvent::Added(p) if p.name_any() == "greetserver-b"));
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.9"));
    match next().await {
        WatchEvent::Modified(p) => assert_eq!(p.status.unwrap().pod_ip.as_deref(), Some("10.1.0.9")),
        other => panic!("expected Modified, got {other:?}"),
    }
    kube.apply_pod(pod("default", "greetserver-b", &[], "10.1.0.9", true));
    assert!(matches!(next().await, WatchEvent::Deleted(p) if p.name_any() == "greetserver-b"));
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.9"));
    assert!(matches!(next().await, WatchEvent::Added(p) if p.name_any() == "greetserver-b"));
    kube.delete_pod("default", "greetserver-b");
    match next().await {
        WatchEvent::Deleted(p) => assert_eq!(p.resource_version(), Some(kube.resource_version())),
        other => panic!("expected Deleted, got {other:?}"),
    }
    // Nothing else happens: a bookmark at the newest resourceVersion comes within a second or so.
    let newest = kube.resource_version();
    loop {
        match within("a bookmark", stream.next()).await.expect("stream open").unwrap() {
            WatchEvent::Bookmark(bookmark) if bookmark.metadata.resource_version == newest => {
                assert_eq!(bookmark.types.kind, "Pod");
                assert_eq!(bookmark.types.api_version, "v1");
                break;
            }
            WatchEvent::Bookmark(_) => {}
            other => panic!("expected a bookmark, got {other:?}"),
        }
    }

    // A watch from before the compaction: 200, one ERROR event with the 410 Status, then the end.
    kube.expire_history();
    let mut stream = within("watch", pods.watch(&WatchParams::default(), &rv))
        .await
        .unwrap()
        .boxed();
    match within("the 410", stream.next()).await.unwrap().unwrap() {
        WatchEvent::Error(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
            assert!(status.message.starts_with("too old resource version"), "{status:?}");
        }
        other => panic!("expected an ERROR event, got {other:?}"),
    }
    assert!(within("the end", stream.next()).await.is_none());

    // timeoutSeconds ends the response cleanly.
    let rv = kube.resource_version();
    let mut stream = within(
        "watch",
        pods.watch(&WatchParams::default().timeout(1).disable_bookmarks(), &rv),
    )
    .await
    .unwrap()
    .boxed();
    assert!(within("the timeout", stream.next()).await.is_none());
}

#[tokio::test]
async fn drop_watches_cuts_the_connection_mid_body() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));

    // A timed-out watch ends with the terminating chunk...
    let (mut tcp, mut received) = raw_watch(&kube, "resourceVersion=0&timeoutSeconds=1").await;
    assert!(read_body_end(&mut tcp, &mut received).await);
    let text = String::from_utf8_lossy(&received).to_lowercase();
    assert!(text.starts_with("http/1.1 200 ok"), "{text}");
    assert!(text.contains("transfer-encoding: chunked") && text.contains("content-type: application/json"));
    assert!(text.contains("\"type\":\"added\""), "{text}");

    // ...a dropped one does not: the connection closes in the middle of the chunked body.
    let (mut tcp, mut received) = raw_watch(&kube, "resourceVersion=0").await;
    kube.drop_watches();
    let terminated = read_body_end(&mut tcp, &mut received).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("\"type\":\"ADDED\""), "{text}");
    assert!(!terminated, "{text:?}");
}

// ---------------------------------------------------------------------------------------------
// Port-forward
