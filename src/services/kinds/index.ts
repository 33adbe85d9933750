import type { ServiceKind } from "../../config/schema.js";
import type { ServiceKindModule } from "./kind.js";
import { memcached } from "./memcached.js";
import { mariadb, mysqlServer } from "./mysql.js";
import { postgresql } from "./postgresql.js";
import { redis } from "./redis.js";

export type { ServiceKindModule, TenantAdmin } from "./kind.js";

const KINDS: Record<ServiceKind, ServiceKindModule> = {
  postgresql,
  mariadb,
  mysql: mysqlServer,
  redis,
  memcached,
};

/** The module of a service kind. */
export function serviceKind(kind: ServiceKind): ServiceKindModule {
  return KINDS[kind];
}
