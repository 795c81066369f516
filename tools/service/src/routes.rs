//! The routes, written once over any [`Backend`]:
//!
//! | route | answers |
//! | --- | --- |
//! | `PUT /payments/{id}` | 202 + `Location` when started, 409 with the state when an attempt runs, 200 when already paid |
//! | `GET /payments/{id}[?wait=SECS]` | 200 with the state; with `wait`, once the id is not `Working` or after `SECS` (at most 30) |
//! | `DELETE /payments/{id}` | 200 when refunded (a new epoch), 409 with the state when not paid or being refunded |
//! | `GET /payments?state=S[&after=ID][&limit=N]` | one page of the ids in `S`, sorted, with the next page's cursor |
//! | `GET /metrics` | Prometheus text: ids per state, operations in total and per second |
//! | `GET /` | the read-only HTML page |
//!
//! Errors are JSON with a stable `code` (see `error`).

use crate::backend::{Backend, Payment, Revoked, Started};
use crate::error::ApiError;
use crate::input::{self, DEFAULT_LIMIT, MAX_LIMIT, Query, state_name};
use crate::metrics::{Metrics, Op};
use crate::page::{self, PAGE_LIMIT, View};
use crate::trace;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{self, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, put};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// What every route shares.
pub struct App<B> {
    /// The recorder behind the routes.
    pub backend: B,
    /// This process's counters.
    pub metrics: Metrics,
}

type Shared<B> = State<Arc<App<B>>>;
type PathArg = Result<extract::Path<String>, PathRejection>;
type QueryArg = Result<extract::Query<Vec<(String, String)>>, QueryRejection>;

/// The service's routes over `backend`.
pub fn router<B: Backend>(backend: B) -> Router {
    let app = Arc::new(App {
        backend,
        metrics: Metrics::default(),
    });
    Router::new()
        .route("/", get(show::<B>).fallback(not_allowed))
        .route("/payments", get(list::<B>).fallback(not_allowed))
        .route("/payments/", any(empty_id))
        .route(
            "/payments/{id}",
            put(start::<B>)
                .get(read::<B>)
                .delete(revoke::<B>)
                .fallback(not_allowed),
        )
        .route("/metrics", get(metrics::<B>).fallback(not_allowed))
        .fallback(no_route)
        .with_state(app)
}

/// The JSON of a payment; `code` is added to refusals.
fn body(payment: &Payment) -> Value {
    json!({
        "id": payment.id,
        "state": state_name(payment.state),
        "epoch": payment.epoch,
        "fence": payment.fence,
    })
}

fn refused(payment: &Payment) -> Response {
    let mut body = body(payment);
    body["code"] = json!("refused");
    (StatusCode::CONFLICT, Json(body)).into_response()
}

/// The checked `{id}` of the path.
fn path_id(path: PathArg) -> Result<String, ApiError> {
    let extract::Path(id) = path.map_err(|e| ApiError::invalid("id", e.body_text()))?;
    input::id("id", &id)?;
    Ok(id)
}

fn query(query: QueryArg, allowed: &[&str]) -> Result<Query, ApiError> {
    let extract::Query(pairs) = query.map_err(|e| ApiError::invalid("query", e.body_text()))?;
    Query::new(pairs, allowed)
}

async fn start<B: Backend>(State(app): Shared<B>, id: PathArg) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    app.metrics.count(Op::Start);
    let span = trace::span("start", &id);
    let started = app
        .backend
        .start(id.clone())
        .instrument(span.clone())
        .await?;
    Ok(match started {
        Started::Started(payment) => {
            trace::answered(&span, &payment, "started");
            let location = format!("/payments/{id}");
            let headers = [(header::LOCATION, location)];
            (StatusCode::ACCEPTED, headers, Json(body(&payment))).into_response()
        }
        Started::Refused(payment) => {
            trace::answered(&span, &payment, "refused");
            refused(&payment)
        }
        Started::Paid(payment) => {
            trace::answered(&span, &payment, "paid");
            Json(body(&payment)).into_response()
        }
    })
}

async fn read<B: Backend>(
    State(app): Shared<B>,
    id: PathArg,
    params: QueryArg,
) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let wait = query(params, &["wait"])?.wait()?;
    app.metrics.count(Op::Read);
    let span = trace::span("read", &id);
    let answer = async {
        if let Some(wait) = wait.filter(|w| !w.is_zero()) {
            // A long poll that runs out answers the state then: `Working`.
            let _ = tokio::time::timeout(wait, app.backend.wait(&id)).await;
        }
        app.backend.read(&id).await
    };
    let payment = answer.instrument(span.clone()).await?;
    trace::answered(&span, &payment, "read");
    Ok(Json(body(&payment)).into_response())
}

async fn revoke<B: Backend>(State(app): Shared<B>, id: PathArg) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    app.metrics.count(Op::Revoke);
    let span = trace::span("revoke", &id);
    let revoked = app.backend.revoke(id).instrument(span.clone()).await?;
    Ok(match revoked {
        Revoked::Revoked(payment) => {
            trace::answered(&span, &payment, "refunded");
            Json(body(&payment)).into_response()
        }
        Revoked::Refused(payment) => {
            trace::answered(&span, &payment, "refused");
            refused(&payment)
        }
    })
}

async fn list<B: Backend>(State(app): Shared<B>, params: QueryArg) -> Result<Response, ApiError> {
    let params = query(params, &["state", "after", "limit"])?;
    let (state, after) = (params.state(true)?, params.after()?);
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    app.metrics.count(Op::List);
    let page = app.backend.list_page(state, &after, limit).await?;
    Ok(Json(json!({
        "state": state_name(state),
        "ids": page.ids,
        "next": page.next,
    }))
    .into_response())
}

async fn metrics<B: Backend>(State(app): Shared<B>) -> Result<Response, ApiError> {
    let counts = app.backend.counts().await?;
    let text = app
        .metrics
        .render(app.backend.name(), counts, Instant::now());
    let kind = [(header::CONTENT_TYPE, "text/plain; version=0.0.4")];
    Ok((kind, text).into_response())
}

async fn show<B: Backend>(State(app): Shared<B>, params: QueryArg) -> Result<Response, ApiError> {
    let params = query(params, &["state", "after", "limit"])?;
    let (state, after) = (params.state(false)?, params.after()?);
    let limit = params.limit(PAGE_LIMIT, PAGE_LIMIT)?;
    let counts = app.backend.counts().await?;
    let listed = app.backend.list_page(state, &after, limit).await?;
    let mut payments = Vec::with_capacity(listed.ids.len());
    for id in &listed.ids {
        payments.push(app.backend.read(id).await?);
    }
    let view = View {
        backend: app.backend.name(),
        counts,
        state,
        after: &after,
        payments: &payments,
        page: &listed,
        limit,
    };
    Ok(Html(page::render(&view)).into_response())
}

async fn empty_id() -> ApiError {
    ApiError::invalid("id", "must not be empty")
}

async fn no_route() -> ApiError {
    ApiError::NoRoute
}

async fn not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
