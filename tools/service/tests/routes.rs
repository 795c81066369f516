//! The routes of the service over HTTP, on the in-memory backend served in
//! this process: a payment's life (start, refused start, long poll, paid,
//! refund, next epoch), bad input answered 400 naming its field, paging,
//! the metrics and the page. Every wait is bounded by the client's timeout
//! and by the long polls' own bound.

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use service::backend::Work;
use service::memory::Memory;
use std::time::Duration;

/// The client's bound on every request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// A service on the in-memory backend whose attempts do `work`, on a free
/// loopback port; its base URL.
async fn serve(work: Work) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let never = std::future::pending::<()>();
    tokio::spawn(service::serve(listener, Memory::new(work), never));
    base
}

fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap()
}

/// Sends `method path` and returns the status, the headers and the body.
async fn send(
    client: &Client,
    method: Method,
    url: &str,
) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = client.request(method.clone(), url).send().await;
    let response = response.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

/// Sends `method path`, expects `status`, and returns the JSON body.
async fn json(client: &Client, method: Method, url: &str, status: StatusCode) -> Value {
    let (got, _, body) = send(client, method.clone(), url).await;
    assert_eq!(got, status, "{method} {url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method} {url}: {e}: {body}"))
}

fn quick(fail_rate: f64) -> Work {
    Work {
        delay: Duration::from_millis(50),
        fail_rate,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_is_started_refused_polled_paid_refunded_and_paid_again() {
    let (base, c) = (serve(quick(0.0)).await, client());
    let url = format!("{base}/payments/inv-7");
    let (status, headers, body) = send(&c, Method::PUT, &url).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(headers["location"], "/payments/inv-7");
    let started: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&started["state"], &started["epoch"]),
        (&"working".into(), &0.into())
    );
    let fence = started["fence"]
        .as_u64()
        .expect("a started payment has a fence");

    let refused = json(&c, Method::PUT, &url, StatusCode::CONFLICT).await;
    assert_eq!(
        (&refused["code"], &refused["state"]),
        (&"refused".into(), &"working".into())
    );

    let polled = json(&c, Method::GET, &format!("{url}?wait=15"), StatusCode::OK).await;
    assert_eq!(polled["state"], "success", "{polled}");
    assert_eq!(polled["fence"], fence);
    let paid = json(&c, Method::PUT, &url, StatusCode::OK).await;
    assert_eq!(paid["state"], "success");

    let refunded = json(&c, Method::DELETE, &url, StatusCode::OK).await;
    assert_eq!(
        (&refunded["state"], &refunded["epoch"]),
        (&"not_found".into(), &1.into())
    );
    let again = json(&c, Method::DELETE, &url, StatusCode::CONFLICT).await;
    assert_eq!(again["state"], "not_found");

    let next = json(&c, Method::PUT, &url, StatusCode::ACCEPTED).await;
    assert_eq!(next["epoch"], 1);
    let polled = json(&c, Method::GET, &format!("{url}?wait=15"), StatusCode::OK).await;
    assert_eq!(
        (&polled["state"], &polled["epoch"]),
        (&"success".into(), &1.into())
    );

    let unknown = json(
        &c,
        Method::GET,
        &format!("{base}/payments/inv-8"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (&unknown["state"], &unknown["fence"]),
        (&"not_found".into(), &Value::Null)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_that_runs_out_answers_working() {
    let slow = Work {
        delay: Duration::from_secs(60),
        fail_rate: 0.0,
    };
    let (base, c) = (serve(slow).await, client());
    let url = format!("{base}/payments/slow");
    json(&c, Method::PUT, &url, StatusCode::ACCEPTED).await;
    for wait in ["0", "0.2"] {
        let polled = json(
            &c,
            Method::GET,
            &format!("{url}?wait={wait}"),
            StatusCode::OK,
        )
        .await;
        assert_eq!(polled["state"], "working", "wait={wait}: {polled}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_naming_its_field_never_a_500() {
    let (base, c) = (serve(quick(0.0)).await, client());
    let long = "x".repeat(service::input::MAX_ID_LEN + 1);
    let cases: &[(Method, String, &str)] = &[
        (Method::PUT, "/payments/".into(), "id"),
        (Method::GET, "/payments/".into(), "id"),
        (Method::DELETE, "/payments/".into(), "id"),
        (Method::PUT, format!("/payments/{long}"), "id"),
        (Method::GET, format!("/payments/{long}"), "id"),
        (Method::PUT, "/payments/a%20b".into(), "id"),
        (Method::PUT, "/payments/%FF".into(), "id"),
        (Method::DELETE, "/payments/a%2Fb".into(), "id"),
        (Method::GET, "/payments/a?wait=soon".into(), "wait"),
        (Method::GET, "/payments/a?wait=-1".into(), "wait"),
        (Method::GET, "/payments/a?wait=31".into(), "wait"),
        (Method::GET, "/payments/a?wait=NaN".into(), "wait"),
        (Method::GET, "/payments/a?wait=1&wait=2".into(), "wait"),
        (Method::GET, "/payments/a?color=red".into(), "color"),
        (Method::GET, "/payments".into(), "state"),
        (Method::GET, "/payments?state=done".into(), "state"),
        (
            Method::GET,
            "/payments?state=failed&limit=0".into(),
            "limit",
        ),
        (
            Method::GET,
            "/payments?state=failed&limit=1001".into(),
            "limit",
        ),
        (
            Method::GET,
            "/payments?state=failed&limit=ten".into(),
            "limit",
        ),
        (
            Method::GET,
            "/payments?state=failed&after=a%20b".into(),
            "after",
        ),
        (
            Method::GET,
            format!("/payments?state=failed&after={long}"),
            "after",
        ),
        (Method::GET, "/?limit=26".into(), "limit"),
        (Method::GET, "/?state=lost".into(), "state"),
    ];
    for (method, path, field) in cases {
        let url = format!("{base}{path}");
        let error = json(&c, method.clone(), &url, StatusCode::BAD_REQUEST).await;
        assert_eq!(error["code"], "invalid_input", "{method} {path}: {error}");
        assert_eq!(error["field"], *field, "{method} {path}: {error}");
        assert!(error["message"].is_string(), "{method} {path}: {error}");
    }
    let missing = json(
        &c,
        Method::GET,
        &format!("{base}/nowhere"),
        StatusCode::NOT_FOUND,
    )
    .await;
    assert_eq!(missing["code"], "no_route");
    for (method, path) in [(Method::POST, "/payments/a"), (Method::DELETE, "/payments")] {
        let url = format!("{base}{path}");
        let refused = json(&c, method, &url, StatusCode::METHOD_NOT_ALLOWED).await;
        assert_eq!(refused["code"], "method_not_allowed", "{path}: {refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listing_pages_through_every_failed_id_once_and_the_page_and_metrics_agree() {
    let (base, c) = (serve(quick(1.0)).await, client());
    let ids: Vec<String> = (0..25).map(|n| format!("f-{n:02}")).collect();
    for id in &ids {
        json(
            &c,
            Method::PUT,
            &format!("{base}/payments/{id}"),
            StatusCode::ACCEPTED,
        )
        .await;
    }
    for id in &ids {
        let url = format!("{base}/payments/{id}?wait=15");
        let polled = json(&c, Method::GET, &url, StatusCode::OK).await;
        assert_eq!(polled["state"], "failed", "{id}: {polled}");
    }

    let (mut listed, mut after, mut pages) = (Vec::new(), String::new(), 0);
    while pages < 10 {
        let url = format!("{base}/payments?state=failed&limit=10&after={after}");
        let page = json(&c, Method::GET, &url, StatusCode::OK).await;
        pages += 1;
        let got: Vec<String> = serde_json::from_value(page["ids"].clone()).unwrap();
        assert!(
            got.iter().all(|id| *id > after),
            "page {pages} after {after:?}: {got:?}"
        );
        listed.extend(got);
        match page["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    assert_eq!((listed, pages), (ids.clone(), 3));
    let none = json(
        &c,
        Method::GET,
        &format!("{base}/payments?state=success"),
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (&none["ids"], &none["next"]),
        (&Value::Array(vec![]), &Value::Null)
    );

    let (status, headers, text) = send(&c, Method::GET, &format!("{base}/metrics")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    for line in [
        "payments_ids{backend=\"memory\",state=\"failed\"} 25",
        "payments_ids{backend=\"memory\",state=\"working\"} 0",
        "payments_operations_total{op=\"start\"} 25",
        "payments_operations_total{op=\"list\"} 4",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in:\n{text}");
    }

    let (status, headers, html) = send(&c, Method::GET, &format!("{base}/?limit=10")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        html.contains("failed: 25</a>") && html.contains("<td>f-09</td>"),
        "{html}"
    );
    assert!(!html.contains("<td>f-10</td>"), "{html}");
    assert!(
        html.contains("after=f-09&amp;limit=10\">next page</a>"),
        "{html}"
    );
    let url = format!("{base}/?state=failed&after=f-19&limit=10");
    let (_, _, last) = send(&c, Method::GET, &url).await;
    assert!(
        last.contains("<td>f-24</td>") && last.contains("first page"),
        "{last}"
    );
    assert!(!last.contains("next page"), "{last}");
}
