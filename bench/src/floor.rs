//! The hand-written floor of the flat query: what a tiny axum service written for exactly
//! `{ customers(limit: 100) { id name district tier } }` costs. It takes the POST, reads its JSON
//! body, gets the backend's answer and writes the GraphQL response with serde. No GraphQL machinery
//! at all: the CPU per request below which a gateway cannot go on this query.
//!
//! It gets the backend's answer the way the gateway does in the pass it is compared with:
//! - `cached` (against `--cache schema`): from memory, refreshed once a second by one task;
//! - `coalesced` (against `--cache off`): a fresh fetch per request, shared by the requests that
//!   arrive while it is in flight (single-flight), as Mosaic's coalescing shares it.
//!
//! Run by the bench as its own process (`bench floor --upstream URL --listen ADDR --mode M`,
//! hidden), so its CPU time is measured like a gateway's.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures::future::{BoxFuture, FutureExt, Shared};
use serde::{Deserialize, Serialize};

/// How the floor gets the backend's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FloorMode {
    /// From memory, refreshed once a second.
    Cached,
    /// A fetch per request, shared by the requests arriving while it is in flight.
    Coalesced,
}

impl FloorMode {
    pub fn name(self) -> &'static str {
        match self {
            FloorMode::Cached => "cached",
            FloorMode::Coalesced => "coalesced",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct FloorArgs {
    /// The customers service's base URL.
    #[arg(long)]
    upstream: String,
    /// Where to listen.
    #[arg(long)]
    listen: SocketAddr,
    /// How the backend's answer is had.
    #[arg(long, value_enum, default_value_t = FloorMode::Cached)]
    mode: FloorMode,
}

/// A customer as the backend sends it.
#[derive(Deserialize)]
struct BackendCustomer {
    id: String,
    full_name: String,
    district: String,
    tier: String,
}

#[derive(Deserialize)]
struct BackendPage {
    items: Vec<BackendCustomer>,
}

/// A customer as the query selects it.
#[derive(Serialize)]
struct Customer {
    id: String,
    name: String,
    district: String,
    tier: String,
}

#[derive(Serialize)]
struct Data<'a> {
    customers: &'a [Customer],
}

#[derive(Serialize)]
struct GraphQLResponse<'a> {
    data: Data<'a>,
}

/// What a client sends.
#[derive(Deserialize)]
struct GraphQLRequest {
    query: String,
}

type Customers = Arc<Vec<Customer>>;
type Flight = Shared<BoxFuture<'static, Option<Customers>>>;

/// Where the answer comes from.
enum Source {
    Cached(Arc<RwLock<Customers>>),
    Coalesced {
        http: reqwest::Client,
        upstream: String,
        flight: Mutex<Option<Flight>>,
    },
}

impl Source {
    async fn answer(&self) -> Option<Customers> {
        match self {
            Source::Cached(answer) => answer.read().ok().map(|a| a.clone()),
            Source::Coalesced { http, upstream, flight } => {
                let joined = {
                    let mut current = flight.lock().ok()?;
                    match &*current {
                        Some(f) => f.clone(),
                        None => {
                            let (http, upstream) = (http.clone(), upstream.clone());
                            let f = async move { fetch(&http, &upstream).await.ok().map(Arc::new) }
                                .boxed()
                                .shared();
                            *current = Some(f.clone());
                            f
                        }
                    }
                };
                let answer = joined.clone().await;
                // The flight is over: the next request starts a new one.
                if let Ok(mut current) = flight.lock() {
                    if current.as_ref().is_some_and(|f| f.ptr_eq(&joined)) {
                        *current = None;
                    }
                }
                answer
            }
        }
    }
}

async fn fetch(http: &reqwest::Client, upstream: &str) -> Result<Vec<Customer>> {
    let page: BackendPage = http
        .get(format!("{upstream}/customers?limit=100"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(page
        .items
        .into_iter()
        .map(|c| Customer {
            id: c.id,
            name: c.full_name,
            district: c.district,
            tier: c.tier,
        })
        .collect())
}

async fn graphql(State(source): State<Arc<Source>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<GraphQLRequest>(&body) else {
        return (StatusCode::BAD_REQUEST, "not a GraphQL request").into_response();
    };
    if !request.query.contains("customers") {
        return (
            StatusCode::BAD_REQUEST,
            "this floor answers the flat customers query only",
        )
            .into_response();
    }
    let Some(customers) = source.answer().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let mut out = Vec::with_capacity(8 * 1024);
    if serde_json::to_writer(
        &mut out,
        &GraphQLResponse {
            data: Data { customers: &customers },
        },
    )
    .is_err()
    {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut resp = Response::new(axum::body::Body::from(out));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Serves until killed.
pub async fn serve(args: FloorArgs) -> Result<()> {
    let http = reqwest::Client::builder().no_proxy().build()?;
    let source = match args.mode {
        FloorMode::Cached => {
            let first = fetch(&http, &args.upstream)
                .await
                .context("the first fetch of the customers")?;
            let answer = Arc::new(RwLock::new(Arc::new(first)));
            let refresh = answer.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let (Ok(fresh), Ok(mut current)) = (fetch(&http, &args.upstream).await, refresh.write()) {
                        *current = Arc::new(fresh);
                    }
                }
            });
            Arc::new(Source::Cached(answer))
        }
        FloorMode::Coalesced => Arc::new(Source::Coalesced {
            http,
            upstream: args.upstream.clone(),
            flight: Mutex::new(None),
        }),
    };
    let app = Router::new().route("/graphql", post(graphql)).with_state(source);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
