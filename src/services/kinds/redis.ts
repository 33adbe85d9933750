import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { roleName } from "../../config/names.js";
import type { AdminAccess, Tenant } from "../model.js";
import type { ServiceKindModule, TenantAdmin } from "./kind.js";
import { userInfo } from "./sql.js";

const ACL_FILE = "users.acl";
/** Throwaway data: no snapshots, no append-only file. */
const EPHEMERAL_SETTINGS = ["--save", "", "--appendonly", "no"];
/**
 * What a tenant may run: everything on its own keys and channels, nothing that reaches other
 * tenants' data or the server itself (FLUSHALL, KEYS, CONFIG, …); INFO stays for clients'
 * ready checks, SCAN goes because it would list other tenants' key names.
 */
const TENANT_RULES = ["+@all", "-@admin", "-@dangerous", "+info", "-scan", "-randomkey"];

/** The ACL file line of the administrator: the password as its SHA-256, never in clear. */
function adminAclLine(password: string): string {
  const hash = createHash("sha256").update(password).digest("hex");
  return `user default on #${hash} ~* &* +@all`;
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

async function openAdmin(access: AdminAccess): Promise<TenantAdmin> {
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
      const pattern = `${escapeGlob(prefix)}*`;
      await client.call(
        "ACL",
        "SETUSER",
        user,
        "reset",
        "on",
        `>${tenant.password ?? ""}`,
        `~${pattern}`,
        `&${pattern}`,
        ...TENANT_RULES,
      );
      await save();
      return existing ? "existed" : "created";
    },
    async drop(tenant) {
      const { user, prefix } = required(tenant);
      await client.call("ACL", "DELUSER", user);
      await save();
      let cursor = "0";
      do {
        const [next, keys] = await client.scan(cursor, "MATCH", `${escapeGlob(prefix)}*`, "COUNT", 1000);
        if (keys.length > 0) await client.unlink(...keys);
        cursor = next;
      } while (cursor !== "0");
    },
    async close() {
      client.disconnect();
    },
  };
}

/** Redis glob patterns treat `*?[]\` specially; a prefix is matched literally. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, "\\$&");
}

function required(tenant: Tenant): { user: string; prefix: string } {
  if (!tenant.user || !tenant.prefix) throw new Error("a Redis tenant needs a user and a key prefix");
  return { user: tenant.user, prefix: tenant.prefix };
}
