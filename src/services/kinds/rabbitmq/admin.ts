import { createHash, randomBytes } from "node:crypto";
import type { ChannelModel } from "amqplib";
import pRetry from "p-retry";
import type { AdminAccess, Endpoint, Tenant } from "../../model.js";
import type { ServerTools, TenantAdmin } from "../kind.js";

/** The administrator of labtest's servers (the official image's RABBITMQ_DEFAULT_USER). */
export const ADMIN_USER = "admin";

/**
 * Debian's script itself first: its /usr/sbin/rabbitmqctl switches to the rabbitmq account and
 * that account's home, where the cookie of a server labtest runs is not. Images that keep the
 * tool elsewhere (the official one) have it on PATH.
 */
const RABBITMQCTL = ["/usr/lib/rabbitmq/bin/rabbitmqctl", "rabbitmqctl"];

/**
 * How amqplib reports credentials the broker refuses (ACCESS_REFUSED) and a vhost it denies
 * (NOT_ALLOWED, which amqplib words as the ConnectionClose it got instead of ConnectionOpenOk).
 */
const REFUSED = /ACCESS.REFUSED|NOT.ALLOWED|got <ConnectionClose/;

/** The node applies imported definitions in the background: how long a new tenant may take to be let in. */
const IMPORT_SETTLE_MS = 15_000;

/** Who logs in where: a user, its password and a vhost. */
export interface Login {
  user: string;
  password: string;
  vhost: string;
}

/**
 * Logs in as administrator (which the broker allows only once it has booted: the readiness
 * check); tenants are made and removed with the server's rabbitmqctl, names only as arguments
 * and passwords only as salted hashes on its standard input.
 */
export async function openAdmin(
  access: AdminAccess,
  { communal, tools }: { communal: boolean; tools?: () => Promise<ServerTools> },
): Promise<TenantAdmin> {
  await (
    await logIn(access, { user: access.user ?? ADMIN_USER, password: access.password ?? "", vhost: "/" })
  ).close();
  async function rabbitmqctl(args: string[], input?: string): Promise<void> {
    if (!tools)
      throw new Error("RabbitMQ tenants are made with the server's rabbitmqctl, which was not given");
    const { run } = await tools();
    await run(RABBITMQCTL, args, input === undefined ? {} : { input });
  }
  /** Creates the tenant or brings it back to its password and permissions (an import overwrites). */
  const make = (tenant: Login) =>
    rabbitmqctl(["import_definitions", "--format", "json"], JSON.stringify(definitions(tenant, communal)));
  return {
    async create(tenant) {
      const wanted = loginOf(tenant);
      const existed = await admitted(access, wanted);
      await make(wanted);
      if (!existed) await untilAdmitted(access, wanted);
      return existed ? "existed" : "created";
    },
    async drop(tenant) {
      const wanted = loginOf(tenant);
      // rabbitmqctl's deletes fail on what is missing, each in its own words: a whole tenant
      // first lets both apply. The vhost goes first: that closes the tenant's connections.
      await make(wanted);
      await rabbitmqctl(["delete_vhost", wanted.vhost]);
      await rabbitmqctl(["delete_user", wanted.user]);
    },
    close: async () => undefined,
  };
}

/** Opens an AMQP connection; rejects when the broker is not up or refuses the login. */
export async function logIn(endpoint: Endpoint, login: Login): Promise<ChannelModel> {
  const amqp = await import("amqplib");
  const connection = await amqp.connect(
    {
      protocol: "amqp",
      hostname: endpoint.host,
      port: endpoint.port,
      username: login.user,
      password: login.password,
      vhost: login.vhost,
      heartbeat: 0,
    },
    { timeout: 5_000 },
  );
  connection.on("error", () => undefined);
  return connection;
}

/** Whether the broker lets `tenant` into its vhost now; rejects when it cannot be asked. */
async function admitted(endpoint: Endpoint, tenant: Login): Promise<boolean> {
  try {
    await (await logIn(endpoint, tenant)).close();
    return true;
  } catch (error) {
    if (REFUSED.test((error as Error).message)) return false;
    throw error;
  }
}

async function untilAdmitted(endpoint: Endpoint, tenant: Login): Promise<void> {
  await pRetry(
    async () => {
      if (!(await admitted(endpoint, tenant)))
        throw new Error(`RabbitMQ did not let ${tenant.user} into ${tenant.vhost} after the import`);
    },
    { retries: 1_000, minTimeout: 50, maxTimeout: 500, maxRetryTime: IMPORT_SETTLE_MS },
  );
}

/** The tenant as definitions to import: its vhost, its user, and every permission on that vhost alone. */
function definitions({ user, password, vhost }: Login, communal: boolean) {
  return {
    vhosts: [{ name: vhost }],
    users: [
      {
        name: user,
        password_hash: passwordHash(password),
        hashing_algorithm: "rabbit_password_hashing_sha256",
        // The experiment's own server is the tenant's to manage.
        tags: communal ? [] : ["administrator"],
      },
    ],
    permissions: [{ user, vhost, configure: ".*", write: ".*", read: ".*" }],
  };
}

/** RabbitMQ's rabbit_password_hashing_sha256: a 4-byte salt, then SHA-256 of salt and password, in base64. */
function passwordHash(password: string): string {
  const salt = randomBytes(4);
  const digest = createHash("sha256").update(salt).update(password, "utf8").digest();
  return Buffer.concat([salt, digest]).toString("base64");
}

function loginOf(tenant: Tenant): Login {
  if (!tenant.user || !tenant.database || tenant.password === null)
    throw new Error("a RabbitMQ tenant needs a user, a password and a vhost");
  return { user: tenant.user, password: tenant.password, vhost: tenant.database };
}
