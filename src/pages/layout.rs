//! The shell every page shares: the document, the navigation (each page links to the others
//! and to its JSON twin), the one stylesheet and the one script (served from the daemon with
//! a name that changes with their content, so they can be cached for a year), and the
//! headers of an HTML answer, the Content-Security-Policy first: only this origin's
//! stylesheet and script, nothing inline, nothing from another host.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The stylesheet.
const CSS: &str = include_str!("headroom.css");
/// The script of the copy buttons.
const JS: &str = include_str!("headroom.js");

/// What a page may load: its own stylesheet and script, nothing else (no inline style or
/// script, no image, no frame, no connection), and forms that post only back here.
pub const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// `/static/headroom.<hash>.css`: the name changes when the content does.
pub static CSS_PATH: LazyLock<String> = LazyLock::new(|| static_path("css", CSS));
/// `/static/headroom.<hash>.js`.
pub static JS_PATH: LazyLock<String> = LazyLock::new(|| static_path("js", JS));

fn static_path(extension: &str, content: &str) -> String {
    let hash = crate::hash::fnv1a(content.as_bytes());
    format!("/static/headroom.{:012x}.{extension}", hash >> 16)
}

/// The pages of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Fleet,
    Shards,
    Sources,
    Incidents,
    /// A column's page: none of the above is current.
    Column,
}

/// A whole page: `title`, the navigation with `current` marked, a link to `twin` (the JSON
/// with the same numbers), and `body`.
pub fn page(title: &str, current: Nav, twin: &str, body: Markup) -> Markup {
    shell(title, current, twin, None, body)
}

/// A [`page`] that the browser loads again after `seconds` (a `<meta http-equiv="refresh">`,
/// which the policy allows: it loads this same page, not an asset), for one still waiting for
/// something being computed.
pub fn reloading(title: &str, current: Nav, twin: &str, seconds: u32, body: Markup) -> Markup {
    shell(title, current, twin, Some(seconds), body)
}

fn shell(title: &str, current: Nav, twin: &str, refresh: Option<u32>, body: Markup) -> Markup {
    let link = |nav: Nav, href: &str, text: &str| {
        html! {
            @if nav == current {
                a href=(href) aria-current="page" { (text) }
            } @else {
                a href=(href) { (text) }
            }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · headroom" }
                link rel="stylesheet" href=(*CSS_PATH);
                script src=(*JS_PATH) defer {}
            }
            body {
                header.top {
                    a.brand href="/" { "headroom" }
                    nav {
                        (link(Nav::Fleet, "/", "Fleet"))
                        (link(Nav::Shards, "/shards", "Shards"))
                        (link(Nav::Sources, "/sources", "Sources"))
                        (link(Nav::Incidents, "/incidents", "Incidents"))
                    }
                    a.twin href=(twin) { "JSON" }
                }
                main { (body) }
                footer { "headroom " (env!("CARGO_PKG_VERSION")) " · " a href="/metrics" { "metrics" } }
            }
        }
    }
}

/// An HTML answer with `status`: the security headers, and no caching (the numbers change
/// at every poll).
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page that says what went wrong, with `status` (a column not known, a bad filter).
pub fn problem(status: StatusCode, current: Nav, twin: &str, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = html! {
        h1 { (title) }
        p.problem { (message) }
        p { a href="/" { "Back to the fleet" } }
    };
    respond(status, page(title, current, twin, body))
}

/// `GET /static/{name}`: the stylesheet or the script under its current name, cached for a
/// year (a new content has a new name); any other name is not found.
pub async fn asset(Path(name): Path<String>) -> Response {
    let path = format!("/static/{name}");
    let (content_type, body) = if path == *CSS_PATH {
        ("text/css; charset=utf-8", CSS)
    } else if path == *JS_PATH {
        ("text/javascript; charset=utf-8", JS)
    } else {
        return crate::api::error(
            StatusCode::NOT_FOUND,
            format!(
                "no such file: the stylesheet is {} and the script {}",
                *CSS_PATH, *JS_PATH
            ),
        );
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
