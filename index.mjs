// The ESM entry: the same objects as the CommonJS entry (one module instance, one PgBoss class),
// named the way pg-boss 12.38 exports them.
import native from './index.js'

export const {
  PgBoss,
  states,
  policies,
  events,
  scheduleKinds,
  scheduleMissedPolicies,
  previewScheduleMaxCount,
  CLOCK_OVERRIDE_SETTING,
  getConstructionPlans,
  getUninstallPlans,
  getMigrationPlans,
  getRollbackPlans,
  getIndexBloatPlans,
  enableClockOverride,
  disableClockOverride,
  addBins,
  percentile,
  fromKnex,
  fromKysely,
  fromDrizzle,
  fromPrisma,
  fromPglite,
  fromBunSql,
  systemClock,
  TestClock
} = native
