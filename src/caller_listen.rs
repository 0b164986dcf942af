//! `useListenNotify` on the constructor's `db`, when it has pg-boss's optional
//! `listen(channel, onNotification, onReconnect)`: the engine asks the JS entry to subscribe and
//! hands it a [`ListenDelivery`] whose methods the `db`'s callbacks call.

use std::sync::Arc;

use napi::bindgen_prelude::{Function, Promise};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;

use pg_boss_engine::error::{Error, Result};
use pg_boss_engine::future::BoxFuture;
use pg_boss_engine::service::caller_listener::{CallerListen, Notifications};

use crate::convert::to_js;
use crate::NativeBoss;

/// What a `db`'s listener hears, handed to the engine: `notification(payload)` for each
/// notification, `subscribed()` after each (re)subscribe.
#[napi]
pub struct ListenDelivery {
    to: Arc<Notifications>,
}

#[napi]
impl ListenDelivery {
    #[napi]
    pub fn notification(&self, payload: String) {
        self.to.notification(&payload);
    }

    #[napi]
    pub fn subscribed(&self) {
        self.to.subscribed();
    }
}

/// `([channel, delivery]) => Promise<void>`: subscribes through the `db`. Weak, as the pool's
/// own listener never keeps Node alive either.
type ListenFn = ThreadsafeFunction<
    (String, ListenDelivery),
    Promise<()>,
    (String, ListenDelivery),
    Status,
    false,
    true,
>;

/// `() => Promise<void>`: ends that subscription.
type CloseFn = ThreadsafeFunction<(), Promise<()>, (), Status, false, true>;

struct JsCallerListen {
    listen: Arc<ListenFn>,
    close: Arc<CloseFn>,
}

impl CallerListen for JsCallerListen {
    fn listen(&self, channel: &str, to: Arc<Notifications>) -> BoxFuture<'static, Result<()>> {
        let (listen, channel) = (self.listen.clone(), channel.to_string());
        Box::pin(async move {
            // The warning names what the db said, as pg-boss's does.
            let failed = |reason: String| Error::internal(reason);
            let promise = listen
                .call_async_catch((channel, ListenDelivery { to }))
                .await
                .map_err(|e| failed(e.reason))?;
            promise.await.map_err(|e| failed(e.reason))
        })
    }

    fn close(&self) -> BoxFuture<'static, ()> {
        let close = self.close.clone();
        Box::pin(async move {
            if let Ok(promise) = close.call_async_catch(()).await {
                let _ = promise.await;
            }
        })
    }
}

#[napi]
impl NativeBoss {
    /// The constructor's `db` can LISTEN: `listen` subscribes through it, `close` ends that.
    #[napi]
    pub fn set_caller_listen(
        &self,
        listen: Function<(String, ListenDelivery), Promise<()>>,
        close: Function<(), Promise<()>>,
    ) -> napi::Result<()> {
        let listen: ListenFn = listen
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        let close: CloseFn = close
            .build_threadsafe_function()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        self.inner
            .set_caller_listen(Arc::new(JsCallerListen {
                listen: Arc::new(listen),
                close: Arc::new(close),
            }))
            .map_err(to_js)
    }
}
