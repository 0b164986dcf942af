//! Keeping a batch's jobs alive while their handler runs.

use std::time::Duration;

use uuid::Uuid;

use super::WorkerContext;
use crate::event::{ErrorEvent, Event};
use crate::model::targets::JobTargets;
use crate::ops::queues::Queue;

/// Touches the batch's jobs every `every` while its handler runs; never returns. A failed touch is
/// reported and the beat goes on. The touch is fenced to the fetched attempts, so a job it did not
/// refresh is no longer this worker's (expired, cancelled, settled elsewhere or by the handler): it
/// is reported as `claimLost`, for the binding to abort that job's signal, as pg-boss does, and is
/// not touched again.
pub(super) async fn keep_alive(
    ctx: &WorkerContext,
    queue: &Queue,
    targets: &JobTargets,
    every: Duration,
) -> std::convert::Infallible {
    let mut held = targets.clone();
    loop {
        ctx.clock.sleep(every).await;
        if held.ids.is_empty() {
            continue;
        }
        match crate::ops::commands::touch(&ctx.db, queue, &held).await {
            Err(err) => ctx.events.emit(Event::Error(
                ErrorEvent::of(&err).in_queue(&queue.name, None),
            )),
            Ok(touched) => {
                let kept: Vec<bool> = held
                    .ids
                    .iter()
                    .map(|id| touched.settled.contains(id))
                    .collect();
                if kept.iter().all(|k| *k) {
                    continue;
                }
                let lost: Vec<Uuid> = held
                    .ids
                    .iter()
                    .zip(&kept)
                    .filter(|(_, k)| !**k)
                    .map(|(id, _)| *id)
                    .collect();
                ctx.events.emit(Event::ClaimLost {
                    queue: queue.name.clone(),
                    ids: lost,
                });
                forget(&mut held, &kept);
            }
        }
    }
}

/// Drops the jobs not `kept` from `held`.
fn forget(held: &mut JobTargets, kept: &[bool]) {
    let mut keep = kept.iter();
    held.ids.retain(|_| *keep.next().unwrap_or(&false));
    if let Some(attempts) = held.attempts.as_mut() {
        let mut keep = kept.iter();
        attempts.retain(|_| *keep.next().unwrap_or(&false));
    }
}
