import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import type { Redis } from "ioredis";
import { roleName } from "../../config/names.js";
import type { AdminAccess, Tenant, TenantSize } from "../model.js";
import type { ServiceKindModule, TenantAdmin } from "./kind.js";
import { userInfo } from "./sql.js";

const ACL_FILE = "users.acl";
/** Throwaway data: no snapshots, no append-only file. */
const EPHEMERAL_SETTINGS = ["--save", "", "--appendonly", "no"];
/**
 * What a tenant may run: everything on its own keys and channels, nothing that reaches other
 * tenants or the server itself. Whole categories go first, so what a later Redis adds to them
 * is denied too:
 * - @admin and @dangerous (FLUSHALL, KEYS, CONFIG, CLIENT LIST/KILL, SWAPDB, ACL LOG, …). INFO
 *   is in @dangerous and comes back: clients' ready checks and job queues (ioredis, Sidekiq,
 *   BullMQ) read the version from a plain INFO, which ACL cannot narrow to some sections.
 * - @scripting: functions are server-wide (one tenant could replace another's library), and so
 *   is the script cache (SCRIPT FLUSH/KILL/EXISTS). EVAL and EVALSHA come back: every call a
 *   script makes is checked against the caller's key ACL; SCRIPT LOAD only caches by content.
 * - Commands that have no key to check: SELECT and MOVE reach other logical databases, and so
 *   does COPY's DB argument (ACL cannot deny an argument, so COPY goes); SCAN, RANDOMKEY,
 *   DBSIZE, PUBSUB, MEMORY (but USAGE of a key), WAIT and CLUSTER list or count everyone's keys,
 *   channels or replicas; CLIENT TRACKING in BCAST mode announces every key written anywhere.
 */
const TENANT_RULES = [
  "+@all",
  "-@admin",
  "-@dangerous",
  "+info",
  "-@scripting",
  "+eval",
  "+eval_ro",
  "+evalsha",
  "+evalsha_ro",
  "+script|load",
  "-select",
  "-move",
  "-copy",
  "-scan",
  "-randomkey",
  "-dbsize",
  "-pubsub",
  "-memory",
  "+memory|usage",
  "-wait",
  "-cluster",
  "-client|tracking",
];

/** A communal tenant's ACL: its own keys and channels, under the rules above. */
function prefixRules(prefix: string): string[] {
  const pattern = `${escapeGlob(prefix)}*`;
  return [`~${pattern}`, `&${pattern}`, ...TENANT_RULES];
}

/** A dedicated server's tenant: every key, channel and command, as the administrator. */
const WHOLE_SERVER = ["~*", "&*", "+@all"];

/** The ACL file line of the administrator: the password as its SHA-256, never in clear. */
function adminAclLine(password: string): string {
  const hash = createHash("sha256").update(password).digest("hex");
  return `user default on #${hash} ${WHOLE_SERVER.join(" ")}`;
}

export const redis: ServiceKindModule = {
  family: "redis",
  port: 6379,
  adminUser: "default",
  tenantNames: (app, experiment, service) => ({
    database: null,
    user: roleName(app, experiment, service),
    prefix: `${app}:${experiment}:${service}:`,
  }),
  url: (endpoint, tenant) => `redis://${userInfo(tenant)}@${endpoint.host}:${endpoint.port}/0`,
  extraEnv: (c) => ({ PREFIX: c.prefix ?? "" }),
  wellKnownEnv: (c) => ({ REDIS_URL: c.url, REDIS_PREFIX: c.prefix ?? "" }),
  openAdmin,
  container: {
    repository: "redis",
    version: "7",
    dataDirectory: "/data",
    adminEnvironment: () => ({}),
    // The ACL file has to exist before redis-server reads it; it is written once, on the volume,
    // so tenants added later (ACL SAVE) survive restarts.
    command: ({ ephemeral, adminPassword }) => ({
      entrypoint: [
        "sh",
        "-c",
        `[ -f /data/${ACL_FILE} ] || echo '${adminAclLine(adminPassword)}' > /data/${ACL_FILE}; exec docker-entrypoint.sh "$@"`,
        "sh",
      ],
      cmd: [
        "redis-server",
        "--aclfile",
        `/data/${ACL_FILE}`,
        ...(ephemeral ? EPHEMERAL_SETTINGS : ["--appendonly", "yes"]),
      ],
    }),
  },
  native: {
    debianPackage: "redis-server",
    programs: ["redis-server"],
    account: "redis",
    async initialize(context) {
      await writeFile(`${context.dataDirectory}/${ACL_FILE}`, `${adminAclLine(context.adminPassword)}\n`, {
        mode: 0o600,
      });
    },
    serverArgs: (context) => ({
      program: context.programs["redis-server"] as string,
      args: [
        "--port",
        String(context.port),
        "--bind",
        "127.0.0.1",
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
        "--dir",
        context.dataDirectory,
        "--aclfile",
        `${context.dataDirectory}/${ACL_FILE}`,
        ...(context.ephemeral ? EPHEMERAL_SETTINGS : ["--appendonly", "yes"]),
      ],
    }),
  },
};

/**
 * Tenants of a communal server keep to their key prefix; the tenant of a dedicated server (an
 * experiment's own) has the whole server, under its user and as the default user.
 */
async function openAdmin(access: AdminAccess, { communal }: { communal: boolean }): Promise<TenantAdmin> {
  const { Redis } = await import("ioredis");
  const client = new Redis({
    host: access.host,
    port: access.port,
    username: access.user ?? "default",
    password: access.password ?? undefined,
    lazyConnect: true,
    connectTimeout: 5000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    client.disconnect();
    throw error;
  }
  /** Persists the users; a server without an ACL file (an external one) keeps them in memory. */
  async function save(): Promise<void> {
    await client.call("ACL", "SAVE").catch((error: Error) => {
      if (!/not configured to use an ACL file/i.test(error.message)) throw error;
    });
  }
  return {
    async create(tenant) {
      const { user, prefix } = required(tenant);
      const existing = await client.call("ACL", "GETUSER", user);
      const password = tenant.password ?? "";
      const rules = communal ? prefixRules(prefix) : WHOLE_SERVER;
      await client.call("ACL", "SETUSER", user, "reset", "on", `>${password}`, ...rules);
      // Clients that log in with a password alone (ioredis, bull and most libraries by default)
      // are the default user; on the experiment's own server the tenant's password lets them in.
      if (!communal) await client.call("ACL", "SETUSER", "default", `>${password}`);
      await save();
      return existing ? "existed" : "created";
    },
    async drop(tenant) {
      const { user, prefix } = required(tenant);
      await client.call("ACL", "DELUSER", user);
      if (!communal) await forgetPassword(client, "default", tenant.password ?? "");
      await save();
      // On a dedicated server every key is the tenant's.
      await (communal ? unlinkEverywhere(client, `${escapeGlob(prefix)}*`) : client.flushall());
    },
    async size(tenant, { dedicated }) {
      // On the experiment's own server every key is the tenant's, in any logical database.
      if (dedicated) return { unit: "keys", amount: await keyCount(client) };
      return countMatching(client, `${escapeGlob(required(tenant).prefix)}*`);
    },
    async close() {
      client.disconnect();
    },
  };
}

/** SCAN calls a count makes at most: each examines some 1,000 of the server's keys, its tenants' all. */
const COUNT_SCANS = 100;

/** How many keys of database 0 (where tenants write) match `pattern`; SCAN, never KEYS, which blocks the server. */
async function countMatching(client: Redis, pattern: string): Promise<TenantSize> {
  let cursor = "0";
  let amount = 0;
  for (let scans = 0; scans < COUNT_SCANS; scans++) {
    const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    amount += keys.length;
    cursor = next;
    if (cursor === "0") return { unit: "keys", amount };
  }
  return { unit: "keys", amount, atLeast: true };
}

/** The keys of every logical database (INFO's keyspace section counts them without a scan). */
async function keyCount(client: Redis): Promise<number> {
  const counts = [...(await client.info("keyspace")).matchAll(/^db\d+:keys=(\d+)/gm)];
  return counts.reduce((sum, match) => sum + Number(match[1]), 0);
}

/** Removes the keys matching `pattern` from every logical database. */
async function unlinkEverywhere(client: Redis, pattern: string): Promise<void> {
  // Tenants made before SELECT was denied may have written to any logical database.
  for (const db of await populatedDatabases(client)) {
    if (db === 0) await unlinkMatching(client, pattern);
    else await inDatabase(client, db, (other) => unlinkMatching(other, pattern));
  }
}

/** Takes one password from a user; a password it no longer has is not an error. */
async function forgetPassword(client: Redis, user: string, password: string): Promise<void> {
  await client.call("ACL", "SETUSER", user, `<${password}`).catch((error: Error) => {
    if (!/does not exist/i.test(error.message)) throw error;
  });
}

/** The logical databases that hold keys (INFO lists only those). */
async function populatedDatabases(client: Redis): Promise<number[]> {
  return [...(await client.info("keyspace")).matchAll(/^db(\d+):/gm)].map((match) => Number(match[1]));
}

/** Runs `work` on a connection of its own to database `db`, leaving the shared one on db 0. */
async function inDatabase(client: Redis, db: number, work: (other: Redis) => Promise<void>): Promise<void> {
  const other = client.duplicate({ db });
  other.on("error", () => undefined);
  try {
    await other.connect();
    await work(other);
  } finally {
    other.disconnect();
  }
}

async function unlinkMatching(client: Redis, pattern: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length > 0) await client.unlink(...keys);
    cursor = next;
  } while (cursor !== "0");
}

/** Redis glob patterns treat `*?[]\` specially; a prefix is matched literally. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

function required(tenant: Tenant): { user: string; prefix: string } {
  if (!tenant.user || !tenant.prefix) throw new Error("a Redis tenant needs a user and a key prefix");
  return { user: tenant.user, prefix: tenant.prefix };
}
