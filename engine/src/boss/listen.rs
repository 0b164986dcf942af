//! `useListenNotify` through the constructor's `db` when it can LISTEN (pg-boss's optional
//! `db.listen`, which PGlite's adapter has): the instance subscribes there, since it opens no
//! connection of its own on a caller's handle (see [`crate::service::caller_listener`]).

use std::sync::Arc;

use serde_json::json;

use crate::error::{Error, Result};
use crate::ops::warnings::{Warning, WarningSink};
use crate::service::caller_listener::{CallerListen, CallerListener};
use crate::service::listener::Wakeup;
use crate::sql::Db;

use super::{Boss, LISTEN_NOTIFY_UNAVAILABLE};

impl Boss {
    /// The constructor's `db` can LISTEN: `useListenNotify` subscribes through `handle`. Said
    /// once, before `start()`.
    pub fn set_caller_listen(&self, handle: Arc<dyn CallerListen>) -> Result<()> {
        self.caller_listen
            .set(handle)
            .map_err(|_| Error::internal("the db's listen() was already given"))
    }

    /// Subscribes through the caller's handle; when that fails the instance polls only, and says
    /// so with the warning a failed listener gives.
    pub(super) async fn start_caller_listener(
        &self,
        handle: Arc<dyn CallerListen>,
        db: &Db,
        wakeup: Arc<dyn Wakeup>,
    ) {
        let started = async {
            let channel = crate::service::listener::channel(db).await?;
            CallerListener::connect(handle, &channel, wakeup, self.listening.clone()).await
        };
        match started.await {
            Ok(listener) => self.start_service(listener).await,
            Err(err) => {
                let warning = Warning {
                    kind: LISTEN_NOTIFY_UNAVAILABLE,
                    message:
                        "Failed to start LISTEN/NOTIFY listener. Continuing with polling only."
                            .to_string(),
                    data: json!({ "type": LISTEN_NOTIFY_UNAVAILABLE, "instance": self.instance_id, "error": err.message }),
                };
                WarningSink::new(self.events.clone(), &self.config.observability)
                    .publish(db, &warning)
                    .await;
            }
        }
    }
}
