//! The controller's routes. Bodies are parsed here (not by axum's `Json`) so that every
//! refusal is a 400 with the parser's reason in `{"error": ...}`.

use std::sync::Arc;

use ashiato_api::federation::{HopRequest, TraceStart};
use ashiato_net::server::Peer;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::{Controller, TraceError, is_hex32};

pub(crate) fn router(c: Arc<Controller>) -> Router {
    Router::new()
        .route("/v1/trace", post(trace))
        .route("/v1/hop", post(hop))
        .route("/v1/eve", post(eve))
        .route("/v1/traces/{id}", get(get_trace))
        .route("/v1/traces/{id}/dot", get(get_dot))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(c)
}

fn error(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": msg }))).into_response()
}

fn json<T: serde::Serialize>(v: &T) -> Response {
    axum::Json(v).into_response()
}

/// `/v1/trace` and `/v1/eve` are for this domain's own operators and tools: with mutual TLS,
/// a certificate named for another domain's controller (`as<N>`, N not ours) is refused;
/// the refusal is returned.
fn local_only(c: &Controller, peer: Option<&Peer>) -> Option<Response> {
    if c.cfg.domain.dev_insecure {
        return None;
    }
    let name = peer.and_then(|p| p.common_name.as_deref()).unwrap_or("");
    let foreign_controller = name
        .strip_prefix("as")
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n != c.cfg.domain.asn);
    if foreign_controller || peer.is_none_or(|p| !p.authenticated) {
        c.metrics.refused("identity");
        return Some(error(
            StatusCode::FORBIDDEN,
            &format!(
                "certificate {name:?} may not start traces in AS{}",
                c.cfg.domain.asn
            ),
        ));
    }
    None
}

async fn trace(
    State(c): State<Arc<Controller>>,
    peer: Option<Extension<Peer>>,
    body: Bytes,
) -> Response {
    if let Some(r) = local_only(&c, peer.as_ref().map(|p| &p.0)) {
        return r;
    }
    let start: TraceStart = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            c.metrics.refused("malformed");
            return error(StatusCode::BAD_REQUEST, &format!("trace request: {e}"));
        }
    };
    match c.trace(start).await {
        Ok(r) => json(&r),
        Err(e @ TraceError::Invalid(_)) => {
            c.metrics.refused("invalid");
            error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e @ TraceError::Key { .. }) => {
            c.metrics.refused("table_id");
            error(StatusCode::CONFLICT, &e.to_string())
        }
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn hop(
    State(c): State<Arc<Controller>>,
    peer: Option<Extension<Peer>>,
    body: Bytes,
) -> Response {
    let req: HopRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            c.metrics.refused("malformed");
            c.metrics.hop_in("refused");
            return error(StatusCode::BAD_REQUEST, &format!("hop request: {e}"));
        }
    };
    // With TLS, the certificate's name (absent when the router is called without the accept
    // loop) must say who is asking; in dev mode nothing is checked.
    let cert_name = if c.cfg.domain.dev_insecure {
        None
    } else {
        Some(peer.and_then(|p| p.0.common_name.clone()))
    };
    let from = req.from;
    match c.hop(req, cert_name).await {
        Ok(resp) => json(&resp),
        Err(r) => {
            c.metrics.refused(r.label);
            c.metrics.hop_in("refused");
            tracing::warn!(from, status = r.status.as_u16(), reason = %r.reason, "hop request refused");
            let mut resp = error(r.status, &r.reason);
            if let Some(s) = r.retry_after
                && let Ok(v) = HeaderValue::from_str(&s.to_string())
            {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
    }
}

async fn eve(
    State(c): State<Arc<Controller>>,
    peer: Option<Extension<Peer>>,
    body: Bytes,
) -> Response {
    if let Some(r) = local_only(&c, peer.as_ref().map(|p| &p.0)) {
        return r;
    }
    let text = String::from_utf8_lossy(&body);
    json(&crate::eve::handle_lines(&c, &text).await)
}

async fn get_trace(State(c): State<Arc<Controller>>, Path(id): Path<String>) -> Response {
    if !is_hex32(&id) {
        return error(StatusCode::BAD_REQUEST, "a trace id is 32 hex digits");
    }
    match c.get_trace(&id).await {
        Ok(Some(t)) => json(&t),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no trace {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("store: {e}")),
    }
}

async fn get_dot(State(c): State<Arc<Controller>>, Path(id): Path<String>) -> Response {
    if !is_hex32(&id) {
        return error(StatusCode::BAD_REQUEST, "a trace id is 32 hex digits");
    }
    match c.get_trace(&id).await {
        Ok(Some(t)) => (
            [(header::CONTENT_TYPE, "text/vnd.graphviz")],
            ashiato_trace::graph::to_dot(&t.graph),
        )
            .into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, &format!("no trace {id}")),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, &format!("store: {e}")),
    }
}

async fn metrics(State(c): State<Arc<Controller>>) -> Response {
    (
        [(header::CONTENT_TYPE, ashiato_api::metrics::CONTENT_TYPE)],
        c.metrics.render(),
    )
        .into_response()
}
