//! The outermost middleware: a request id for every request (accepted from `X-Request-Id`
//! or generated), a tracing span carrying it so every log line names it, one access-log
//! line, and the request metrics.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use tracing::Instrument;
use uuid::Uuid;

use super::metrics::Metrics;

/// The header carrying the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, in request extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// A client-supplied id is kept if it is short printable ASCII; anything else is replaced.
fn accept_request_id(value: Option<&HeaderValue>) -> Option<String> {
    let text = value?.to_str().ok()?;
    let ok = !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| text.to_owned())
}

/// Middleware: request id, span, access log, metrics.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let id = accept_request_id(req.headers().get(&REQUEST_ID))
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    let method = req.method().clone();
    let span =
        tracing::info_span!("request", request_id = %id, method = %method, path = %req.path());
    let id_header = HeaderValue::from_str(&id).ok();
    req.extensions_mut().insert(RequestId(id));
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let result = next.call(req).instrument(span.clone()).await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            // Only a middleware refusing outright (such as CORS on a bad preflight) gets here.
            let status = error.as_response_error().status_code().as_u16();
            if let Some(metrics) = &metrics {
                metrics.observe(
                    method.as_str(),
                    "unmatched",
                    status,
                    started.elapsed().as_secs_f64(),
                );
            }
            span.in_scope(|| tracing::info!(status, %error, "request refused"));
            return Err(error);
        }
    };
    let status = response.status().as_u16();
    if let Some(value) = id_header {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let elapsed = started.elapsed();
    if let Some(metrics) = metrics {
        metrics.observe(method.as_str(), &route, status, elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        tracing::info!(status, route = %route, latency_us = elapsed.as_micros() as u64, "request completed")
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_kept_only_when_sane() {
        let ok = HeaderValue::from_static("abc-123");
        assert_eq!(accept_request_id(Some(&ok)).as_deref(), Some("abc-123"));
        let spaced = HeaderValue::from_static("a b");
        assert_eq!(accept_request_id(Some(&spaced)), None);
        let long = HeaderValue::from_str(&"x".repeat(200)).unwrap();
        assert_eq!(accept_request_id(Some(&long)), None);
    }
}
