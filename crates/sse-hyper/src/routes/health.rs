//! `GET /healthz`: `200 ok` while serving, `503 draining` once shutdown began, so a load
//! balancer takes the node out of rotation.

use http::{Response, StatusCode};

use crate::body::SseBody;
use crate::response;
use crate::state::State;

pub(crate) fn handle(state: &State) -> Response<SseBody> {
    if state.is_draining() {
        response::text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else {
        response::text(StatusCode::OK, "ok\n")
    }
}
