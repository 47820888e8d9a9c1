//! Per-request state of the async-graphql path: the call memo, the batch loader, the client's
//! headers, and the field errors and nulls recorded while resolving.
//!
//! async-graphql's dynamic executor drops a failed field's key instead of propagating null as the
//! spec says; so resolvers never fail there. They record the error and where its null lands, return
//! a harmless placeholder, and [`RequestState::finish`] applies the nulls to the finished data.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use async_graphql::{ErrorExtensionValues, Name, Pos, ServerError, Value as GqlValue};

use crate::backend::CallMemo;
use crate::response::{FieldError, NullTarget, PathSegment};

/// Stored in each async-graphql request's data.
pub struct RequestState {
    memo: ArcSwap<CallMemo>,
    pub headers: http::HeaderMap,
    timeout: std::time::Duration,
    principal: Option<Arc<str>>,
    /// Who is asking (`@auth` checks).
    pub identity: Arc<crate::auth::identity::Identity>,
    recorded: Mutex<Recorded>,
}

#[derive(Default)]
struct Recorded {
    errors: Vec<FieldError>,
    nulls: Vec<NullTarget>,
    /// Objects whose selection is empty: `{}` by the spec.
    empty_objects: Vec<Vec<PathSegment>>,
}

impl RequestState {
    pub fn new(headers: http::HeaderMap, timeout: std::time::Duration, principal: Option<Arc<str>>) -> Self {
        Self {
            memo: ArcSwap::from_pointee(CallMemo::new(tokio::time::Instant::now() + timeout, principal.clone())),
            headers,
            timeout,
            principal,
            identity: crate::auth::identity::current(),
            recorded: Mutex::new(Recorded::default()),
        }
    }

    /// The calls made so far (and the deadline they share).
    pub fn memo(&self) -> Arc<CallMemo> {
        self.memo.load_full()
    }

    /// Starts afresh: no call remembered, a new deadline (each event of a subscription).
    pub fn renew(&self) {
        self.memo.store(Arc::new(CallMemo::new(
            tokio::time::Instant::now() + self.timeout,
            self.principal.clone(),
        )));
    }

    fn recorded(&self) -> std::sync::MutexGuard<'_, Recorded> {
        match self.recorded.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Records an error; `null_at` is where its null lands.
    pub fn error(&self, error: FieldError, null_at: NullTarget) {
        let mut r = self.recorded();
        r.errors.push(error);
        r.nulls.push(null_at);
    }

    /// Records an error whose field still has a value (a fallback): no null.
    pub fn note(&self, error: FieldError) {
        self.recorded().errors.push(error);
    }

    /// Records an object whose selection is empty (written `{}`, not async-graphql's null).
    pub fn empty_object(&self, at: Vec<PathSegment>) {
        self.recorded().empty_objects.push(at);
    }

    /// Records a null without an error (a null item in a list of nullable objects).
    pub fn null(&self, at: NullTarget) {
        self.recorded().nulls.push(at);
    }

    /// Applies the recorded nulls to the response and appends the recorded errors.
    pub fn finish(&self, resp: &mut async_graphql::Response) {
        let r = std::mem::take(&mut *self.recorded());
        for path in &r.empty_objects {
            set_at(&mut resp.data, path, GqlValue::Object(Default::default()));
        }
        for target in &r.nulls {
            match target {
                None => resp.data = GqlValue::Null,
                Some(path) => set_null(&mut resp.data, path),
            }
        }
        resp.errors.extend(r.errors.into_iter().map(to_server_error));
        super::capture::ensure_codes(resp);
        // Every root field skipped: the spec's `data` is `{}`; async-graphql writes null.
        if resp.data == GqlValue::Null && resp.errors.is_empty() {
            resp.data = GqlValue::Object(Default::default());
        }
    }
}

fn set_null(data: &mut GqlValue, path: &[PathSegment]) {
    set_at(data, path, GqlValue::Null);
}

fn set_at(data: &mut GqlValue, path: &[PathSegment], value: GqlValue) {
    let Some((last, parents)) = path.split_last() else {
        *data = value;
        return;
    };
    let mut cur = data;
    for seg in parents {
        cur = match (seg, cur) {
            (PathSegment::Key(k), GqlValue::Object(m)) => match m.get_mut(&**k) {
                Some(v) => v,
                None => return,
            },
            (PathSegment::Index(i), GqlValue::List(l)) => match l.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
            // Already nulled by another error: nothing below to change.
            _ => return,
        };
    }
    match (last, cur) {
        (PathSegment::Key(k), GqlValue::Object(m)) => {
            m.insert(Name::new(&**k), value);
        }
        (PathSegment::Index(i), GqlValue::List(l)) => {
            if let Some(v) = l.get_mut(*i) {
                *v = value;
            }
        }
        _ => {}
    }
}

pub fn to_server_error(e: FieldError) -> ServerError {
    let mut ext = ErrorExtensionValues::default();
    for (k, v) in e.extensions {
        ext.set(k, GqlValue::from_json(v).unwrap_or(GqlValue::Null));
    }
    ServerError {
        message: e.message,
        source: None,
        locations: vec![Pos {
            line: e.line,
            column: e.column,
        }],
        path: e
            .path
            .into_iter()
            .map(|s| match s {
                PathSegment::Key(k) => async_graphql::PathSegment::Field(k.to_string()),
                PathSegment::Index(i) => async_graphql::PathSegment::Index(i),
            })
            .collect(),
        extensions: Some(ext),
    }
}
