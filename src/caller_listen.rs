//! LISTEN/NOTIFY through the constructor's `db` when it can listen: the JS entry listens through
//! it and reports here.

use napi_derive::napi;

use crate::convert::run;
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    #[napi]
    pub fn set_caller_listens(&self, listens: bool) {
        self.inner.set_caller_listens(listens);
    }

    #[napi]
    pub async fn listen_channel(&self) -> napi::Result<String> {
        let boss = self.inner.clone();
        run(async move { boss.listen_channel().await }).await
    }

    #[napi]
    pub fn set_caller_listening(&self, up: bool) {
        self.inner.set_caller_listening(up);
    }

    #[napi]
    pub fn caller_notification(&self, payload: String) {
        self.inner.caller_notification(&payload);
    }

    #[napi]
    pub fn caller_listen_restored(&self) {
        self.inner.caller_listen_restored();
    }

    #[napi]
    pub async fn caller_listen_failed(&self, error: String) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move {
            boss.caller_listen_failed(&error).await;
            Ok(())
        })
        .await
    }
}
