//! `GET /healthz`: `200 ok` while serving, `503 draining` once shutdown began, so a load
//! balancer takes the node out of rotation.
//!
//! In cluster mode a node that lost Redis answers `200 degraded`: its open streams keep
//! working and it resumes by itself, and every other node shares the same Redis, so
//! taking it out of rotation would help no client.

use http::{Response, StatusCode};

use crate::body::SseBody;
use crate::response;
use crate::state::State;

pub(crate) fn handle(state: &State) -> Response<SseBody> {
    if state.is_draining() {
        response::text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
    } else if state.is_degraded() {
        response::text(
            StatusCode::OK,
            "degraded: the cluster's Redis is unreachable; publishing answers 503\n",
        )
    } else {
        response::text(StatusCode::OK, "ok\n")
    }
}
