//! Static files the server embeds in the `zeroapp` binary.
//!
//! The Datastar browser client is third-party code (MIT, see `docs/third-party.md`) and is not
//! stored in this repository: `build.rs` gets it from the crates.io package `rama-http` 0.4.0 at
//! build time, checks its SHA-256 and writes it to `$OUT_DIR/datastar.js`, from which it is
//! embedded here.
//!
//! Its URL path carries the first 8 hex digits of its hash, so the file at that path never
//! changes: serve it with [`IMMUTABLE_CACHE_CONTROL`] and [`DATASTAR_JS_ETAG`].

/// Datastar 1.0.2's browser client (JavaScript module), as published in `rama-http` 0.4.0.
pub const DATASTAR_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/datastar.js"));

/// SHA-256 of [`DATASTAR_JS`], 64 lowercase hex digits (checked by `build.rs`).
pub const DATASTAR_JS_SHA256: &str = env!("DATASTAR_JS_SHA256");

/// The URL path to serve [`DATASTAR_JS`] at: `/assets/datastar-<first 8 hex of its sha256>.js`.
pub const DATASTAR_JS_PATH: &str =
    concat!("/assets/datastar-", env!("DATASTAR_JS_SHA256_8"), ".js");

/// A strong `ETag` header value for [`DATASTAR_JS`]: its SHA-256 in double quotes.
pub const DATASTAR_JS_ETAG: &str = concat!("\"", env!("DATASTAR_JS_SHA256"), "\"");

/// The `Content-Type` header value for [`DATASTAR_JS`].
pub const JAVASCRIPT_CONTENT_TYPE: &str = "text/javascript; charset=utf-8";

/// The `Cache-Control` header value for files whose path carries their content hash: cached for
/// a year and never revalidated.
pub const IMMUTABLE_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// The storefront's icon: an SVG (a box with a check mark in the accent colour), which every
/// current browser shows as a tab icon; served at `/favicon.svg` (linked from every page) and at
/// `/favicon.ico`, where browsers look without a link.
pub const FAVICON_SVG: &[u8] = br##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect x="2" y="2" width="28" height="28" rx="7" fill="#4f46e5"/><path d="M9 16.5l4.5 4.5L23 11.5" fill="none" stroke="#fff" stroke-width="3.2" stroke-linecap="round" stroke-linejoin="round"/></svg>"##;

/// Where pages link the icon.
pub const FAVICON_PATH: &str = "/favicon.svg";

/// The icon, cached for a day.
pub fn favicon() -> zeroapp_engine::http::Response {
    use hyper::StatusCode;
    use hyper::header::{CACHE_CONTROL, HeaderValue};

    let mut response = zeroapp_engine::http::bytes(StatusCode::OK, "image/svg+xml", FAVICON_SVG);
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

/// Serves an embedded file by path: Datastar's client, with long caching and its ETag (304 when
/// the browser has it). `None` for any other path — no file system is read, so no path can
/// escape.
pub fn serve(path: &str, if_none_match: Option<&str>) -> Option<zeroapp_engine::http::Response> {
    use hyper::StatusCode;
    use hyper::header::{CACHE_CONTROL, ETAG, HeaderValue};

    if path != DATASTAR_JS_PATH {
        return None;
    }
    let mut response = if if_none_match == Some(DATASTAR_JS_ETAG) {
        zeroapp_engine::http::empty(StatusCode::NOT_MODIFIED)
    } else {
        zeroapp_engine::http::bytes(StatusCode::OK, JAVASCRIPT_CONTENT_TYPE, DATASTAR_JS)
    };
    let headers = response.headers_mut();
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(IMMUTABLE_CACHE_CONTROL),
    );
    headers.insert(ETAG, HeaderValue::from_static(DATASTAR_JS_ETAG));
    Some(response)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    const EXPECTED_SHA256: &str =
        "2837d87acf6ee0ba8e4e63765926c25a98d63883b02f88be194a86b81d3fd24a";

    #[test]
    fn embedded_datastar_is_the_pinned_file() {
        assert_eq!(DATASTAR_JS.len(), 34_083);
        let hash: String = Sha256::digest(DATASTAR_JS)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(hash, EXPECTED_SHA256);
        assert_eq!(DATASTAR_JS_SHA256, EXPECTED_SHA256);
    }

    #[test]
    fn datastar_is_served_under_a_content_hashed_name() {
        assert_eq!(DATASTAR_JS_PATH, "/assets/datastar-2837d87a.js");
        assert_eq!(DATASTAR_JS_ETAG, format!("\"{EXPECTED_SHA256}\""));
        assert!(JAVASCRIPT_CONTENT_TYPE.starts_with("text/javascript"));
        assert!(IMMUTABLE_CACHE_CONTROL.contains("immutable"));
    }
}
