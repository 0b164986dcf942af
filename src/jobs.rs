//! The job calls: each reads its JSON arguments into the engine's typed requests (in pg-boss's
//! order of checks) and calls `Boss`.

use napi_derive::napi;
use serde_json::Value;

use pg_boss_engine::boss::JobCommand;
use pg_boss_engine::error::Error;
use pg_boss_engine::model::fetch::FetchRequest;
use pg_boss_engine::model::find::FindJobsRequest;
use pg_boss_engine::model::insert::jobs_from_json_text;
use pg_boss_engine::model::job::JobData;
use pg_boss_engine::model::names::assert_queue_name;
use pg_boss_engine::model::send::SendOptions;
use pg_boss_engine::model::settle::output_from_json_text;
use pg_boss_engine::model::targets::{JobTargets, Stored};
use pg_boss_engine::model::update::UpdateRequest;

use crate::convert::{parse, parse_options, reason, run, to_js};
use crate::NativeBoss;

/// A queue name as the caller gave it (JSON), checked with pg-boss's rules.
fn queue_name(name_json: &str) -> napi::Result<String> {
    let name = parse(name_json)?;
    Ok(assert_queue_name(&name).map_err(to_js)?.to_string())
}

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
        // The payload crosses as the text JSON.stringify made, unread.
        let data = JobData::from_json_text(data_json);
        let options = SendOptions::from_json(&parse(&options_json)?).map_err(to_js)?;
        let (boss, caller) = (self.inner.clone(), self.caller(db)?);
        let id = run(async move {
            let caller = caller.as_ref().map(|c| c as _);
            boss.send(&name, data, options, caller).await
        })
        .await?;
        Ok(id.map(|id| id.to_string()))
    }

    /// `send()` calls made together on the instance's pool, as three lists of one item per send:
    /// the queue names, the payloads and the options (JSON text each; a payload is passed on
    /// unread). Resolves JSON text of an array with one answer per send, in order: its id, null
    /// when a policy or throttle refused it, or `{ "error": reason }`.
    #[napi]
    pub async fn send_each(
        &self,
        names: Vec<String>,
        data_json: Vec<String>,
        options_json: Vec<String>,
    ) -> napi::Result<String> {
        if names.len() != data_json.len() || names.len() != options_json.len() {
            return Err(to_js(Error::internal(
                "sendEach: the JS entry sends one name, payload and options per send",
            )));
        }
        let sends = names
            .into_iter()
            .zip(data_json)
            .zip(options_json)
            .map(|((name, data), options)| {
                let options = serde_json::from_str(&options)
                    .map_err(Error::from)
                    .and_then(|options| SendOptions::from_json(&options));
                (name, JobData::from_json_text(data), options)
            })
            .collect();
        let boss = self.inner.clone();
        let answers = run(async move { Ok(boss.send_each(sends).await) }).await?;
        let answers: Vec<Value> = answers
            .into_iter()
            .map(|answer| match answer {
                Ok(id) => id.map_or(Value::Null, |id| Value::String(id.to_string())),
                Err(err) => serde_json::json!({ "error": reason(&err) }),
            })
            .collect();
        Ok(Value::Array(answers).to_string())
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

    /// Resolves `{ subscribers, failures: [{ name, message }], sent: [[name, id]], missing: [name],
    /// queues: [name] }` as JSON text (`missing`: subscribed queues that are gone; `queues`: all of
    /// them).
    #[napi]
    pub async fn publish(
        &self,
        event: String,
        data_json: String,
        options_json: String,
        db: Option<u32>,
    ) -> napi::Result<String> {
        let data = JobData::from_json_text(data_json);
        // Checked by each send: options every send refuses fail each subscriber's send.
        let options = SendOptions::from_json(&parse(&options_json)?);
        let (boss, caller) = (self.inner.clone(), self.caller(db)?);
        let report = run(async move {
            let caller = caller.as_ref().map(|c| c as _);
            boss.publish(&event, data, options, caller).await
        })
        .await?;
        let failures: Vec<Value> = report
            .failures
            .iter()
            .map(|(name, err)| serde_json::json!({ "name": name, "message": err.message }))
            .collect();
        Ok(serde_json::json!({ "subscribers": report.subscribers, "failures": failures, "sent": report.sent, "missing": report.missing, "queues": report.queues }).to_string())
    }

    /// The queues subscribed to `event`, as `publish()` reads them.
    #[napi]
    pub async fn subscribers(&self, event: String) -> napi::Result<Vec<String>> {
        let boss = self.inner.clone();
        run(async move { boss.subscribers(&event).await }).await
    }

    #[napi]
    pub async fn insert(
        &self,
        name_json: String,
        jobs_json: String,
        return_id: bool,
        db: Option<u32>,
    ) -> napi::Result<Option<Vec<String>>> {
        let name = queue_name(&name_json)?;
        // index.js has refused anything but an array, with pg-boss's message. Each job's payload
        // stays the text it came in.
        let jobs = jobs_from_json_text(&jobs_json).map_err(to_js)?;
        let (boss, caller) = (self.inner.clone(), self.caller(db)?);
        let ids = run(async move {
            let caller = caller.as_ref().map(|c| c as _);
            boss.insert(&name, &jobs, return_id, caller).await
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
        let name = parse(&name_json)?;
        if matches!(name, Value::Null) || name.as_str() == Some("") {
            return Err(to_js(Error::invalid("missing queue name")));
        }
        let request = FetchRequest::from_options(&parse_options(&options_json)?).map_err(to_js)?;
        let name = assert_queue_name(&name).map_err(to_js)?.to_string();
        let (boss, caller) = (self.inner.clone(), self.caller(db)?);
        run(async move {
            let caller = caller.as_ref().map(|c| c as _);
            boss.fetch(&name, &request, caller).await
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
        let name = queue_name(&name_json)?;
        let targets = JobTargets::from_value(&parse(&ids_json)?, "complete").map_err(to_js)?;
        let output = output_from_json_text(data_json).map_err(to_js)?;
        let (boss, caller) = (self.inner.clone(), self.caller(db)?);
        let response = run(async move {
            let caller = caller.as_ref().map(|c| c as _);
            let output = output.as_deref();
            boss.complete(&name, &targets, output, include_queued, caller)
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
        let name = queue_name(&name_json)?;
        let targets = JobTargets::from_value(&parse(&ids_json)?, "fail").map_err(to_js)?;
        let output = output_from_json_text(data_json).map_err(to_js)?;
        let (boss, caller) = (self.inner.clone(), self.caller(db)?);
        let response = run(async move {
            let caller = caller.as_ref().map(|c| c as _);
            boss.fail(&name, &targets, output.as_deref(), caller).await
        })
        .await?;
        Ok(response.to_json().to_string())
    }

    #[napi]
    pub async fn get_job_by_id(
        &self,
        name_json: String,
        id: Option<String>,
        db: Option<u32>,
    ) -> napi::Result<Option<String>> {
        let name = queue_name(&name_json)?;
        let (boss, caller) = (self.inner.clone(), self.caller(db)?);
        run(async move {
            let caller = caller.as_ref().map(|c| c as _);
            boss.get_job_by_id(&name, id.as_deref(), caller).await
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
        let name = queue_name(&name_json)?;
        let request =
            FindJobsRequest::from_options(&parse_options(&options_json)?).map_err(to_js)?;
        let (boss, caller) = (self.inner.clone(), self.caller(db)?);
        run(async move {
            let caller = caller.as_ref().map(|c| c as _);
            boss.find_jobs(&name, &request, caller).await
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
        let request = UpdateRequest::from_json(&parse(&request_json)?, upsert).map_err(to_js)?;
        let (boss, caller) = (self.inner.clone(), self.caller(db)?);
        let response = run(async move {
            let caller = caller.as_ref().map(|c| c as _);
            boss.update(&request, upsert, caller).await
        })
        .await?;
        Ok(response.to_json().to_string())
    }

    #[napi]
    pub async fn get_blocked_keys(
        &self,
        name_json: String,
        limit: i64,
        after: Option<String>,
    ) -> napi::Result<Vec<String>> {
        let name = queue_name(&name_json)?;
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
        let name = queue_name(&name_json)?;
        let targets = command.targets(&parse(&ids_json)?).map_err(to_js)?;
        let (boss, caller) = (self.inner.clone(), self.caller(db)?);
        let response = run(async move {
            let caller = caller.as_ref().map(|c| c as _);
            boss.job_command(command, &name, &targets, caller).await
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
        let name = match parse(&name_json)? {
            Value::Null => None,
            name => Some(assert_queue_name(&name).map_err(to_js)?.to_string()),
        };
        let which = match which.as_str() {
            "queued" => Stored::Queued,
            "stored" => Stored::Finished,
            _ => Stored::All,
        };
        let boss = self.inner.clone();
        run(async move { boss.delete_stored_jobs(name.as_deref(), which).await }).await
    }
}
