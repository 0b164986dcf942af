// A small order-processing service written against the pg-boss API.
// It is only type-checked (never run): once against the real pg-boss package
// (tsconfig.ref.json) and once against our index.d.ts (tsconfig.native.json).

import { PgBoss, states, policies, events } from 'pg-boss';
import { getConstructionPlans, getMigrationPlans, getRollbackPlans, getUninstallPlans } from 'pg-boss';
import type {
  ConstructorOptions,
  Job,
  JobWithMetadata,
  Queue,
  QueueResult,
  QueueStats,
  SendOptions,
  WorkOptions,
  WorkHandler,
  FetchOptions,
  JobInsert,
  Warning,
  WipData,
  Db,
} from 'pg-boss';

interface OrderPlaced {
  orderId: string;
  amountCents: number;
}

interface EmailRequest {
  to: string;
  template: 'receipt' | 'reminder';
}

const ORDERS = 'orders';
const EMAILS = 'emails';
const ORDERS_DLQ = 'orders-dead';

const options: ConstructorOptions = {
  host: 'localhost',
  port: 5432,
  database: 'shop',
  user: 'shop',
  password: async () => 'secret',
  ssl: false,
  max: 10,
  application_name: 'shop-worker',
  schema: 'jobs',
  connectionTimeoutMillis: 5000,
  supervise: true,
  schedule: true,
  migrate: true,
  createSchema: true,
};

const boss = new PgBoss(options);
const reporting = new PgBoss('postgres://reader:pw@localhost/shop');

boss.on('error', (err: Error) => console.error('boss error', err.message));
boss.on('warning', (w: Warning) => console.warn(w.message, w.data));
boss.on('wip', (data: WipData[]) => {
  for (const w of data) console.log(w.name, w.state, w.count);
});
boss.on('stopped', () => console.log('stopped'));

async function setupQueues(): Promise<void> {
  await boss.createQueue(ORDERS_DLQ);
  const orderQueue: Omit<Queue, 'name'> = {
    policy: policies.standard,
    retryLimit: 5,
    retryDelay: 10,
    retryBackoff: true,
    retryDelayMax: 600,
    expireInSeconds: 300,
    deadLetter: ORDERS_DLQ,
    warningQueueSize: 10_000,
  };
  await boss.createQueue(ORDERS, orderQueue);
  await boss.createQueue(EMAILS, { policy: 'singleton', deleteAfterSeconds: 3600 });

  const q: QueueResult | null = await boss.getQueue(ORDERS);
  if (q) console.log(q.name, q.queuedCount, q.activeCount, q.createdOn.toISOString());
}

async function produce(): Promise<void> {
  const sendOpts: SendOptions = { priority: 5, singletonKey: 'order-1', retryLimit: 3 };
  const id: string | null = await boss.send(ORDERS, { orderId: '1', amountCents: 999 }, sendOpts);
  await boss.send({ name: EMAILS, data: { to: 'a@b.c', template: 'receipt' } });
  await boss.send(EMAILS, { to: 'a@b.c', template: 'reminder' }, { startAfter: 60 });

  await boss.sendAfter(EMAILS, { to: 'x@y.z' }, null, new Date(Date.now() + 60_000));
  await boss.sendAfter(EMAILS, { to: 'x@y.z' }, { priority: 1 }, '2030-01-01T00:00:00Z');
  await boss.sendAfter(EMAILS, null, null, 30);
  await boss.sendThrottled(EMAILS, { to: 'x@y.z' }, null, 60);
  await boss.sendThrottled(EMAILS, { to: 'x@y.z' }, {}, 60, 'user-9');
  await boss.sendDebounced(ORDERS, { orderId: '2', amountCents: 1 }, null, 10, 'order-2');

  const batch: JobInsert<OrderPlaced>[] = [
    { data: { orderId: '3', amountCents: 10 }, priority: 2 },
    { data: { orderId: '4', amountCents: 20 }, startAfter: new Date(), singletonKey: '4' },
  ];
  const ids: string[] | null = await boss.insert(ORDERS, batch, { returnId: true });
  console.log(id, ids?.length);

  await boss.publish('order.placed', { orderId: '5' });
  await boss.publish('order.placed', { orderId: '6' }, { retryLimit: 1 });
}

async function consume(): Promise<string> {
  const fetchOpts: FetchOptions = { batchSize: 5, ignoreStartAfter: false };
  const plain: Job<OrderPlaced>[] = await boss.fetch<OrderPlaced>(ORDERS, fetchOpts);
  const detailed = await boss.fetch<OrderPlaced>(ORDERS, { includeMetadata: true, batchSize: 2 });
  const first: JobWithMetadata<OrderPlaced> | undefined = detailed[0];
  if (first) console.log(first.state, first.retryCount, first.createdOn, first.data.amountCents);
  for (const job of plain) {
    await boss.complete(ORDERS, job.id, { ok: true });
  }
  if (first) await boss.fail(ORDERS, { id: first.id, retryCount: first.retryCount }, { reason: 'x' });

  const handler: WorkHandler<EmailRequest> = async (jobs) => {
    for (const job of jobs) console.log(job.data.to, job.data.template);
  };
  await boss.work<EmailRequest>(EMAILS, handler);

  const workOpts: WorkOptions = { batchSize: 10, pollingIntervalSeconds: 1, localConcurrency: 2 };
  const workerId: string = await boss.work<OrderPlaced, { charged: number }>(
    ORDERS,
    workOpts,
    async (jobs: Job<OrderPlaced>[]) => {
      let charged = 0;
      for (const job of jobs) {
        if (job.signal.aborted) throw new Error(`job ${job.id} aborted`);
        job.signal.addEventListener('abort', () => console.log('expired', job.id));
        charged += job.data.amountCents;
      }
      return { charged };
    }
  );

  // Options inferred as a literal: includeMetadata: true selects the metadata handler.
  await boss.work(ORDERS, { includeMetadata: true }, async ([job]: JobWithMetadata<OrderPlaced>[]) => {
    console.log(job?.priority, job?.singletonKey, job?.data.orderId);
  });

  boss.notifyWorker(workerId);
  return workerId;
}

async function manage(workerId: string): Promise<void> {
  const ids = ['a', 'b'];
  await boss.cancel(ORDERS, ids);
  await boss.resume(ORDERS, ids);
  await boss.retry(ORDERS, 'a');
  await boss.touch(ORDERS, 'a');
  await boss.deleteJob(ORDERS, ids);

  const found = await boss.findJobs<OrderPlaced>(ORDERS, { key: 'order-1', queued: true });
  for (const job of found) console.log(job.id, job.state, job.data.orderId);
  const one = await boss.getJobById<OrderPlaced>(ORDERS, 'a');
  console.log(one?.output);

  await boss.schedule('nightly-report', '0 3 * * *', { kind: 'daily' }, { tz: 'Europe/Berlin' });
  await boss.unschedule('nightly-report');

  await boss.subscribe('order.placed', EMAILS);
  await boss.unsubscribe('order.placed', EMAILS);

  const stats: QueueStats[] = await reporting.getQueueStats(ORDERS);
  console.log(stats.map((s) => s.readyCount));

  await boss.offWork(ORDERS, { id: workerId, wait: true });
  await boss.offWork(EMAILS);
}

async function main(): Promise<void> {
  console.log(getConstructionPlans('jobs').length, getMigrationPlans('jobs', 26).length);
  console.log(getRollbackPlans('jobs', 27).length, getUninstallPlans('jobs').length);
  console.log(states.completed, events.error, Object.keys(policies));

  const started: PgBoss = await boss.start();
  await reporting.start({ attempts: 3 });
  const db: Db = started.getDb();
  await db.executeSql('select 1');

  await setupQueues();
  await produce();
  const workerId = await consume();
  await manage(workerId);

  await boss.stop({ graceful: true, timeout: 10_000 });
  await reporting.stop({ close: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
