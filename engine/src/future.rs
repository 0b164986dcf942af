//! The boxed future the engine's traits hand back (a handler's answer, a caller's statement,
//! a service's pass), so implementations need not name their future types.

/// A boxed, sendable future: used where sqlx's executor lifetimes would otherwise leak into
/// callers' `Send` bounds.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
