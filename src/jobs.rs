//! The job calls.

use napi_derive::napi;
use serde_json::Value;

use pg_boss_engine::boss::JobCommand;
use pg_boss_engine::error::Error;
use pg_boss_engine::ops::commands::Stored;

use crate::convert::{parse, parse_options, run, to_js};
use crate::NativeBoss;

#[napi]
impl NativeBoss {
    #[napi]
    pub async fn send(
        &self,
        name: String,
        data_json: String,
        options_json: String,
        db: Option<u32>,
    ) -> napi::Result<Option<String>> {
        let (data, options, caller) = (parse(&data_json)?, parse(&options_json)?, self.caller(db)?);
        let boss = self.inner.clone();
        let id = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .send(&name, data, Some(options))
                .await
        })
        .await?;
        Ok(id.map(|id| id.to_string()))
    }

    #[napi]
    pub async fn subscribe(&self, event: String, name: String) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move { boss.subscribe(&event, &name).await }).await
    }

    #[napi]
    pub async fn unsubscribe(&self, event: String, name: String) -> napi::Result<()> {
        let boss = self.inner.clone();
        run(async move { boss.unsubscribe(&event, &name).await }).await
    }

    /// Resolves `{ subscribers, failures: [{ name, message }], sent: [[name, id]] }` as JSON text.
    #[napi]
    pub async fn publish(
        &self,
        event: String,
        data_json: String,
        options_json: String,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (data, options, caller) = (parse(&data_json)?, parse(&options_json)?, self.caller(db)?);
        let boss = self.inner.clone();
        let report = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .publish(&event, data, Some(options))
                .await
        })
        .await?;
        let failures: Vec<Value> = report
            .failures
            .iter()
            .map(|(name, err)| serde_json::json!({ "name": name, "message": err.message }))
            .collect();
        Ok(serde_json::json!({ "subscribers": report.subscribers, "failures": failures, "sent": report.sent }).to_string())
    }

    #[napi]
    pub async fn insert(
        &self,
        name_json: String,
        jobs_json: String,
        return_id: bool,
        db: Option<u32>,
    ) -> napi::Result<Option<Vec<String>>> {
        let (name, caller) = (parse(&name_json)?, self.caller(db)?);
        let jobs = match parse(&jobs_json)? {
            Value::Array(jobs) => jobs,
            _ => return Err(to_js(Error::invalid("jobs argument should be an array"))),
        };
        let boss = self.inner.clone();
        let ids = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .insert(&name, &jobs, return_id)
                .await
        })
        .await?;
        Ok(ids.map(|ids| ids.iter().map(ToString::to_string).collect()))
    }

    #[napi]
    pub async fn fetch(
        &self,
        name_json: String,
        options_json: String,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (name, options, caller) = (
            parse(&name_json)?,
            parse_options(&options_json)?,
            self.caller(db)?,
        );
        let boss = self.inner.clone();
        run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .fetch(&name, &options)
                .await
        })
        .await
    }

    #[napi]
    pub async fn complete(
        &self,
        name_json: String,
        ids_json: String,
        data_json: String,
        include_queued: bool,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (name, ids, data, caller) = (
            parse(&name_json)?,
            parse(&ids_json)?,
            parse(&data_json)?,
            self.caller(db)?,
        );
        let boss = self.inner.clone();
        let response = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .complete(&name, &ids, &data, include_queued)
                .await
        })
        .await?;
        Ok(response.to_json().to_string())
    }

    #[napi]
    pub async fn fail(
        &self,
        name_json: String,
        ids_json: String,
        data_json: String,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (name, ids, data, caller) = (
            parse(&name_json)?,
            parse(&ids_json)?,
            parse(&data_json)?,
            self.caller(db)?,
        );
        let boss = self.inner.clone();
        let response = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .fail(&name, &ids, &data)
                .await
        })
        .await?;
        Ok(response.to_json().to_string())
    }

    #[napi]
    pub async fn get_job_by_id(
        &self,
        name_json: String,
        id: String,
        db: Option<u32>,
    ) -> napi::Result<Option<String>> {
        let (name, caller) = (parse(&name_json)?, self.caller(db)?);
        let boss = self.inner.clone();
        run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .get_job_by_id(&name, &id)
                .await
        })
        .await
    }

    #[napi]
    pub async fn find_jobs(
        &self,
        name_json: String,
        options_json: String,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (name, options, caller) = (
            parse(&name_json)?,
            parse_options(&options_json)?,
            self.caller(db)?,
        );
        let boss = self.inner.clone();
        run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .find_jobs(&name, &options)
                .await
        })
        .await
    }

    /// `update()`/`upsert()`: `request_json` is `{ name, data?, options? }`; resolves the response as JSON text.
    #[napi]
    pub async fn update(
        &self,
        request_json: String,
        upsert: bool,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let (request, caller) = (parse(&request_json)?, self.caller(db)?);
        let boss = self.inner.clone();
        Ok(run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .update(&request, upsert)
                .await
        })
        .await?
        .to_string())
    }

    #[napi]
    pub async fn get_blocked_keys(
        &self,
        name_json: String,
        limit: i64,
        after: Option<String>,
    ) -> napi::Result<Vec<String>> {
        let name = parse(&name_json)?;
        let boss = self.inner.clone();
        run(async move { boss.get_blocked_keys(&name, limit, after).await }).await
    }

    /// `method` is one of cancel, resume, retry, deleteJob, touch.
    #[napi]
    pub async fn job_command(
        &self,
        method: String,
        name_json: String,
        ids_json: String,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let command = JobCommand::from_method(&method)
            .ok_or_else(|| to_js(Error::internal(format!("unknown command {method}"))))?;
        let (name, ids, caller) = (parse(&name_json)?, parse(&ids_json)?, self.caller(db)?);
        let boss = self.inner.clone();
        let response = run(async move {
            boss.through(caller.as_ref().map(|c| c as _))
                .job_command(command, &name, &ids)
                .await
        })
        .await?;
        let mut value = response.to_json();
        if matches!(command, JobCommand::Resume | JobCommand::Retry) {
            // pg-boss reports no settled ids for these two.
            value.as_object_mut().map(|o| o.remove("settled"));
        }
        Ok(value.to_string())
    }

    /// `which` is queued, stored or all; resolves the count, or null after a truncate.
    #[napi]
    pub async fn delete_stored_jobs(
        &self,
        name_json: String,
        which: String,
    ) -> napi::Result<Option<i64>> {
        let name = parse(&name_json)?;
        let which = match which.as_str() {
            "queued" => Stored::Queued,
            "stored" => Stored::Finished,
            _ => Stored::All,
        };
        let boss = self.inner.clone();
        run(async move { boss.delete_stored_jobs(Some(&name), which).await }).await
    }
}
