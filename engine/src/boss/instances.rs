//! The instance registry: registering this instance, and `getInstances()`.

use crate::error::ensure;
use crate::error::Result;
use std::sync::Arc;

use super::workers::wip_of;
use super::Boss;
use crate::service;
use crate::service::heartbeat::InstanceHeartbeat;
use crate::service::registry::{Host, Registrant, WorkersFn};

impl Boss {
    /// Describes the process for the registry (the binding tells what Node knows of it).
    pub fn set_host(&self, host: Host) {
        *self.host.lock().unwrap() = host;
    }

    /// Registers the instance (unless `registerInstance` is off) and starts its heartbeat, in the
    /// group stopped after the workers, and last in it: a graceful stop reads as live until its
    /// workers are done.
    pub(super) async fn start_registry(&self, attempt: u32) {
        if !self.config.instance.register {
            return;
        }
        let workers = self.workers.clone();
        let wip: WorkersFn = Arc::new(move || wip_of(&workers, false));
        let host = self.host.lock().unwrap().clone();
        let mut registrant =
            Registrant::from_config(&self.config, self.instance_id, self.db(), host, wip);
        registrant.start_attempt = attempt;
        let heartbeat = InstanceHeartbeat::new(registrant, self.events.clone());
        heartbeat.register().await;
        let running = service::start_on(&self.timers, Arc::new(heartbeat), self.events.clone());
        self.late_services.lock().await.push(running);
    }

    /// `getInstances()`: the registry's rows as JSON text, `limit` per page after the id `after`.
    pub async fn get_instances(&self, limit: i64, after: Option<String>) -> Result<String> {
        if let Some(after) = &after {
            ensure!(
                crate::model::names::is_uuid_input(after),
                "getInstances: after must be a uuid"
            );
        }
        crate::ops::instances::get_instances(&self.started_db()?, limit, after.as_deref()).await
    }
}
