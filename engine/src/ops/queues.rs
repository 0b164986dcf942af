//! Queues: create, read, update, delete, and the per-instance cache of what a queue's jobs need
//! (its table and policy).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::error::{Error, Result};
use crate::model::queue::{queue_not_found, CreateQueue, QueueInfo, UpdateQueue};
use crate::sql::exec::{Exec, Param, Tx};
use crate::sql::queues::{create_document, lock_tables, update_document};
use crate::sql::{Db, QueueStatement, StatementCache};

/// A queue as this instance caches it: its row, and the statements rendered for it so far.
#[derive(Debug)]
pub struct Queue {
    info: QueueInfo,
    pub statements: StatementCache<QueueStatement>,
}

impl Queue {
    pub fn new(info: QueueInfo) -> Queue {
        Queue {
            info,
            statements: StatementCache::default(),
        }
    }
}

impl std::ops::Deref for Queue {
    type Target = QueueInfo;

    fn deref(&self) -> &QueueInfo {
        &self.info
    }
}

/// The queues this instance has used, so sending, fetching and settling need not read the queue
/// row each time. Cleared every `queueCacheIntervalSeconds`, to follow changes other instances make.
pub struct QueueCache {
    entries: Mutex<HashMap<String, Arc<Queue>>>,
    /// The read of one queue row, rendered on first use: a cache serves one instance, so one schema.
    load: OnceLock<String>,
    /// Whether the backend has LISTEN/NOTIFY, so whether a queue's `notify` is honoured.
    notifies: bool,
}

impl Default for QueueCache {
    fn default() -> Self {
        QueueCache::new(true)
    }
}

impl QueueCache {
    /// An empty cache; without `notifies` the queues it holds never notify.
    pub fn new(notifies: bool) -> QueueCache {
        QueueCache {
            entries: Mutex::new(HashMap::new()),
            load: OnceLock::new(),
            notifies,
        }
    }

    /// The cached entry, if there is one, without going to the database.
    pub fn get(&self, name: &str) -> Option<Arc<Queue>> {
        self.entries.lock().unwrap().get(name).cloned()
    }
    fn put(&self, info: QueueInfo) -> Arc<Queue> {
        let queue = Arc::new(Queue::new(info));
        self.entries
            .lock()
            .unwrap()
            .insert(queue.name.clone(), queue.clone());
        queue
    }
    pub fn clear(&self) {
        self.entries.lock().unwrap().clear();
    }
    pub fn evict(&self, name: &str) {
        self.entries.lock().unwrap().remove(name);
    }

    /// Reads one queue's row, bypassing the entries.
    async fn load(&self, exec: Exec<'_>, schema: &str, name: &str) -> Result<Option<QueueInfo>> {
        let sql = self
            .load
            .get_or_init(|| crate::sql::queues::load(schema, self.notifies));
        let row: Option<(String, String, String, bool, bool, i64)> =
            exec.fetch_optional(sql, vec![Param::text(name)]).await?;
        Ok(row.map(
            |(name, table, policy, partition, notify, ready_count)| QueueInfo {
                name,
                table,
                policy,
                partition,
                notify,
                ready_count,
            },
        ))
    }

    /// Re-reads a queue after a change, so the cache follows what the database now says.
    async fn reload(&self, db: &Db, name: &str) -> Result<Option<Arc<Queue>>> {
        match self.load(db.exec(), db.schema(), name).await? {
            Some(info) => Ok(Some(self.put(info))),
            None => {
                self.evict(name);
                Ok(None)
            }
        }
    }
}

/// The cached queue, loaded on first use (the way `db` sends statements); a missing queue is an
/// error.
pub async fn cached_in(db: &Db, cache: &QueueCache, name: &str) -> Result<Arc<Queue>> {
    cached_via(db.exec(), db.schema(), cache, name).await
}

async fn cached_via(
    exec: Exec<'_>,
    schema: &str,
    cache: &QueueCache,
    name: &str,
) -> Result<Arc<Queue>> {
    if let Some(queue) = cache.get(name) {
        return Ok(queue);
    }
    // pg-boss reads a missing entry with getQueues([name]), which checks the name first.
    crate::model::names::assert_object_name(name, "Name")?;
    let info = cache
        .load(exec, schema, name)
        .await?
        .ok_or_else(|| queue_not_found(name))?;
    Ok(cache.put(info))
}

/// `createQueue()`: a queue that exists already keeps its options.
pub async fn create_queue(db: &Db, cache: &QueueCache, queue: &CreateQueue) -> Result<()> {
    if let Some(dead_letter) = queue.dead_letter() {
        cached_in(db, cache, dead_letter).await?;
    }
    let sql = &db.sql.queues;
    let tx = Tx::begin(&db.handle).await?;
    let exec = Exec::tx(&tx).with_mode(db.mode);
    if let Some(lock) = &sql.create_lock {
        exec.execute(lock, Vec::new()).await?;
    }
    let params = vec![
        Param::text(&queue.name),
        Param::text(create_document(queue)),
    ];
    exec.execute(&sql.create, params).await?;
    tx.commit().await?;
    cache.reload(db, &queue.name).await?;
    Ok(())
}

/// `updateQueue()`.
pub async fn update_queue(db: &Db, cache: &QueueCache, update: &UpdateQueue) -> Result<()> {
    let params = vec![
        Param::text(&update.name),
        Param::text(update_document(&update.options)),
    ];
    db.exec().execute(&db.sql.queues.update, params).await?;
    cache.reload(db, &update.name).await?;
    Ok(())
}

/// `deleteQueue()`: a queue that does not exist is no error; one that another queue, or jobs of
/// another queue, name as their dead letter queue is refused.
pub async fn delete_queue(db: &Db, cache: &QueueCache, name: &str) -> Result<()> {
    let Some(queue) = cache.reload(db, name).await? else {
        return Ok(());
    };
    if !queue.partition {
        refuse_if_dead_letter(db, name).await?;
    }
    let sql = &db.sql.queues;
    let tx = Tx::begin(&db.handle).await?;
    let exec = Exec::tx(&tx).with_mode(db.mode);
    if let Some(lock) = &sql.delete_lock {
        exec.execute(lock, Vec::new()).await?;
    }
    if queue.partition {
        let lock = queue.statements.get(QueueStatement::LockTables, || {
            lock_tables(db.schema(), &queue.table)
        });
        exec.execute(&lock, Vec::new()).await?;
    }
    exec.execute(&sql.delete, vec![Param::text(name)]).await?;
    if queue.partition {
        exec.execute(&sql.delete_migrations, vec![Param::text(&queue.table)])
            .await?;
    }
    tx.commit().await?;
    cache.evict(name);
    Ok(())
}

async fn refuse_if_dead_letter(db: &Db, name: &str) -> Result<()> {
    let referrer: Option<(String, String)> = db
        .exec()
        .fetch_optional(&db.sql.queues.dead_letter_referrer, vec![Param::text(name)])
        .await?;
    let Some((other, kind)) = referrer else {
        return Ok(());
    };
    Err(Error::internal(if kind == "queue" {
        format!("Queue {name} was not deleted: queue {other} uses it as its dead letter queue")
    } else {
        format!("Queue {name} was not deleted: jobs in queue {other} name it as their dead letter queue")
    }))
}

/// Queues as JSON text (an array of pg-boss queue objects), ordered by name.
pub async fn get_queues_json(
    db: &Db,
    names: Option<&[String]>,
    limit: i64,
    after: Option<&str>,
) -> Result<String> {
    let params = vec![
        Param::Texts(names.map(<[String]>::to_vec)),
        Param::Text(after.map(str::to_string)),
        Param::Int8(limit),
    ];
    let (text,): (String,) = db.exec().fetch_one(&db.sql.queues.list, params).await?;
    Ok(text)
}
