import type memjs from "memjs";
import type { AdminAccess } from "../model.js";
import type { ServiceKindModule, TenantAdmin } from "./kind.js";

/**
 * Memcached has no accounts and no way to list or delete keys by prefix: a tenant is only the
 * key prefix handed to the app. Experiments on a communal Memcached are not isolated from
 * each other; their data simply expires.
 */
export const memcached: ServiceKindModule = {
  family: "memcached",
  port: 11211,
  adminUser: null,
  tenantNames: (app, experiment, service) => ({
    database: null,
    user: null,
    prefix: `${app}:${experiment}:${service}:`,
  }),
  url: (endpoint) => `${endpoint.host}:${endpoint.port}`,
  extraEnv: (c) => ({ PREFIX: c.prefix ?? "" }),
  wellKnownEnv: (c) => ({ MEMCACHE_URL: c.url, MEMCACHE_PREFIX: c.prefix ?? "" }),
  openAdmin,
  container: {
    repository: "memcached",
    version: "1.6",
    dataDirectory: null,
    adminEnvironment: () => ({}),
    command: () => ({}),
  },
  native: {
    debianPackage: "memcached",
    programs: ["memcached"],
    account: "memcache",
    serverArgs: (context) => ({
      program: context.programs.memcached as string,
      args: ["-p", String(context.port), "-l", "127.0.0.1", "-U", "0"],
    }),
  },
};

async function openAdmin(access: AdminAccess): Promise<TenantAdmin> {
  const { default: memjs } = await import("memjs");
  // A fresh client without retries: memjs would otherwise keep retrying a server that is not up.
  const connect = () =>
    memjs.Client.create(`${access.host}:${access.port}`, {
      retries: 0,
      timeout: 2,
      conntimeout: 2,
      logger: { log: () => undefined },
    });
  const client = connect();
  try {
    await client.get("labtest:ready-check");
  } finally {
    client.close();
  }
  return {
    create: async () => "existed",
    drop: async () => undefined,
    // Its items can be counted only server-wide: they are the tenant's on the experiment's own server alone.
    async size(_tenant, { dedicated }) {
      if (!dedicated) return null;
      const counting = connect();
      try {
        return { unit: "keys", amount: Number((await serverStats(counting)).curr_items ?? 0) };
      } finally {
        counting.close();
      }
    },
    close: async () => undefined,
  };
}

/** The server's `stats` counters. */
function serverStats(client: memjs.Client): Promise<Record<string, string>> {
  return new Promise((resolve, reject) =>
    client.stats((error, _server, stats) =>
      error || !stats ? reject(error ?? new Error("no stats")) : resolve(stats),
    ),
  );
}
