import type { ServiceKindModule } from "./kind.js";
import { memcached } from "./memcached.js";
import { mariadb, mysqlServer } from "./mysql.js";
import { postgresql } from "./postgresql.js";
import { rabbitmq } from "./rabbitmq/index.js";
import { redis } from "./redis.js";

export type { ServiceKindModule, TenantAdmin } from "./kind.js";

/** Every service kind by the name configurations give it: a new kind is one module and one line here. */
const KINDS = {
  postgresql,
  mysql: mysqlServer,
  mariadb,
  redis,
  memcached,
  rabbitmq,
} satisfies Record<string, ServiceKindModule>;

export type ServiceKind = keyof typeof KINDS;

/** The names of the service kinds, as the configuration's schema accepts them. */
export const SERVICE_KINDS = Object.keys(KINDS) as [ServiceKind, ...ServiceKind[]];

/** The module of a service kind. */
export function serviceKind(kind: ServiceKind): ServiceKindModule {
  return KINDS[kind];
}
