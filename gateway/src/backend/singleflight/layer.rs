//! The [`tower::Layer`] that wraps a backend service in [`SingleFlight`](super::SingleFlight).

use super::SingleFlight;

/// Adds single-flight coalescing to a backend service.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleFlightLayer;

impl<S> tower::Layer<S> for SingleFlightLayer {
    type Service = SingleFlight<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SingleFlight::new(inner)
    }
}
