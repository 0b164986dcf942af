//! Flows (jobs that wait for others), and redriving dead letters.

use std::sync::Arc;

use crate::error::Result;
use crate::model::flow::{DependencyQuery, FlowJob};
use crate::model::redrive::RedriveRequest;
use crate::ops::flows::{DependencyRef, Resolved};
use crate::ops::redrive::RedrivePreview;
use crate::service::flow_resolver::FlowPasses;
use crate::sql::exec::CallerDb;

use super::{Boss, Lifecycle};

impl Boss {
    /// Arms flow resolution at `start()`. As in pg-boss, `supervise` only decides whether passes
    /// also run in the background: `resolveFlow()` works either way.
    pub(super) async fn start_flow_resolution(&self) {
        self.flow_resolver.arm();
        if self.config.supervise {
            self.start_service(FlowPasses {
                resolver: self.flow_resolver.clone(),
                db: self.db(),
            })
            .await;
        }
    }

    /// `flow(jobs)`: inserts a graph of jobs at once, each waiting for the ones it `dependsOn`
    /// (checked by [`check_flow`](crate::model::flow::check_flow)); answers each `(ref, job id)`,
    /// in input order. With `caller` (pg-boss's `db` option) the whole graph is written inside
    /// the caller's transaction.
    pub async fn flow(
        &self,
        jobs: &[FlowJob],
        caller: Option<Arc<dyn CallerDb>>,
    ) -> Result<Vec<(String, String)>> {
        let db = self.started_db()?.for_call(caller);
        crate::ops::flows::insert_flow(&db, &self.queues, jobs).await
    }

    /// `resolveFlow()`: one resolution pass now. After `stop()` it does nothing, as in pg-boss.
    pub async fn resolve_flow(&self) -> Result<Vec<Resolved>> {
        if *self.lifecycle.lock().unwrap() == Lifecycle::Stopped {
            return Ok(Vec::new());
        }
        self.flow_resolver.resolve_now(&self.started_db()?).await
    }

    /// `isResolvingFlow()`: whether a flow resolution pass is running right now.
    pub fn is_resolving_flow(&self) -> bool {
        self.flow_resolver.is_working()
    }

    /// `getDependencies()` and `getDependents()`: one page of a job's parents or children, as the
    /// query's direction says; read through `caller` when given.
    pub async fn dependencies(
        &self,
        query: &DependencyQuery,
        caller: Option<Arc<dyn CallerDb>>,
    ) -> Result<Vec<DependencyRef>> {
        let db = self.started_db()?.for_call(caller);
        crate::ops::flows::edges(&db, query).await
    }

    /// `redrive()` from a dead letter queue; answers how many jobs moved. With `caller`, inside
    /// the caller's transaction.
    pub async fn redrive(
        &self,
        request: &RedriveRequest,
        caller: Option<Arc<dyn CallerDb>>,
    ) -> Result<i64> {
        let db = self.started_db()?.for_call(caller);
        let queue = self.queue(&db, &request.name).await?;
        crate::ops::redrive::redrive(&db, &queue, request).await
    }

    /// `previewRedrive()` of a dead letter queue: what `redrive()` with the same request would
    /// move, and where.
    pub async fn preview_redrive(
        &self,
        request: &RedriveRequest,
        caller: Option<Arc<dyn CallerDb>>,
    ) -> Result<RedrivePreview> {
        let db = self.started_db()?.for_call(caller);
        let queue = self.queue(&db, &request.name).await?;
        crate::ops::redrive::preview(&db, &queue, request).await
    }
}
