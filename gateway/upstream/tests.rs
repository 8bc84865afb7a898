use super::*;

#[test]
fn pod_is_parsed_from_article_text() {
    assert_eq!(
        pod_from_result("Hello, A B from pod: name(greetserver-deploy-7595ccbdd5-l8kmv), ip(172.17.0.2)."),
        Some(("greetserver-deploy-7595ccbdd5-l8kmv".into(), "172.17.0.2".into()))
    );
    assert_eq!(pod_from_result("Hello, A B"), None);
    assert_eq!(pod_from_result("from pod: name(x), ip(y)"), None);
}
