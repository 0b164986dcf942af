// Type declarations for pg-boss-native.
//
// The public surface mirrors pg-boss 12.38 so that TypeScript code written for
// pg-boss compiles against this package without edits. The engine behind it is
// Rust; see docs/COMPATIBILITY.md for which parts are implemented so far.

import { EventEmitter } from 'events';

// ---------------------------------------------------------------------------
// Literal maps and constants
// ---------------------------------------------------------------------------

/** Job state names, keyed by themselves. */
export type JobStates = {
  created: 'created';
  retry: 'retry';
  active: 'active';
  completed: 'completed';
  cancelled: 'cancelled';
  failed: 'failed';
};

/** Event names the PgBoss emitter uses, keyed by themselves. */
export type Events = {
  error: 'error';
  warning: 'warning';
  wip: 'wip';
  stopped: 'stopped';
  bam: 'bam';
  flow: 'flow';
};

export declare const states: Readonly<JobStates>;

export declare const policies: Readonly<{
  standard: 'standard';
  short: 'short';
  singleton: 'singleton';
  stately: 'stately';
  exclusive: 'exclusive';
  key_strict_fifo: 'key_strict_fifo';
}>;

export declare const scheduleKinds: Readonly<{
  readonly cron: 'cron';
  readonly rrule: 'rrule';
}>;

export declare const scheduleMissedPolicies: Readonly<{
  readonly skip: 'skip';
  readonly once: 'once';
}>;

export declare const events: Events;

/** Upper bound for `previewSchedule({ count })`. */
export declare const previewScheduleMaxCount = 1000;

/** Name of the session setting that routes the schema clock to a test clock. */
export declare const CLOCK_OVERRIDE_SETTING = 'pgboss.test_clock';

// ---------------------------------------------------------------------------
// Database access
// ---------------------------------------------------------------------------

/**
 * Anything that can run SQL for pg-boss: the built-in pool, an ORM
 * transaction wrapped by one of the `from*` adapters, or your own object.
 * Only `executeSql` is required; the rest are optional capabilities.
 */
export interface Db {
  executeSql(text: string, values?: unknown[]): Promise<{ rows: any[] }>;
  /** LISTEN on a dedicated session; call `onReconnect` after every (re)subscribe. */
  listen?(
    channel: string,
    onNotification: (payload: string) => void,
    onReconnect: () => void
  ): Promise<ListenHandle>;
  /** Open a transaction that can be settled later (used by transactional workers). */
  beginTransaction?(): Promise<TransactionHandle>;
  /** Statements every session running pg-boss SQL must have executed first. */
  setSessionStatements?(statements: string[]): Promise<void>;
  /** Current pool usage, reported in the instance registry. */
  poolCounts?(): PoolCounts | null;
}

export interface PoolCounts {
  max: number;
  total: number;
  idle: number;
  waiting: number;
}

interface ListenHandle {
  close(): Promise<void>;
}

interface TransactionHandle {
  /** Pass as the `db` option to run a call inside this transaction. */
  db: Db;
  commit(): Promise<void>;
  /** Never rejects; safe to repeat. */
  rollback(): Promise<void>;
}

/** Extra arguments accepted by calls that can join a caller's transaction. */
export interface ConnectionOptions {
  db?: Db;
}

// ---------------------------------------------------------------------------
// Constructor options
// ---------------------------------------------------------------------------

export interface DatabaseOptions {
  host?: string;
  port?: number;
  database?: string;
  user?: string;
  /** A string, or a (possibly async) function returning one, e.g. for IAM tokens. */
  password?: string | (() => string | Promise<string>);
  connectionString?: string;
  ssl?: any;
  /** Server options sent at connect time, e.g. `-c statement_timeout=5000`. */
  options?: string;
  application_name?: string;
  /** Postgres schema holding pg-boss objects (default `pgboss`). */
  schema?: string;
  /** Pool size. */
  max?: number;
  connectionTimeoutMillis?: number;
  /** Bring your own database connection instead of the built-in pool. */
  db?: Db;
  notifyHeartbeatIntervalMs?: number;
  notifyHeartbeatTimeoutMs?: number;
  notifyKeepAliveInitialDelayMs?: number;
}

export interface SchedulingOptions {
  /** Run the cron/rrule scheduler on this instance. */
  schedule?: boolean;
  clockMonitorIntervalSeconds?: number;
  cronWorkerIntervalSeconds?: number;
  cronMonitorIntervalSeconds?: number;
}

/** Which database engine is on the other end of the connection. */
export type BackendProfile = 'postgres' | 'cockroachdb' | 'yugabytedb' | 'citus' | 'pglite';

export interface BackendOptions {
  backend?: BackendProfile;
}

export interface MaintenanceOptions {
  /** Run maintenance and monitoring on this instance. */
  supervise?: boolean;
  /** Apply schema migrations on start. */
  migrate?: boolean;
  /** Issue CREATE SCHEMA on install. */
  createSchema?: boolean;
  allowSchemaCaseVariant?: boolean;
  warningSlowQuerySeconds?: number;
  warningQueueSize?: number;
  superviseIntervalSeconds?: number;
  maintenanceIntervalSeconds?: number;
  queueCacheIntervalSeconds?: number;
  monitorIntervalSeconds?: number;
  persistWarnings?: boolean;
  warningRetentionDays?: number;
  persistQueueStats?: boolean;
  queueStatRetentionDays?: number;
  bamIntervalSeconds?: number;
  flowIntervalSeconds?: number;
  /** `false` disables automatic index rebuilds; an object tunes the thresholds. */
  reindex?: boolean | ReindexOptions;
  reindexIntervalSeconds?: number;
  monitorVacuum?: boolean;
}

export interface InstanceOptions {
  registerInstance?: boolean;
  instanceName?: string;
  instanceHeartbeatSeconds?: number;
}

// Minimal structural shapes of the OpenTelemetry API objects, so that this
// file does not depend on @opentelemetry/api. Real OTel objects satisfy them.
interface OtelPropagatorLike {
  inject(context: any, carrier: any, setter: any): void;
  extract(context: any, carrier: any, getter: any): any;
  fields(): string[];
}
interface OtelTracerProviderLike {
  getTracer(name: string, version?: string, options?: any): any;
}
interface OtelMeterProviderLike {
  getMeter(name: string, version?: string, options?: any): any;
}

export interface OpenTelemetryOptions {
  enabled?: boolean;
  /** Store the sender's trace context on each job. */
  propagateContext?: boolean;
  propagator?: OtelPropagatorLike;
  tracerProvider?: OtelTracerProviderLike;
  meterProvider?: OtelMeterProviderLike;
}

export interface ConstructorOptions
  extends DatabaseOptions,
    SchedulingOptions,
    MaintenanceOptions,
    BackendOptions,
    InstanceOptions {
  clock?: Clock;
  /** Hold a LISTEN connection so `notify` queues wake workers immediately. */
  useListenNotify?: boolean;
  /**
   * pg-boss-native's own option, not pg-boss's. `true`: named prepared statements. `false`: every
   * statement sent whole over the simple query protocol, as a pooler in transaction mode
   * (PgBouncer's `pool_mode = transaction`) needs. Left out, `start()` chooses: prepared unless
   * the server reports another port than the one dialed (a pooler in between).
   */
  preparedStatements?: boolean;
  openTelemetry?: OpenTelemetryOptions;
  /** Turn on job spies (`getSpy`). Test use only. */
  __test__enableSpies?: boolean;
}

interface StartOptions {
  /** Connection attempts before giving up, with exponential backoff. */
  attempts?: number;
}

export interface StopOptions {
  /** Close the pool when done (only if pg-boss owns it). */
  close?: boolean;
  /** Wait for active handlers before resolving. */
  graceful?: boolean;
  /** Milliseconds to wait for a graceful stop. */
  timeout?: number;
}

// ---------------------------------------------------------------------------
// Maintenance: index bloat, supervision, plans
// ---------------------------------------------------------------------------

export interface IndexBloatOptions {
  minPages?: number;
  maxEntriesPerPage?: number;
  minSizeRatio?: number;
}

export interface ReindexOptions extends IndexBloatOptions {
  /** Rebuild every job index now, bloated or not. */
  force?: boolean;
  maxIndexBytes?: number;
}

export interface SuperviseOptions {
  reindex?: boolean | ReindexOptions;
}

export interface IndexBloat {
  name: string;
  table: string;
  pages: number;
  entries: number;
  bytes: number;
  owned: boolean;
}

interface PlanOptions {
  backend?: BackendProfile;
}

interface ConstructionPlanOptions extends PlanOptions {
  createSchema?: boolean;
}

interface MigrationPlanOptions extends PlanOptions {
  partitionTables?: MigrationPartition[];
}

export interface MigrationPartition {
  tableName: string;
  policy: QueuePolicy;
}

export interface AsyncMigrationCommand {
  name: string;
  command: string;
  partitionPolicy?: QueuePolicy;
  table?: string;
}

// ---------------------------------------------------------------------------
// Queues
// ---------------------------------------------------------------------------

/** Open-ended: the known policies autocomplete, other strings are accepted. */
export type QueuePolicy =
  | 'standard'
  | 'short'
  | 'singleton'
  | 'stately'
  | 'exclusive'
  | 'key_strict_fifo'
  | (string & {});

/** Retry, expiry and retention settings; jobs inherit them from their queue. */
export interface QueueOptions {
  expireInSeconds?: number;
  retentionSeconds?: number;
  deleteAfterSeconds?: number;
  retryLimit?: number;
  retryDelay?: number;
  retryBackoff?: boolean;
  retryDelayMax?: number;
  heartbeatSeconds?: number;
}

export interface Queue extends QueueOptions {
  name: string;
  policy?: QueuePolicy;
  /** Give the queue its own partition table. */
  partition?: boolean;
  deadLetter?: string;
  warningQueueSize?: number;
  heartbeatSeconds?: number;
  /** NOTIFY listeners when a job is created (needs `useListenNotify`). */
  notify?: boolean;
}

export type UpdateQueueOptions = Omit<
  Queue,
  'name' | 'partition' | 'policy' | 'deadLetter' | 'retryDelayMax' | 'heartbeatSeconds'
> & {
  /** `null` removes the dead letter queue. */
  deadLetter?: string | null;
  /** `null` removes the cap. */
  retryDelayMax?: number | null;
  /** `null` turns heartbeats off. */
  heartbeatSeconds?: number | null;
};

export interface QueueResult extends Queue {
  deferredCount: number;
  blockedCount: number;
  queuedCount: number;
  readyCount: number;
  activeCount: number;
  failedCount: number;
  totalCount: number;
  completedDelta: number;
  failedDelta: number;
  createdDelta: number;
  deltaSeconds: number | null;
  deltaOn: Date | null;
  waitBins: number[] | null;
  runBins: number[] | null;
  readyOldestSeconds: number | null;
  table: string;
  createdOn: Date;
  updatedOn: Date;
  /** @deprecated Informational only. */
  singletonsActive: string[] | null;
}

export interface QueueStats {
  name: string;
  deferredCount: number;
  queuedCount: number;
  readyCount: number;
  activeCount: number;
  failedCount: number;
  totalCount: number;
  completedDelta: number | null;
  failedDelta: number | null;
  createdDelta: number | null;
  deltaSeconds: number | null;
  deltaOn: Date | null;
  /** 48 log-spaced histogram bins of wait time. */
  waitBins: number[] | null;
  /** Same bins, run time. */
  runBins: number[] | null;
  readyOldestSeconds: number | null;
  percentiles?: QueueStatsPercentile[];
  capturedOn: Date;
}

export interface QueueStatsPercentile {
  p: number;
  waitSeconds: number | null;
  runSeconds: number | null;
}

export interface QueueStatsOptions {
  from?: Date;
  to?: Date;
  limit?: number;
  bucketSeconds?: number;
  maxDataPoints?: number;
  aggregate?: 'max' | 'min' | 'avg';
  percentiles?: number[];
  /** Bypass the cached counts. */
  force?: boolean;
}

/** Paging for list calls: `after` is the last row (or its key) of the previous page. */
export interface ListOptions<After = string> {
  limit?: number;
  after?: After;
}

// ---------------------------------------------------------------------------
// Creating jobs
// ---------------------------------------------------------------------------

export interface GroupOptions {
  id: string;
  tier?: string;
}

export interface GroupConcurrencyConfig {
  default: number;
  tiers?: Record<string, number>;
}

export interface JobOptions {
  id?: string;
  priority?: number;
  /** Seconds from now, an ISO string, or a Date. */
  startAfter?: number | string | Date;
  singletonKey?: string;
  singletonSeconds?: number;
  singletonNextSlot?: boolean;
  group?: GroupOptions;
  deadLetter?: string;
}

export type SendOptions = JobOptions & QueueOptions & ConnectionOptions;

/** Object form of `send()`. */
export interface Request {
  name: string;
  data?: object;
  options?: SendOptions;
}

export interface JobInsert<T = object> {
  id?: string;
  data?: T;
  priority?: number;
  retryLimit?: number;
  retryDelay?: number;
  retryBackoff?: boolean;
  retryDelayMax?: number;
  startAfter?: number | string | Date;
  singletonKey?: string;
  singletonSeconds?: number;
  expireInSeconds?: number;
  deleteAfterSeconds?: number;
  retentionSeconds?: number;
  heartbeatSeconds?: number;
  group?: GroupOptions;
  deadLetter?: string;
}

export type InsertOptions = ConnectionOptions & {
  /** Resolve with the new ids rather than `null`. */
  returnId?: boolean;
};

/** How `update()`/`upsert()` pick among several jobs sharing a singletonKey. */
export type JobMatchStrategy = 'newest' | 'oldest' | 'all';

export type UpdateOptions = Pick<
  JobOptions,
  'id' | 'priority' | 'startAfter' | 'singletonKey' | 'group' | 'deadLetter'
> &
  QueueOptions &
  ConnectionOptions & {
    match?: JobMatchStrategy;
  };

export interface UpdateRequest {
  name: string;
  data?: object | null;
  options?: UpdateOptions;
}

export interface UpdateResponse {
  jobs: string[];
  updated: number;
}

export interface UpsertResponse extends UpdateResponse {
  inserted: number;
}

/** One node of a `flow()` graph; `dependsOn` lists other nodes' `ref`s. */
export interface FlowJob {
  ref: string;
  name: string;
  data?: object;
  options?: Omit<JobInsert, 'data'>;
  dependsOn?: string[];
}

export interface DependencyRef {
  name: string;
  id: string;
}

// ---------------------------------------------------------------------------
// Jobs as returned
// ---------------------------------------------------------------------------

export interface Job<T = object> {
  id: string;
  name: string;
  data: T;
  expireInSeconds: number;
  heartbeatSeconds: number | null;
  retryCount: number;
  /** Aborted when the job expires, is cancelled, or the worker stops. */
  signal: AbortSignal;
  groupId?: string | null;
  groupTier?: string | null;
}

export interface JobWithMetadata<T = object> extends Job<T> {
  priority: number;
  state: 'created' | 'retry' | 'active' | 'completed' | 'cancelled' | 'failed';
  retryLimit: number;
  retryDelay: number;
  retryBackoff: boolean;
  retryDelayMax?: number;
  startAfter: Date;
  startedOn: Date;
  singletonKey: string | null;
  singletonOn: Date | null;
  expireInSeconds: number;
  deleteAfterSeconds: number;
  createdOn: Date;
  completedOn: Date | null;
  keepUntil: Date;
  policy: QueuePolicy;
  heartbeatOn: Date | null;
  heartbeatSeconds: number | null;
  blocked: boolean;
  blocking: boolean;
  pendingDependencies: number;
  deadLetter: string;
  output: object;
  // Dead-letter provenance; null unless the job arrived via a dead letter queue.
  sourceName: string | null;
  sourceId: string | null;
  sourceCreatedOn: Date | null;
  sourceRetryCount: number | null;
  sourceOutput: object | null;
  sourceRootId: string | null;
}

/** A specific attempt of a job; settling by attempt is a no-op once it was retried. */
export interface JobAttempt {
  id: string;
  retryCount: number;
}

/** Result of the job-settling commands (complete, fail, cancel, ...). */
export interface CommandResponse {}

export interface CompleteOptions extends ConnectionOptions {
  includeQueued?: boolean;
}

export interface FindJobsOptions extends ConnectionOptions {
  id?: string;
  key?: string;
  /** Match jobs whose data contains this object. */
  data?: object;
  queued?: boolean;
  limit?: number;
  after?: string;
}

// ---------------------------------------------------------------------------
// Dead letters
// ---------------------------------------------------------------------------

export interface RedriveFilter extends ConnectionOptions {
  destination?: string;
  sourceName?: string;
  data?: object;
  createdBefore?: Date;
  ids?: string[];
}

export interface RedriveOptions extends RedriveFilter {
  limit?: number;
}

export interface RedrivePreviewOptions extends RedriveFilter {
  limit?: number;
}

export interface RedrivePreview {
  total: number;
  destinations: { name: string; count: number }[];
  unroutable: number;
}

// ---------------------------------------------------------------------------
// Fetching and working
// ---------------------------------------------------------------------------

export interface JobFetchOptions {
  includeMetadata?: boolean;
  /** @deprecated No effect; jobs always come out in priority order. */
  priority?: boolean;
  /** @deprecated No effect; jobs always come out in creation order. */
  orderByCreatedOn?: boolean;
  batchSize?: number;
  ignoreStartAfter?: boolean;
  minPriority?: number;
  maxPriority?: number;
}

export interface FetchGroupConcurrencyOptions {
  groupConcurrency?: number | GroupConcurrencyConfig;
  ignoreGroups?: string[] | null;
}

export type FetchOptions = JobFetchOptions & ConnectionOptions & FetchGroupConcurrencyOptions;

export interface JobPollingOptions {
  pollingIntervalSeconds?: number;
  /** Backstop interval used while LISTEN/NOTIFY is active for the queue. */
  notifyPollingIntervalSeconds?: number;
  burstWhenReadyExceeds?: number;
  burstWhenBatchFull?: boolean;
}

export interface WorkConcurrencyOptions {
  /** Pollers started by this `work()` call on this process. */
  localConcurrency?: number;
  /** Per-group limit enforced in this process only. */
  localGroupConcurrency?: number | GroupConcurrencyConfig;
  /** Per-group limit enforced across all processes via the database. */
  groupConcurrency?: number | GroupConcurrencyConfig;
}

export type WorkOptions = JobFetchOptions &
  JobPollingOptions &
  WorkConcurrencyOptions & {
    heartbeatRefreshSeconds?: number;
    /** Handler resolves with a `JobResult[]` settling each job separately. */
    perJobResults?: boolean;
    /** Run handler and completion in one transaction; handler gets it as 2nd arg. */
    transactional?: boolean;
    transactionTimeoutSeconds?: number;
  };

export interface OffWorkOptions {
  /** Stop only the worker with this id (as returned by `work()`). */
  id?: string;
  /** Resolve after in-flight jobs finish. */
  wait?: boolean;
}

export interface WorkHandler<ReqData, ResData = any> {
  (job: Job<ReqData>[]): Promise<ResData>;
}

export interface WorkWithMetadataHandler<ReqData, ResData = any> {
  (job: JobWithMetadata<ReqData>[]): Promise<ResData>;
}

export type JobResultStatus = 'completed' | 'failed' | 'deadletter';

export interface JobResult<ResData = any> {
  id: string;
  status: JobResultStatus;
  output?: ResData;
}

export interface PerJobWorkHandler<ReqData> {
  (job: Job<ReqData>[]): Promise<JobResult[]>;
}

export interface PerJobWorkWithMetadataHandler<ReqData> {
  (job: JobWithMetadata<ReqData>[]): Promise<JobResult[]>;
}

interface TransactionalWorkHandler<ReqData, ResData = any> {
  (jobs: Job<ReqData>[], tx: Db): Promise<ResData>;
}

interface TransactionalWorkWithMetadataHandler<ReqData, ResData = any> {
  (jobs: JobWithMetadata<ReqData>[], tx: Db): Promise<ResData>;
}

/**
 * Handler type selected from the literal options passed to `work()`:
 * `transactional: true` adds the transaction argument, `perJobResults: true`
 * requires a `JobResult[]`, `includeMetadata: true` swaps in
 * `JobWithMetadata`. Flags typed as plain `boolean` select the loose handler.
 */
export type WorkHandlerFor<O extends WorkOptions, ReqData, ResData = any> =
  O extends { transactional: true }
    ? O extends { includeMetadata: true }
      ? TransactionalWorkWithMetadataHandler<ReqData, ResData>
      : TransactionalWorkHandler<ReqData, ResData>
    : O extends { perJobResults: true }
      ? O extends { includeMetadata: true }
        ? PerJobWorkWithMetadataHandler<ReqData>
        : PerJobWorkHandler<ReqData>
      : O extends { includeMetadata: true }
        ? WorkWithMetadataHandler<ReqData, ResData>
        : WorkHandler<ReqData, ResData>;

export type WorkerState = 'created' | 'active' | 'stopping' | 'stopped';

/** Snapshot of one local worker, as carried by the `wip` event. */
export interface WipData {
  id: string;
  workId: string;
  name: string;
  options: WorkOptions;
  state: WorkerState;
  count: number;
  createdOn: number;
  lastFetchedOn: number | null;
  lastJobStartedOn: number | null;
  lastJobEndedOn: number | null;
  lastJobDuration: number | null;
  lastError: object | null;
  lastErrorOn: number | null;
}

// ---------------------------------------------------------------------------
// Scheduling
// ---------------------------------------------------------------------------

export type ScheduleKind = 'cron' | 'rrule';

type ScheduleMissedPolicy = 'skip' | 'once';

export type ScheduleOptions = SendOptions & {
  /** IANA time zone, default UTC. */
  tz?: string;
  /** Distinguishes several schedules on one queue. */
  key?: string;
  missed?: ScheduleMissedPolicy;
};

export interface PreviewScheduleOptions {
  tz?: string;
  from?: Date;
  count?: number;
}

export interface Schedule {
  name: string;
  key: string;
  kind: ScheduleKind;
  /** Cron expression or RRULE text. */
  cron: string;
  timezone: string;
  data?: object;
  options?: ScheduleOptions;
  createdOn: Date;
  updatedOn: Date;
  lastJobId: string | null;
}

// ---------------------------------------------------------------------------
// Instances, warnings, background migrations, schema drift
// ---------------------------------------------------------------------------

export interface InstanceWorker {
  id: string;
  queue: string;
  localConcurrency: number;
  batchSize: number;
  pollingIntervalSeconds: number | null;
  active: number;
  lastFetchedOn: string | null;
  lastJobEndedOn: string | null;
  lastErrorOn: string | null;
  options?: Partial<WorkOptions>;
}

export interface InstanceMetrics {
  cgroup: 1 | 2 | null;
  cpu: number | null;
  cpuLimit: number;
  cpuThrottled: number | null;
  rss: number | null;
  heapUsed: number | null;
  heapLimit: number | null;
  memoryUsed: number | null;
  memoryLimit: number;
  loopDelay: number | null;
  loopDelayMax: number | null;
  loopUtilization: number | null;
}

/** A row of the instance registry. */
export interface Instance {
  id: string;
  name: string | null;
  host: string;
  pid: number;
  version: string;
  nodeVersion: string;
  applicationName: string | null;
  heartbeatSeconds: number;
  supervise: boolean;
  schedule: boolean;
  migrate: boolean;
  persistQueueStats: boolean;
  persistWarnings: boolean;
  poolMax: number | null;
  poolTotal: number | null;
  poolIdle: number | null;
  poolWaiting: number | null;
  workers: InstanceWorker[];
  metrics: InstanceMetrics | null;
  config: Record<string, unknown>;
  crashRestarts: number;
  crashRestartsSince: Date | null;
  startedOn: Date;
  heartbeatOn: Date;
  stoppedOn: Date | null;
  live: boolean;
}

export interface Warning {
  message: string;
  data: object;
}

type BamStatus = 'pending' | 'in_progress' | 'completed' | 'failed';

/** A background (asynchronous) migration command and its progress. */
export interface BamEntry {
  id: string;
  name: string;
  version: number;
  status: BamStatus;
  queue?: string;
  table: string;
  command: string;
  error?: string;
  createdOn: Date;
  startedOn?: Date;
  completedOn?: Date;
  reattempt?: boolean;
}

export interface BamStatusSummary {
  status: BamStatus;
  count: number;
  lastCreatedOn: Date;
}

export interface BamEvent {
  id: string;
  name: string;
  status: string;
  queue?: string;
  table: string;
  error?: string;
}

interface FlowEvent {
  table: string;
  resolved: number;
}

export interface ManagedIndex {
  name: string;
  table: string;
  keys?: string;
  include?: string;
  predicate?: string;
  /** Full CREATE INDEX statement. */
  definition?: string;
}

export interface InvalidIndex extends ManagedIndex {
  /** A background migration is (re)building it. */
  building: boolean;
}

export interface MismatchedIndex extends ManagedIndex {
  expectedKeys: string;
  actualKeys: string;
  expectedInclude: string;
  actualInclude: string;
  expectedPredicate: string;
  actualPredicate: string;
  actualDefinition: string;
  differs: Array<'keys' | 'include' | 'predicate'>;
}

export interface ManagedFunction {
  name: string;
  expectedBody: string;
  definition: string;
}

export interface MismatchedFunction extends ManagedFunction {
  actualBody: string;
  actualDefinition: string;
}

interface ColumnMismatch<V> {
  column: string;
  expected: V;
  actual: V;
}

export interface TableColumnDrift {
  table: string;
  missingColumns: string[];
  unexpectedColumns: string[];
  defaultMismatches: Array<ColumnMismatch<string>>;
  typeMismatches: Array<ColumnMismatch<string>>;
  nullabilityMismatches: Array<ColumnMismatch<boolean>>;
}

export interface ConstraintDrift {
  table: string;
  missingConstraints: string[];
  unexpectedConstraints: string[];
}

export interface EnumDrift {
  name: string;
  expectedValues: string[];
  actualValues: string[];
}

/** Expected schema objects compared against the live catalog. */
export interface SchemaDriftReport {
  /** Nothing missing or different (extra indexes do not count). */
  ok: boolean;
  missingTables: string[];
  missing: ManagedIndex[];
  building: ManagedIndex[];
  invalid: InvalidIndex[];
  extraIndexes: Array<{ name: string; table: string }>;
  mismatched: MismatchedIndex[];
  missingFunctions: ManagedFunction[];
  mismatchedFunctions: MismatchedFunction[];
  columnDrift: TableColumnDrift[];
  constraintDrift: ConstraintDrift[];
  enumDrift: EnumDrift | null;
}

// ---------------------------------------------------------------------------
// Clocks
// ---------------------------------------------------------------------------

/** Opaque timer handle; its type depends on the clock. */
export type ClockTimer = unknown;

/** Time source and timer factory used by every pg-boss timer. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  clearTimeout(handle: ClockTimer): void;
  setInterval(fn: () => void, ms: number): ClockTimer;
  clearInterval(handle: ClockTimer): void;
}

interface ClockAttachTarget {
  db: Db;
  schema: string;
  /** Resolves when no statement is in flight (`true` if it had to wait). */
  idle?: () => Promise<boolean>;
}

/** A clock that also drives the database-side notion of "now". */
export interface AttachableClock extends Clock {
  attach(target: ClockAttachTarget): Promise<AsyncDisposable>;
}

export declare const systemClock: Clock;

/** Manually driven clock for tests: time moves only via `setTime()` / `tick()`. */
export declare class TestClock implements AttachableClock {
  #private;
  constructor(start?: Date | number | string);
  now(): number;
  setTimeout(fn: () => void, ms: number): ClockTimer;
  setInterval(fn: () => void, ms: number): ClockTimer;
  clearTimeout(handle: ClockTimer): void;
  clearInterval(handle: ClockTimer): void;
  /** Jump to a moment without firing timers. */
  setTime(t: Date | number | string): Promise<void>;
  /** Advance by `ms`, firing due timers in order. */
  tick(ms: number): Promise<void>;
  attach(target: ClockAttachTarget): Promise<AsyncDisposable>;
}

/** SQL that points the schema clock at the test clock table. */
export declare function enableClockOverride(): string;
/** SQL that undoes `enableClockOverride()`. */
export declare function disableClockOverride(): string;

// ---------------------------------------------------------------------------
// Test spies
// ---------------------------------------------------------------------------

export type JobSpyState = 'created' | 'active' | 'completed' | 'failed';

export type JobDataSelector<T = object> = (jobData: T) => boolean;

export type JobSelector<T = object> = (job: SpyJob<T>) => boolean;

export interface SpyJob<T = object> {
  id: string;
  name: string;
  data: T;
  state: JobSpyState;
  output?: object;
}

export interface JobSpyInterface<T = object> {
  clear(): void;
  waitForJob(selector: JobDataSelector<T>, state: JobSpyState): Promise<SpyJob<T>>;
  waitForJobWithId(id: string, state: JobSpyState): Promise<SpyJob<T>>;
}

// ---------------------------------------------------------------------------
// Adapters: wrap a third-party client or transaction as a `Db`
// ---------------------------------------------------------------------------

export interface KnexTransactionLike {
  raw<T = any>(
    sql: string,
    bindings?: readonly unknown[]
  ): Promise<{ rows: T[] } | { rows: any[] }[]>;
}

export interface KyselyTransactionLike {
  executeQuery<R>(
    query: {
      readonly sql: string;
      readonly parameters: ReadonlyArray<unknown>;
      readonly query: any;
      readonly queryId: { readonly queryId: string };
    },
    queryId?: unknown
  ): Promise<{ readonly rows: R[] }>;
}

export interface DrizzleTransactionLike {
  execute(query: unknown): Promise<{ rows: any[] } | { rows: any[] }[] | any[]>;
}

/** drizzle-orm's `sql` tag, passed in so this package needs no drizzle dependency. */
export interface DrizzleSqlTagLike {
  (strings: TemplateStringsArray, ...values: unknown[]): unknown;
  param(value: unknown): unknown;
}

export interface PrismaTransactionLike {
  $queryRawUnsafe<T = unknown>(query: string, ...values: any[]): Promise<T>;
}

export interface PGliteLike {
  query<T = any>(query: string, params?: unknown[]): Promise<{ rows: T[] }>;
  exec(query: string): Promise<Array<{ rows: any[] }>>;
  listen?(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>;
  onLeaderChange?(callback: () => void): () => void;
}

interface BunSubscriptionLike {
  unlisten(): Promise<void> | void;
}

export interface BunReservedSqlLike {
  unsafe(text: string, values?: unknown[]): Promise<unknown>;
  release(): void;
}

export interface BunSqlLike {
  unsafe(text: string, values?: unknown[]): Promise<unknown>;
  reserve(): Promise<BunReservedSqlLike>;
  listen?(
    channel: string,
    onNotification: (payload: string) => void,
    onSubscribe?: () => void
  ): Promise<BunSubscriptionLike>;
}

export declare function fromKnex(trx: KnexTransactionLike): Db;
export declare function fromKysely(trx: KyselyTransactionLike): Db;
export declare function fromDrizzle(tx: DrizzleTransactionLike, sql: DrizzleSqlTagLike): Db;
export declare function fromPrisma(tx: PrismaTransactionLike): Db;
export declare function fromPglite(pglite: PGliteLike): Db;
export declare function fromBunSql(client: BunSqlLike): Db;

// ---------------------------------------------------------------------------
// Standalone helpers
// ---------------------------------------------------------------------------

type Bins = number[] | null | undefined;

/** Bin-wise sum of two latency histograms (null only if both are empty). */
export declare function addBins(a: Bins, b: Bins): number[] | null;

/** Estimated `p`th percentile, in seconds, of a latency histogram. */
export declare function percentile(bins: Bins, p: number): number | null;

/** SQL that installs the schema from scratch. */
export declare function getConstructionPlans(schema?: string, options?: ConstructionPlanOptions): string;

/** SQL that migrates a schema from `version` (default: the one before the current) to the current version; index builds that must run concurrently follow the transaction as statements of their own. */
export declare function getMigrationPlans(schema?: string, version?: number, options?: MigrationPlanOptions): string;

/** SQL that lists bloated job indexes. */
export declare function getIndexBloatPlans(schema?: string, options?: IndexBloatOptions): string;

/** SQL that rolls a schema back from `version` (default: the current) to the version before it. */
export declare function getRollbackPlans(schema?: string, version?: number, options?: PlanOptions): string;

/** SQL that drops every pg-boss object from a shared schema. */
export declare function getUninstallPlans(schema?: string, options?: PlanOptions): string;

// ---------------------------------------------------------------------------
// Events and the PgBoss class
// ---------------------------------------------------------------------------

/** Listener argument tuples for each event PgBoss emits. */
export type PgBossEventMap = {
  error: [error: Error];
  warning: [warning: Warning];
  wip: [data: WipData[]];
  stopped: [];
  bam: [data: BamEvent];
  flow: [data: FlowEvent];
};

/** Ids accepted by the job-settling commands. */
type JobRef = string | string[] | JobAttempt | JobAttempt[];

export declare class PgBoss extends EventEmitter<PgBossEventMap> {
  #private;

  constructor(connectionString: string);
  constructor(options: ConstructorOptions);

  // lifecycle
  start(options?: StartOptions): Promise<this>;
  stop(options?: StopOptions): Promise<void>;
  isInstalled(): Promise<boolean>;
  schemaVersion(): Promise<number | null>;
  detectSchemaDrift(): Promise<SchemaDriftReport>;
  getDb(): Db;

  // sending
  send(request: Request): Promise<string | null>;
  send(name: string, data?: object | null, options?: SendOptions): Promise<string | null>;
  sendAfter(name: string, data: object | null, options: SendOptions | null, date: Date): Promise<string | null>;
  sendAfter(name: string, data: object | null, options: SendOptions | null, dateString: string): Promise<string | null>;
  sendAfter(name: string, data: object | null, options: SendOptions | null, seconds: number): Promise<string | null>;
  sendThrottled(
    name: string,
    data: object | null,
    options: SendOptions | null,
    seconds: number,
    key?: string
  ): Promise<string | null>;
  sendDebounced(
    name: string,
    data: object | null,
    options: SendOptions | null,
    seconds: number,
    key?: string
  ): Promise<string | null>;
  insert(name: string, jobs: JobInsert[], options?: InsertOptions): Promise<string[] | null>;
  update(request: UpdateRequest): Promise<UpdateResponse>;
  update(name: string, data: object | null | undefined, options?: UpdateOptions): Promise<UpdateResponse>;
  upsert(request: UpdateRequest): Promise<UpsertResponse>;
  upsert(name: string, data: object | null | undefined, options?: UpdateOptions): Promise<UpsertResponse>;
  flow(jobs: FlowJob[], options?: ConnectionOptions): Promise<Record<string, string>>;

  // pub/sub
  publish(event: string, data?: object, options?: SendOptions): Promise<void>;
  subscribe(event: string, name: string): Promise<void>;
  unsubscribe(event: string, name: string): Promise<void>;

  // fetching and workers
  fetch<T>(name: string, options: FetchOptions & { includeMetadata: true }): Promise<JobWithMetadata<T>[]>;
  fetch<T>(name: string, options?: FetchOptions): Promise<Job<T>[]>;
  work<ReqData, ResData = any>(name: string, handler: WorkHandler<ReqData, ResData>): Promise<string>;
  work<ReqData, ResData = any, const O extends WorkOptions = WorkOptions>(
    name: string,
    options: O,
    handler: WorkHandlerFor<O, ReqData, ResData>
  ): Promise<string>;
  offWork(name: string, options?: OffWorkOptions): Promise<void>;
  notifyWorker(workerId: string): void;
  getWipData(options?: { includeInternal?: boolean }): WipData[];

  // settling jobs
  complete(name: string, id: JobRef, data?: object | null, options?: CompleteOptions): Promise<CommandResponse>;
  fail(name: string, id: JobRef, data?: object | null, options?: ConnectionOptions): Promise<CommandResponse>;
  cancel(name: string, id: JobRef, options?: ConnectionOptions): Promise<CommandResponse>;
  resume(name: string, id: string | string[], options?: ConnectionOptions): Promise<CommandResponse>;
  retry(name: string, id: string | string[], options?: ConnectionOptions): Promise<CommandResponse>;
  deleteJob(name: string, id: JobRef, options?: ConnectionOptions): Promise<CommandResponse>;
  touch(name: string, id: JobRef, options?: ConnectionOptions): Promise<CommandResponse>;
  deleteQueuedJobs(name: string): Promise<number>;
  deleteStoredJobs(name: string): Promise<number>;
  deleteAllJobs(name?: string): Promise<number | null>;

  // dead letters
  redrive(name: string, options?: RedriveOptions): Promise<number>;
  previewRedrive(name: string, options?: RedrivePreviewOptions): Promise<RedrivePreview>;

  // reading jobs
  findJobs<T>(name: string, options?: FindJobsOptions): Promise<JobWithMetadata<T>[]>;
  /** @deprecated Prefer `findJobs(name, { id })`. */
  getJobById<T>(name: string, id: string, options?: ConnectionOptions): Promise<JobWithMetadata<T> | null>;
  getDependencies(
    name: string,
    id: string,
    options?: ConnectionOptions & ListOptions<DependencyRef>
  ): Promise<DependencyRef[]>;
  getDependents(
    name: string,
    id: string,
    options?: ConnectionOptions & ListOptions<DependencyRef>
  ): Promise<DependencyRef[]>;
  getBlockedKeys(name: string, options?: ListOptions): Promise<string[]>;

  // queues
  createQueue(name: string, options?: Omit<Queue, 'name'>): Promise<void>;
  updateQueue(name: string, options?: UpdateQueueOptions): Promise<void>;
  deleteQueue(name: string): Promise<void>;
  getQueue(name: string): Promise<QueueResult | null>;
  getQueues(names?: string[], options?: ListOptions): Promise<QueueResult[]>;
  getQueueStats(name: string, options?: QueueStatsOptions): Promise<QueueStats[]>;

  // scheduling
  schedule(name: string, cron: string, data?: object | null, options?: ScheduleOptions): Promise<void>;
  unschedule(name: string, key?: string, options?: ConnectionOptions): Promise<void>;
  getSchedules(
    name?: string,
    key?: string,
    options?: ListOptions<Pick<Schedule, 'name' | 'key'>>
  ): Promise<Schedule[]>;
  getSchedule(name: string, key?: string): Promise<Schedule | null>;
  previewSchedule(cron: string, options?: PreviewScheduleOptions): Date[];

  // operations
  getInstances(options?: ListOptions): Promise<Instance[]>;
  supervise(name?: string, options?: SuperviseOptions): Promise<void>;
  resolveFlow(): Promise<void>;
  getReindexCommands(options?: ReindexOptions): Promise<string[]>;
  getBamStatus(): Promise<BamStatusSummary[]>;
  getBamEntries(options?: ListOptions): Promise<BamEntry[]>;
  isMaintaining(): boolean;
  isBamWorking(): boolean;
  isResolvingFlow(): boolean;
  isCheckingSkew(): boolean;
  isTimekeeping(): boolean;

  // test support
  getSpy<T = object>(name: string): JobSpyInterface<T>;
  clearSpies(): void;
}

// Only the declarations marked `export` above are part of the module.
export {};
