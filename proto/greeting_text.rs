//! The article's reply text, written by the server and read back by the
//! gateway and the tests: kept together so the two cannot drift apart.

/// `Hello, <first> <last> from pod: name(<pod>), ip(<ip>).`
pub fn greeting_text(first_name: &str, last_name: &str, pod_name: &str, pod_ip: &str) -> String {
    format!("Hello, {first_name} {last_name} from pod: name({pod_name}), ip({pod_ip}).")
}

/// Pod name and IP from `... from pod: name(<name>), ip(<ip>).`
pub fn pod_from_result(result: &str) -> Option<(String, String)> {
    let rest = &result[result.rfind("from pod: name(")? + "from pod: name(".len()..];
    let (name, rest) = rest.split_once("), ip(")?;
    let ip = rest.strip_suffix(").")?;
    Some((name.to_owned(), ip.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_text_matches_the_article() {
        assert_eq!(
            greeting_text(
                "Hitesh",
                "Pattanayak",
                "greetserver-deploy-7595ccbdd5-l8kmv",
                "172.17.0.2"
            ),
            "Hello, Hitesh Pattanayak from pod: name(greetserver-deploy-7595ccbdd5-l8kmv), ip(172.17.0.2)."
        );
    }

    #[test]
    fn pod_is_parsed_from_article_text() {
        assert_eq!(
            pod_from_result("Hello, A B from pod: name(greetserver-deploy-7595ccbdd5-l8kmv), ip(172.17.0.2)."),
            Some(("greetserver-deploy-7595ccbdd5-l8kmv".into(), "172.17.0.2".into()))
        );
        assert_eq!(pod_from_result("Hello, A B"), None);
        assert_eq!(pod_from_result("from pod: name(x), ip(y)"), None);
    }

    #[test]
    fn what_is_written_reads_back() {
        let text = greeting_text("A", "B", "pod-1", "10.0.0.1");
        assert_eq!(pod_from_result(&text), Some(("pod-1".into(), "10.0.0.1".into())));
    }
}
