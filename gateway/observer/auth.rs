//! The Observer behind the control token: every RPC (Watch, GetState,
//! SetMode) is checked before it reaches the service. Health and reflection
//! are other services on the same port and stay open.

use tonic::service::Interceptor;
use tonic::{Request, Status};

use greet_runtime::auth::ControlToken;

/// Lets a call through when the gateway has no token, or when the call
/// carries it; else UNAUTHENTICATED, saying why.
#[derive(Clone, Debug)]
pub(crate) struct ObserverAuth {
    token: Option<ControlToken>,
}

impl ObserverAuth {
    pub(crate) fn new(token: Option<ControlToken>) -> Self {
        ObserverAuth { token }
    }
}

impl Interceptor for ObserverAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(token) = &self.token else {
            return Ok(request);
        };
        let sent = request.metadata().get("authorization").map(|value| value.as_bytes());
        match token.check(sent) {
            Ok(()) => Ok(request),
            Err(denied) => Err(Status::unauthenticated(denied.message())),
        }
    }
}
