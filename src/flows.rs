//! Flows and redrive.

use napi_derive::napi;
use pg_boss_engine::model::flow::{check_flow, DependencyQuery, Direction};
use pg_boss_engine::model::redrive::RedriveRequest;

use crate::convert::{parse, parse_options, run, to_js};
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    /// `redrive()` (resolves the count moved) or, with `preview`, `previewRedrive()` (resolves
    /// `{ total, destinations, unroutable }`), as JSON text.
    #[napi]
    pub async fn redrive(
        &self,
        name_json: String,
        options_json: String,
        preview: bool,
        db_token: Option<u32>,
    ) -> napi::Result<String> {
        let (name, options) = (parse(&name_json)?, parse_options(&options_json)?);
        let boss = self.inner.clone();
        let caller = self.shared_caller(db_token)?;
        if preview {
            let request = RedriveRequest::for_preview(&name, &options).map_err(to_js)?;
            let answer = run(async move { boss.preview_redrive(&request, caller).await }).await?;
            Ok(answer.to_json().to_string())
        } else {
            let request = RedriveRequest::for_redrive(&name, &options).map_err(to_js)?;
            let moved = run(async move { boss.redrive(&request, caller).await }).await?;
            Ok(moved.to_string())
        }
    }

    /// `flow()`: resolves `[[ref, id], ...]` as JSON text, in input order.
    #[napi]
    pub async fn flow(&self, jobs_json: String, db_token: Option<u32>) -> napi::Result<String> {
        let jobs = check_flow(&parse(&jobs_json)?).map_err(to_js)?;
        let boss = self.inner.clone();
        let caller = self.shared_caller(db_token)?;
        let ids = run(async move { boss.flow(&jobs, caller).await }).await?;
        Ok(serde_json::json!(ids).to_string())
    }

    #[napi]
    pub async fn resolve_flow(&self) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move { boss.resolve_flow().await.map(|_| ()) }).await
    }

    #[napi]
    pub fn is_resolving_flow(&self) -> bool {
        self.inner.is_resolving_flow()
    }

    /// `getDependencies()` (`parents`) or `getDependents()`: resolves `[[name, id], ...]` as JSON text.
    #[napi]
    pub async fn dependencies(
        &self,
        parents: bool,
        name_json: String,
        id_json: String,
        options_json: String,
        db_token: Option<u32>,
    ) -> napi::Result<String> {
        let (name, id, options) = (
            parse(&name_json)?,
            parse(&id_json)?,
            parse_options(&options_json)?,
        );
        let direction = if parents {
            Direction::Parents
        } else {
            Direction::Children
        };
        let query = DependencyQuery::from_json(direction, &name, &id, &options).map_err(to_js)?;
        let boss = self.inner.clone();
        let caller = self.shared_caller(db_token)?;
        let refs = run(async move { boss.dependencies(&query, caller).await }).await?;
        let pairs: Vec<(String, String)> = refs
            .into_iter()
            .map(|r| (r.name, r.id.to_string()))
            .collect();
        Ok(serde_json::json!(pairs).to_string())
    }
}
