import pRetry, { AbortError } from "p-retry";
import pTimeout from "p-timeout";
import type { Problem } from "../errors.js";
import { ProvisionError } from "./errors.js";
import { serviceKind, type TenantAdmin } from "./kinds/index.js";
import type { ServerProvider, ServerRecord } from "./providers/provider.js";
import { DEFAULT_READY_TIMEOUT_MS, type Readiness } from "./spec.js";

/** A client can hang on a server that resets connections while it starts: each try is bounded. */
const ATTEMPT_TIMEOUT_MS = 2_000;

/**
 * Administrator sessions kept open, one per running server: tenants are created through them.
 * Opening one is the readiness check of a new server.
 */
export class AdminSessions {
  private readonly sessions = new Map<string, Promise<TenantAdmin>>();

  constructor(private readonly provider: (server: ServerRecord) => Promise<ServerProvider>) {}

  /** The session on a server, opened once it answers (within `bound`). */
  open(
    server: ServerRecord,
    bound: Readiness = { timeoutMs: DEFAULT_READY_TIMEOUT_MS, attempts: null },
  ): Promise<TenantAdmin> {
    const key = `${server.id}@${server.admin.host}:${server.admin.port}`;
    let admin = this.sessions.get(key);
    if (!admin) {
      admin = this.provider(server).then((provider) => waitForAdmin(server, provider, bound));
      admin.catch(() => this.sessions.delete(key));
      this.sessions.set(key, admin);
    }
    return admin;
  }

  /** Closes the sessions on a server that is going away. */
  async forget(server: ServerRecord): Promise<void> {
    for (const [key, admin] of this.sessions)
      if (key.startsWith(`${server.id}@`)) {
        this.sessions.delete(key);
        await admin.then((a) => a.close()).catch(() => undefined);
      }
  }

  /** Resolves when the sessions' background work (spare databases being prepared) is done. */
  async settled(): Promise<void> {
    await Promise.all(
      [...this.sessions.values()].map((a) => a.then((admin) => admin.settled?.()).catch(() => undefined)),
    );
  }

  async close(): Promise<void> {
    const admins = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(admins.map((a) => a.then((admin) => admin.close()).catch(() => undefined)));
  }
}

async function waitForAdmin(
  server: ServerRecord,
  provider: ServerProvider,
  bound: Readiness,
): Promise<TenantAdmin> {
  const module = serviceKind(server.kind);
  let lastError: unknown;
  try {
    return await pRetry(async () => {
      try {
        return await pTimeout(
          module.openAdmin(server.admin, {
            communal: server.provisionType === "communal",
            tools: () => provider.tools(server),
          }),
          { milliseconds: ATTEMPT_TIMEOUT_MS },
        );
      } catch (error) {
        lastError = error;
        // A server that answers and is refused (too old a MySQL) will not be accepted by waiting.
        if (error instanceof ProvisionError) throw new AbortError(error);
        if (await provider.stopped(server)) throw new AbortError("the server stopped");
        throw error;
      }
    }, retrySchedule(bound));
  } catch (error) {
    if (error instanceof ProvisionError) throw error;
    const problems: Problem[] = [
      {
        where: `server ${server.id}`,
        what: `last answer: ${(lastError as Error)?.message ?? String(error)}`,
        fix: longerWait(bound),
      },
      { where: "its last log lines", what: `\n${await provider.logs(server)}` },
    ];
    throw new ProvisionError(`${server.kind} server ${server.id} did not become ready`, problems, {
      cause: error,
    });
  }
}

/**
 * When to try a new server again: often, until the timeout; or, with a number of attempts, after
 * waits that double and together fill the timeout (as LabTest did).
 */
function retrySchedule({ timeoutMs, attempts }: Readiness) {
  if (attempts === null)
    return { retries: 100_000, minTimeout: 25, maxTimeout: 100, factor: 1.2, maxRetryTime: timeoutMs };
  const first = attempts > 1 ? timeoutMs / (2 ** (attempts - 1) - 1) : timeoutMs;
  return {
    retries: attempts - 1,
    minTimeout: first,
    maxTimeout: timeoutMs,
    factor: 2,
    maxRetryTime: timeoutMs,
  };
}

function longerWait({ timeoutMs, attempts }: Readiness): string {
  const more = attempts === null ? "" : ` or wait_attempts (now ${attempts})`;
  return `if it only needs longer, raise the service's options.wait_timeout (now ${timeoutMs / 1000} s)${more}`;
}
