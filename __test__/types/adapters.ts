// The adapters take the real libraries' objects: the same code type-checks against pg-boss's
// typings and ours (tsconfig.adapters.*.json). Only type-checked, never run.

import { PgBoss, fromKnex, fromKysely, fromDrizzle, fromPrisma, fromPglite, fromBunSql } from 'pg-boss';
import type {
  Db,
  KnexTransactionLike,
  KyselyTransactionLike,
  DrizzleTransactionLike,
  DrizzleSqlTagLike,
  PrismaTransactionLike,
  PGliteLike,
  BunSqlLike,
  BunReservedSqlLike,
} from 'pg-boss';
import knexLib from 'knex';
import { Kysely, PostgresDialect } from 'kysely';
import { drizzle } from 'drizzle-orm/node-postgres';
import { sql } from 'drizzle-orm';
import { PGlite } from '@electric-sql/pglite';

export async function useAdapters(boss: PgBoss): Promise<string[]> {
  const ids: string[] = [];
  const knex = knexLib({ client: 'pg', connection: 'postgres://localhost/app' });
  await knex.transaction(async (trx) => {
    const id = await boss.send('q', { from: 'knex' }, { db: fromKnex(trx) });
    if (id) ids.push(id);
  });

  const kysely = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool: {} as never }) });
  await kysely.transaction().execute(async (trx) => {
    const id = await boss.send('q', { from: 'kysely' }, { db: fromKysely(trx) });
    if (id) ids.push(id);
  });

  const db = drizzle('postgres://localhost/app');
  await db.transaction(async (tx) => {
    const id = await boss.send('q', { from: 'drizzle' }, { db: fromDrizzle(tx, sql) });
    if (id) ids.push(id);
  });

  const pglite = new PGlite();
  const embedded = new PgBoss({ db: fromPglite(pglite) });
  await embedded.start();
  await pglite.transaction(async (tx) => {
    await embedded.send('q', null, { db: fromPglite(tx) });
  });

  const prismaLike: PrismaTransactionLike = { $queryRawUnsafe: async <T>() => [] as T };
  const viaPrisma: Db = fromPrisma(prismaLike);
  const reserved: BunReservedSqlLike = { unsafe: async () => [], release: () => {} };
  const bunLike: BunSqlLike = { unsafe: async () => [], reserve: async () => reserved };
  const viaBun: Db = fromBunSql(bunLike);
  await viaPrisma.executeSql('SELECT 1');
  await viaBun.executeSql('SELECT $1::int', [1]);

  const shapes: [KnexTransactionLike, KyselyTransactionLike, DrizzleTransactionLike, DrizzleSqlTagLike, PGliteLike] = [
    knex, kysely, db, sql, pglite,
  ];
  return shapes.length ? ids : [];
}
