//! Which sites may talk to the server. A browser on some other site can reach a server on
//! 127.0.0.1 too: through DNS rebinding (a name of theirs that resolves to this machine:
//! the `Host` header gives it away) or by opening a WebSocket or posting a form to it (the
//! `Origin` header gives that away). Requests naming a host the server does not serve, and
//! browser requests from a page the server did not serve, are refused.

use super::AppState;
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;

/// The hosts the server answers as: its bound address (and `localhost` on loopback) and the
/// names configured in `server.allowed_hosts`.
#[derive(Debug, Clone)]
pub struct Hosts {
    /// `host:port` pairs matched exactly.
    exact: Vec<String>,
    /// Configured names without a port, matched on any port.
    names: Vec<String>,
    /// Whether requests without a token are served (the `Host` check matters most there).
    open: bool,
}

impl Hosts {
    /// The hosts of a server bound to `bound`, with the configured `allowed` names; `open`
    /// when requests without a token act as the local user.
    pub fn new(bound: SocketAddr, allowed: &[String], open: bool) -> Hosts {
        let port = bound.port();
        let mut exact = vec![bound.to_string()];
        if bound.ip().is_loopback() {
            exact.extend([
                format!("localhost:{port}"),
                format!("127.0.0.1:{port}"),
                format!("[::1]:{port}"),
            ]);
        }
        let mut names = Vec::new();
        for entry in allowed {
            let entry = entry.trim().to_ascii_lowercase();
            match split_port(&entry) {
                (_, Some(_)) => exact.push(entry),
                (name, None) => names.push(name.to_owned()),
            }
        }
        Hosts { exact, names, open }
    }

    fn serves(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.exact.contains(&host) || self.names.iter().any(|n| *n == split_port(&host).0)
    }
}

/// `name` and `port` of `host[:port]` (IPv6 in brackets).
fn split_port(host: &str) -> (&str, Option<&str>) {
    match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') && port.bytes().all(|b| b.is_ascii_digit()) => {
            (name, Some(port))
        }
        _ => (host, None),
    }
}

/// The `host[:port]` of an `Origin` such as `http://127.0.0.1:8080`.
fn origin_host(origin: &str) -> Option<&str> {
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))?;
    Some(rest.trim_end_matches('/'))
}

fn refused(message: String) -> Response {
    tracing::info!(message, "refused a request from another site");
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message).into_response()
}

/// Whether `headers` (of a request with `method`) come from a site the server serves.
pub fn check(hosts: &Hosts, method: &Method, headers: &HeaderMap) -> Result<(), String> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if hosts.open
        && let Some(host) = host
        && !hosts.serves(host)
    {
        return Err(format!(
            "this server does not answer for {host:?}: add the name to server.allowed_hosts \
             to serve it"
        ));
    }
    // Browsers name the page's site on WebSocket upgrades and on anything but reads.
    let upgrade = headers.contains_key(header::UPGRADE);
    let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if (upgrade || !reads)
        && let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())
    {
        let same_site = origin_host(origin).is_some_and(|o| {
            hosts.serves(o) || (!hosts.open && host.is_some_and(|h| h.eq_ignore_ascii_case(o)))
        });
        if !same_site {
            return Err(format!(
                "requests from pages on {origin} are not served: add its host to \
                 server.allowed_hosts to allow it"
            ));
        }
    }
    Ok(())
}

/// The middleware: refuses what [`check`] refuses before any handler sees it.
pub async fn same_site(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    match check(&shared.hosts, request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(message) => refused(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), value.parse().unwrap());
        }
        map
    }

    #[test]
    fn a_local_server_answers_only_for_its_own_address_and_pages() {
        let hosts = Hosts::new(
            "127.0.0.1:8080".parse().unwrap(),
            &["video.example.com".into()],
            true,
        );
        let get = Method::GET;
        for host in ["127.0.0.1:8080", "localhost:8080", "video.example.com:443"] {
            assert!(check(&hosts, &get, &headers(&[(header::HOST, host)])).is_ok());
        }
        for host in ["rebind.attacker.test:8080", "127.0.0.1:9999"] {
            assert!(check(&hosts, &get, &headers(&[(header::HOST, host)])).is_err());
        }
        let from = |origin: &str| {
            headers(&[
                (header::HOST, "127.0.0.1:8080"),
                (header::ORIGIN, origin),
                (header::UPGRADE, "websocket"),
            ])
        };
        assert!(check(&hosts, &get, &from("http://127.0.0.1:8080")).is_ok());
        assert!(check(&hosts, &get, &from("https://video.example.com")).is_ok());
        assert!(check(&hosts, &get, &from("https://attacker.test")).is_err());
        assert!(check(&hosts, &get, &from("null")).is_err());
        let post =
            |origin: &str| headers(&[(header::HOST, "127.0.0.1:8080"), (header::ORIGIN, origin)]);
        assert!(check(&hosts, &Method::POST, &post("https://attacker.test")).is_err());
        // A plain read from another page (an <img>) carries no Origin to judge.
        assert!(check(&hosts, &get, &post("https://attacker.test")).is_ok());
        // Clients that are not browsers send no Origin.
        assert!(
            check(
                &hosts,
                &Method::POST,
                &headers(&[(header::HOST, "localhost:8080")])
            )
            .is_ok()
        );
    }

    #[test]
    fn a_server_with_tokens_takes_any_host_but_only_its_own_pages() {
        let hosts = Hosts::new("0.0.0.0:8080".parse().unwrap(), &[], false);
        let own = headers(&[
            (header::HOST, "montage.internal:8080"),
            (header::ORIGIN, "http://montage.internal:8080"),
        ]);
        assert!(check(&hosts, &Method::POST, &own).is_ok());
        let other = headers(&[
            (header::HOST, "montage.internal:8080"),
            (header::ORIGIN, "http://attacker.test"),
        ]);
        assert!(check(&hosts, &Method::POST, &other).is_err());
    }
}
