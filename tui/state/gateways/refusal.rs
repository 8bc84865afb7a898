//! A gateway that answers but refuses greet-top (UNAUTHENTICATED): a state of
//! its own, since waiting does not help: the user must give the right token.

use std::fmt;

/// Why a gateway refused greet-top's calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Refusal {
    /// greet-top sent no token; the gateway wants one.
    NoToken,
    /// The gateway does not accept the token greet-top sent.
    WrongToken,
    /// greet-top sent a token, yet the gateway says none arrived.
    TokenLost,
}

impl Refusal {
    /// What happened and what to do, for the header, the footer and `--once`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::NoToken => "the gateway wants a token — start greet-top with --token or GREET_TOP_TOKEN",
            Refusal::WrongToken => "wrong token — check --token or GREET_TOP_TOKEN",
            Refusal::TokenLost => {
                "the gateway got no token though greet-top sent one — does a proxy drop the authorization header?"
            }
        }
    }

    /// The verdict line: the action first, so a narrow terminal keeps it.
    pub fn verdict(self) -> &'static str {
        match self {
            Refusal::NoToken => "REFUSED — restart with --token or GREET_TOP_TOKEN: the gateway wants a token",
            Refusal::WrongToken => "REFUSED — check --token or GREET_TOP_TOKEN: the gateway says the token is wrong",
            Refusal::TokenLost => "REFUSED: the token sent did not reach the gateway — is a proxy dropping it?",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused: {}", self.reason())
    }
}
