//! `localGroupConcurrency`: this instance's running jobs per group, per queue. Jobs over their
//! group's local limit are handed back to the queue before their handler starts, and groups with
//! no room left are not fetched from at all. (The limit across all instances, `groupConcurrency`,
//! is enforced by the claim statement itself.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::model::fetch::FetchedBatch;
use crate::model::group::GroupLimits;
use crate::ops::queues::Queue;
use crate::sql::Db;

/// The limits are per queue (the last `work()` that set them wins, as in pg-boss); the counts are
/// shared by every worker of the queue in this instance.
#[derive(Default)]
pub struct LocalGroups {
    inner: Mutex<LocalState>,
}

#[derive(Default)]
struct LocalState {
    limits: HashMap<String, GroupLimits>,
    active: HashMap<String, HashMap<String, i64>>,
}

impl LocalGroups {
    pub fn set_limits(&self, queue: &str, limits: GroupLimits) {
        self.inner
            .lock()
            .unwrap()
            .limits
            .insert(queue.to_string(), limits);
    }

    /// Groups of `queue` with no room left for a job of any tier: the next fetch skips them.
    pub fn at_capacity(&self, queue: &str) -> Vec<String> {
        let state = self.inner.lock().unwrap();
        let Some(limits) = state.limits.get(queue) else {
            return Vec::new();
        };
        let max = limits.max_limit();
        state
            .active
            .get(queue)
            .map(|groups| {
                groups
                    .iter()
                    .filter(|(_, n)| **n >= max)
                    .map(|(g, _)| g.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Takes a slot for each job whose group has room; returns which jobs may run (by index) and
    /// the grouped ones that took a slot.
    fn admit(
        &self,
        queue: &str,
        jobs: &[(Option<&str>, Option<&str>)],
    ) -> (Vec<usize>, Vec<String>) {
        let mut state = self.inner.lock().unwrap();
        let limits = state.limits.get(queue).cloned();
        let groups = state.active.entry(queue.to_string()).or_default();
        let mut allowed = Vec::new();
        let mut taken = Vec::new();
        for (i, (group, tier)) in jobs.iter().enumerate() {
            let Some(group) = group else {
                allowed.push(i);
                continue;
            };
            let limit = limits.as_ref().map_or(i64::MAX, |l| l.limit_for(*tier));
            let count = groups.entry(group.to_string()).or_insert(0);
            if *count < limit {
                *count += 1;
                allowed.push(i);
                taken.push(group.to_string());
            }
        }
        groups.retain(|_, n| *n > 0);
        if groups.is_empty() {
            state.active.remove(queue);
        }
        (allowed, taken)
    }

    fn release(&self, queue: &str, taken: &[String]) {
        let mut state = self.inner.lock().unwrap();
        let Some(groups) = state.active.get_mut(queue) else {
            return;
        };
        for group in taken {
            if let Some(n) = groups.get_mut(group) {
                *n -= 1;
            }
        }
        groups.retain(|_, n| *n > 0);
        if groups.is_empty() {
            state.active.remove(queue);
        }
    }
}

/// The group slots a batch holds; given back when dropped (the batch settled, or its worker ended).
pub struct LocalSlots {
    groups: Arc<LocalGroups>,
    queue: String,
    taken: Vec<String>,
}

impl Drop for LocalSlots {
    fn drop(&mut self) {
        self.groups.release(&self.queue, &self.taken);
    }
}

/// Applies `localGroupConcurrency` to a fetched batch: the jobs over their group's limit in this
/// instance are restored to the queue, and the rest are returned with the slots they hold.
pub async fn admit(
    db: &Db,
    queue: &Queue,
    local: &Arc<LocalGroups>,
    batch: FetchedBatch,
) -> Result<(FetchedBatch, LocalSlots)> {
    let groups: Vec<_> = batch
        .jobs
        .iter()
        .map(|j| (j.group_id.as_deref(), j.group_tier.as_deref()))
        .collect();
    let (allowed, taken) = local.admit(&queue.name, &groups);
    let slots = LocalSlots {
        groups: local.clone(),
        queue: queue.name.clone(),
        taken,
    };
    if allowed.len() == batch.jobs.len() {
        return Ok((batch, slots));
    }
    let mut keep = Vec::with_capacity(allowed.len());
    let mut excess = Vec::new();
    let mut next = allowed.iter().peekable();
    for (i, job) in batch.jobs.into_iter().enumerate() {
        if next.peek() == Some(&&i) {
            next.next();
            keep.push(job);
        } else {
            excess.push(job.id);
        }
    }
    crate::ops::fetch::restore(db, queue, excess).await?;
    Ok((FetchedBatch { jobs: keep }, slots))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_slots_follow_tiers_and_come_back() {
        let local = Arc::new(LocalGroups::default());
        let mut tiers = HashMap::new();
        tiers.insert("gold".to_string(), 2);
        local.set_limits("q", GroupLimits { default: 1, tiers });
        let (allowed, taken) = local.admit(
            "q",
            &[
                (Some("a"), None),
                (Some("a"), None),
                (Some("b"), Some("gold")),
                (Some("b"), Some("gold")),
                (None, None),
            ],
        );
        assert_eq!(allowed, vec![0, 2, 3, 4]);
        assert_eq!(local.at_capacity("q"), vec!["b".to_string()]);
        local.release("q", &taken);
        assert!(local.at_capacity("q").is_empty());
    }
}
