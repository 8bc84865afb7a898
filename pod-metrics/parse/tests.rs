use super::*;

/// A sample as owned (name, labels, value).
type Owned = (String, Vec<(String, String)>, f64);

/// Every sample of `body`, with the stats.
fn read(body: &[u8]) -> (Vec<Owned>, ParseStats) {
    let mut out = Vec::new();
    let stats = parse(
        body,
        MAX_SAMPLES,
        |_| false,
        |s| {
            out.push((
                s.name.to_string(),
                s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                s.value,
            ))
        },
    );
    (out, stats)
}

fn l(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn reads_plain_samples_with_and_without_labels() {
    let (samples, stats) = read(b"up 1\nx_total{a=\"b\",c=\"d\"} 42\n");
    assert_eq!(
        samples,
        [
            ("up".into(), vec![], 1.0),
            ("x_total".into(), l(&[("a", "b"), ("c", "d")]), 42.0)
        ]
    );
    assert_eq!(stats.samples, 2);
    assert_eq!(stats.bad_lines, 0);
}

#[test]
fn undoes_escapes_and_keeps_commas_braces_and_equals_in_values() {
    let (samples, _) = read(br#"m{v="a,b=c\"}",w="back\\slash",x="new\nline",y="\q"} 1"#);
    assert_eq!(
        samples[0].1,
        l(&[
            ("v", "a,b=c\"}"),
            ("w", "back\\slash"),
            ("x", "new\nline"),
            ("y", "\\q")
        ])
    );
}

#[test]
fn accepts_a_trailing_comma_blanks_and_quoted_label_names() {
    let (samples, stats) = read(b"m{a=\"1\",} 2\nm{ a = \"1\" , \"b.c\"=\"2\" } 3\n");
    assert_eq!(stats.bad_lines, 0);
    assert_eq!(samples[0].1, l(&[("a", "1")]));
    assert_eq!(samples[1].1, l(&[("a", "1"), ("b.c", "2")]));
}

#[test]
fn reads_quoted_utf8_metric_names() {
    let (samples, _) = read("{\"target.info\",\"service.name\"=\"grüß\"} 1\n{\"only.name\"} 2\n".as_bytes());
    assert_eq!(samples[0], ("target.info".into(), l(&[("service.name", "grüß")]), 1.0));
    assert_eq!(samples[1], ("only.name".into(), vec![], 2.0));
}

#[test]
fn reads_special_values_and_ignores_timestamps_and_exemplars() {
    let (samples, stats) = read(
        b"a +Inf\nb -Inf\nc 1.5e3 1712345678\nd_bucket{le=\"0.1\"} 7 # {trace_id=\"abc\"} 0.05 1712345678.1\ne 3.0\r\n",
    );
    let values: Vec<f64> = samples.iter().map(|s| s.2).collect();
    assert_eq!(values, [f64::INFINITY, f64::NEG_INFINITY, 1500.0, 7.0, 3.0]);
    assert_eq!(stats.bad_lines, 0);
    let (nan, _) = read(b"n NaN\n");
    assert!(nan[0].2.is_nan());
}

#[test]
fn keeps_le_as_written_both_spellings() {
    let (samples, _) = read(b"h_bucket{le=\"1.0\"} 1\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\n");
    let les: Vec<&str> = samples.iter().map(|s| s.1[0].1.as_str()).collect();
    assert_eq!(les, ["1.0", "1", "+Inf"]);
}

#[test]
fn stops_at_eof_and_skips_comments_help_type_unit() {
    let body = b"# HELP grpc_server_started Total.\n# TYPE grpc_server_started counter\n# UNIT x seconds\n# just a comment\ngrpc_server_started_total 1\ngrpc_server_started_created 1.7e9\n# EOF\nafter 1\n";
    let (samples, stats) = read(body);
    let names: Vec<&str> = samples.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["grpc_server_started_total", "grpc_server_started_created"]);
    assert_eq!(stats.declared, ["grpc_server_started"]);
    assert_eq!(stats.bad_lines, 0);
}

#[test]
fn skips_and_counts_bad_and_non_utf8_lines() {
    let body = b"good 1\n\xff\xfe 2\nno_value\nm{a=\"unterminated} 1\nm{a=1} 1\nm{=\"x\"} 1\nm 1x\n9bad 1\nalso_good{} 2\n\n   \n";
    let (samples, stats) = read(body);
    let names: Vec<&str> = samples.iter().map(|s| s.0.as_str()).collect();
    assert_eq!(names, ["good", "also_good"]);
    assert_eq!(stats.bad_lines, 7);
}

#[test]
fn keeps_control_characters_for_the_later_sanitising() {
    let (samples, _) = read(b"m{a=\"x\x1b[2Jy\"} 1\n");
    assert_eq!(samples[0].1, l(&[("a", "x\u{1b}[2Jy")]));
}

#[test]
fn stops_at_the_sample_limit() {
    let body = "a 1\n".repeat(10);
    let mut n = 0;
    let stats = parse(body.as_bytes(), 4, |_| false, |_| n += 1);
    assert_eq!((n, stats.samples, stats.truncated), (4, 4, true));
    let stats = parse(body.as_bytes(), 10, |_| false, |_| {});
    assert!(!stats.truncated);
}
