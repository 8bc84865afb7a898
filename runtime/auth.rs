//! The gateway's control token: what `PUT /mode` and the Observer RPCs
//! require when it is set (`authorization: Bearer <token>`), and what
//! greet-top sends. The token itself is never printed: its `Debug` is
//! redacted and no message repeats what a client sent.

use std::fmt;

use subtle::ConstantTimeEq as _;

/// The scheme of the `authorization` header the controls want.
const SCHEME: &str = "Bearer";

/// A token as given by a flag or its variable, not yet checked: clap would
/// repeat a value it refuses in its error, [`TokenSetting::token`] does not.
#[derive(Clone)]
pub struct TokenSetting(String);

impl fmt::Debug for TokenSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSetting(<redacted>)")
    }
}

impl std::str::FromStr for TokenSetting {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(TokenSetting(text.to_owned()))
    }
}

impl TokenSetting {
    /// The token, checked; `setting` names the flag and variable in the error.
    pub fn token(&self, setting: &str) -> anyhow::Result<ControlToken> {
        ControlToken::from_setting(&self.0, setting)
    }
}

/// A control token: not empty, printable ASCII (it travels in a header).
#[derive(Clone, PartialEq, Eq)]
pub struct ControlToken(String);

impl fmt::Debug for ControlToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControlToken(<redacted>)")
    }
}

impl ControlToken {
    /// The token set by `setting` (a flag and its variable, named in the
    /// error). Surrounding whitespace is dropped: a Secret created from a
    /// file often ends with a newline that `$(...)` strips on the client side.
    /// The error never repeats the value.
    pub fn from_setting(raw: &str, setting: &str) -> anyhow::Result<ControlToken> {
        let token = raw.trim();
        if token.is_empty() {
            anyhow::bail!(
                "{setting} is set but empty: set it to the control token (in Kubernetes, the key `token` of the \
                 Secret greetclient-control-token), or unset it"
            );
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            anyhow::bail!(
                "{setting} holds a space, a control character or a non-ASCII character: a bearer token must be \
                 printable ASCII without spaces (e.g. `openssl rand -hex 32`)"
            );
        }
        Ok(ControlToken(token.to_owned()))
    }

    /// The `authorization` header value that carries this token.
    pub fn header_value(&self) -> String {
        format!("{SCHEME} {}", self.0)
    }

    /// Whether the `authorization` header (its raw bytes; `None` when absent)
    /// carries this token.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<(), Denied> {
        let value = authorization.ok_or(Denied::Missing)?;
        let sent = bearer_token(value).ok_or(Denied::NotBearer)?;
        // Constant time (subtle, maintained by the dalek-cryptography
        // project): a comparison that stops at the first differing byte would
        // let a client find the token byte by byte from response times. Only
        // the length can leak, and a generated token's length is no secret.
        if bool::from(sent.ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err(Denied::Wrong)
        }
    }
}

/// The token of a `Bearer <token>` header value (the scheme in any case).
fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME.as_bytes()) || rest.first() != Some(&b' ') {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Why a control call was refused. The messages lead with the cause, say what
/// to do, and never repeat the token that was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No `authorization` header.
    Missing,
    /// An `authorization` header that is not `Bearer <token>`.
    NotBearer,
    /// A bearer token that is not the gateway's.
    Wrong,
}

impl Denied {
    pub fn message(self) -> &'static str {
        match self {
            Denied::Missing => {
                "missing bearer token: PUT /mode and the Observer (Watch, GetState, SetMode) need the header \
                 `authorization: Bearer <token>` with the gateway's control token (GATEWAY_CONTROL_TOKEN; in \
                 Kubernetes the Secret greetclient-control-token); greet-top sends it with --token or GREET_TOP_TOKEN"
            }
            Denied::NotBearer => {
                "missing bearer token: the authorization header is not `Bearer <token>`; send \
                 `authorization: Bearer <token>` with the gateway's control token (GATEWAY_CONTROL_TOKEN)"
            }
            Denied::Wrong => {
                "wrong token: the bearer token is not the gateway's control token (GATEWAY_CONTROL_TOKEN); send the \
                 one in the Secret greetclient-control-token (greet-top: --token or GREET_TOP_TOKEN)"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(text: &str) -> ControlToken {
        ControlToken::from_setting(text, "--control-token / GATEWAY_CONTROL_TOKEN").unwrap()
    }

    #[test]
    fn only_the_right_bearer_token_passes() {
        let t = token("s3cret-token");
        assert_eq!(t.check(Some(b"Bearer s3cret-token")), Ok(()));
        assert_eq!(
            t.check(Some(b"bearer   s3cret-token ")),
            Ok(()),
            "scheme in any case, spaces around"
        );
        assert_eq!(t.check(None), Err(Denied::Missing));
        assert_eq!(t.check(Some(b"Bearer s3cret-tokeN")), Err(Denied::Wrong));
        assert_eq!(t.check(Some(b"Bearer s3cret-token2")), Err(Denied::Wrong));
        assert_eq!(t.check(Some(b"Bearer s3cret")), Err(Denied::Wrong));
        assert_eq!(t.check(Some(b"Basic czNjcmV0LXRva2Vu")), Err(Denied::NotBearer));
        assert_eq!(t.check(Some(b"Bearer")), Err(Denied::NotBearer));
        assert_eq!(t.check(Some(b"Bearer ")), Err(Denied::NotBearer));
        assert_eq!(t.check(Some(b"Bearers3cret-token")), Err(Denied::NotBearer));
        assert_eq!(t.check(Some(b"")), Err(Denied::NotBearer));
        assert_eq!(t.header_value(), "Bearer s3cret-token");
    }

    #[test]
    fn empty_or_unprintable_tokens_are_refused_without_repeating_them() {
        let setting = "--control-token / GATEWAY_CONTROL_TOKEN";
        for empty in ["", "  ", "\n"] {
            let err = ControlToken::from_setting(empty, setting).unwrap_err().to_string();
            assert!(
                err.starts_with("--control-token / GATEWAY_CONTROL_TOKEN is set but empty: "),
                "{err}"
            );
        }
        let err = ControlToken::from_setting("abc déf", setting).unwrap_err().to_string();
        assert!(!err.contains("abc"), "{err}");
        assert!(err.contains("must be printable ASCII"), "{err}");
        assert_eq!(token(" abc\n"), token("abc"), "surrounding whitespace dropped");
    }

    #[test]
    fn debug_never_shows_the_token() {
        assert_eq!(format!("{:?}", Some(token("s3cret"))), "Some(ControlToken(<redacted>))");
        let setting: TokenSetting = "s3cret".parse().unwrap();
        assert_eq!(format!("{setting:?}"), "TokenSetting(<redacted>)");
        assert_eq!(setting.token("--token").unwrap(), token("s3cret"));
    }

    #[test]
    fn messages_lead_with_the_cause_and_differ() {
        assert!(Denied::Missing.message().starts_with("missing bearer token: "));
        assert!(Denied::NotBearer.message().starts_with("missing bearer token: "));
        assert!(Denied::Wrong.message().starts_with("wrong token: "));
    }
}
