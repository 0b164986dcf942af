//! The instance registry: registering this instance, and `getInstances()`.

use crate::ensure;
use crate::error::Result;
use std::sync::Arc;

use super::workers::wip_of;
use super::Boss;

impl Boss {
    /// Describes the process for the registry (the binding tells what Node knows of it).
    pub fn set_host(&self, host: crate::service::registry::Host) {
        *self.host.lock().unwrap() = host;
    }

    pub(super) async fn start_registry(&self, attempt: u32) {
        let workers = self.workers.clone();
        let wip: crate::service::registry::WorkersFn = Arc::new(move || wip_of(&workers, false));
        let host = self.host.lock().unwrap().clone();
        let mut registrant = crate::service::registry::Registrant::from_config(
            &self.config,
            self.instance_id,
            self.pool(),
            host,
            self.events.clone(),
            wip,
        );
        registrant.start_attempt = attempt;
        *self.registry.lock().unwrap() = crate::service::registry::start(registrant).await;
    }

    /// `getInstances()`: the registry's rows as JSON text, `limit` per page after the id `after`.
    pub async fn get_instances(&self, limit: i64, after: Option<String>) -> Result<String> {
        if let Some(after) = &after {
            ensure!(
                crate::model::names::is_uuid_input(after),
                "getInstances: after must be a uuid"
            );
        }
        crate::ops::instances::get_instances(
            &self.started_pool()?,
            self.schema(),
            limit,
            after.as_deref(),
        )
        .await
    }
}
