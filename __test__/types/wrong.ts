// Misuses that pg-boss's typings reject. Each line below must fail to
// type-check; if one starts compiling, tsc reports an unused @ts-expect-error.
// Checked against both the real pg-boss and our index.d.ts.

import { PgBoss, states } from 'pg-boss';
import type { Job } from 'pg-boss';

// @ts-expect-error no connection string or options object
export const noArgs = new PgBoss();

// @ts-expect-error port must be a number
export const badPort = new PgBoss({ host: 'localhost', port: '5432' });

// @ts-expect-error unknown constructor option
export const typo = new PgBoss({ connectionString: 'postgres://x', maxPoolSize: 4 });

const boss = new PgBoss('postgres://localhost/app');

export async function misuse(): Promise<void> {
  // @ts-expect-error job data must be an object, not a string
  await boss.send('q', 'hello');

  // @ts-expect-error policy must be a string
  await boss.createQueue('q', { policy: 1 });

  // @ts-expect-error retryLimit must be a number
  await boss.send('q', {}, { retryLimit: 'three' });

  // @ts-expect-error work() with options needs a handler
  await boss.work('q', { batchSize: 1 });

  // @ts-expect-error a perJobResults handler must resolve with JobResult[]
  await boss.work('q', { perJobResults: true }, async () => 'done');

  // @ts-expect-error batchSize must be a number
  await boss.fetch('q', { batchSize: '5' });

  const jobs: Job<{ n: number }>[] = await boss.fetch<{ n: number }>('q');
  // @ts-expect-error data has no property "m"
  console.log(jobs[0]?.data.m);

  // @ts-expect-error plain fetch results carry no metadata
  console.log(jobs[0]?.createdOn);

  // @ts-expect-error sendAfter needs the delay argument
  await boss.sendAfter('q', {}, null);

  // @ts-expect-error complete needs a job id
  await boss.complete('q');

  // @ts-expect-error stop timeout is a number of milliseconds
  await boss.stop({ timeout: '10s' });

  // @ts-expect-error resume does not take JobAttempt objects
  await boss.resume('q', { id: 'a', retryCount: 0 });

  // @ts-expect-error the error listener receives an Error, not a string
  boss.on('error', (message: string) => console.log(message.toUpperCase()));

  // @ts-expect-error 'stopped' listeners get no arguments
  boss.on('stopped', (reason: string) => console.log(reason));

  // @ts-expect-error 'wip' delivers an array of WipData, not a number
  boss.on('wip', (count: number) => console.log(count + 1));

  // @ts-expect-error state constants are read-only
  states.completed = 'done';
}
