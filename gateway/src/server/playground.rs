//! The GraphiQL playground at `/`, with every asset embedded in the binary (no CDN, works offline).
//!
//! Assets are stored gzipped; clients that accept gzip (every browser) get them as they are, the
//! rare other client gets them inflated.

use std::io::Read;

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    gzipped: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "graphiql.min.js",
        content_type: "text/javascript; charset=utf-8",
        gzipped: include_bytes!("../../assets/playground/graphiql.min.js.gz"),
    },
    Asset {
        name: "graphiql.min.css",
        content_type: "text/css; charset=utf-8",
        gzipped: include_bytes!("../../assets/playground/graphiql.min.css.gz"),
    },
    Asset {
        name: "react.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        gzipped: include_bytes!("../../assets/playground/react.production.min.js.gz"),
    },
    Asset {
        name: "react-dom.production.min.js",
        content_type: "text/javascript; charset=utf-8",
        gzipped: include_bytes!("../../assets/playground/react-dom.production.min.js.gz"),
    },
];

/// The playground page for a GraphQL endpoint at `endpoint`.
pub fn page(endpoint: &str, default_query: &str) -> Html<String> {
    let endpoint = serde_json::to_string(endpoint).unwrap_or_else(|_| "\"/graphql\"".into());
    let query = serde_json::to_string(default_query).unwrap_or_else(|_| "\"\"".into());
    Html(format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mosaic playground</title>
<link rel="stylesheet" href="/playground/graphiql.min.css">
<style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
<div id="graphiql">Loading the playground…</div>
<script src="/playground/react.production.min.js"></script>
<script src="/playground/react-dom.production.min.js"></script>
<script src="/playground/graphiql.min.js"></script>
<script>
  const fetcher = GraphiQL.createFetcher({{ url: new URL({endpoint}, window.location.href).toString() }});
  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {{ fetcher, defaultQuery: {query}, defaultEditorToolsVisibility: true }}));
</script>
</body>
</html>"#
    ))
}

/// `GET /playground/:name`: one embedded asset.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"));
    let cache = (header::CACHE_CONTROL, "public, max-age=86400");
    if accepts_gzip {
        return (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CONTENT_ENCODING, "gzip"),
                cache,
            ],
            asset.gzipped,
        )
            .into_response();
    }
    let mut plain = Vec::new();
    match flate2::read::GzDecoder::new(asset.gzipped).read_to_end(&mut plain) {
        Ok(_) => ([(header::CONTENT_TYPE, asset.content_type), cache], plain).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
