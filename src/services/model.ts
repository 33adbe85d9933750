import type { ServiceKind } from "../config/schema.js";

/** Where a server answers: a host name or address and a TCP port. */
export interface Endpoint {
  host: string;
  port: number;
}

/**
 * What an experiment owns on a server: its database, its role and that role's password, and
 * the key prefix it writes under. Fields a kind does not use are null.
 */
export interface Tenant {
  database: string | null;
  user: string | null;
  password: string | null;
  prefix: string | null;
}

/** Everything a client needs to reach a tenant, plain data (what env.ts turns into variables). */
export interface Connection extends Endpoint, Tenant {
  kind: ServiceKind;
  url: string;
}

/**
 * How much a tenant holds now: its data's bytes, or where a server keeps no byte count per
 * tenant, how many keys it has. `atLeast`: counting stopped at a cap, there are more.
 */
export interface TenantSize {
  unit: "bytes" | "keys";
  amount: number;
  atLeast?: boolean;
}

/** Administrator credentials of a server, reachable from the laboratory host. */
export interface AdminAccess extends Endpoint {
  user: string | null;
  password: string | null;
}

/** The experiment and service a tenant or a dedicated server belongs to. */
export interface Owner {
  app: string;
  experiment: string;
  service: string;
}
