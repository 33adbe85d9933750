import pTimeout from "p-timeout";
import { serviceKind, type TenantAdmin } from "./kinds/index.js";
import type { Endpoint, Tenant, TenantSize } from "./model.js";
import type { ServerRecord } from "./providers/provider.js";

/** A client can hang on a server that resets connections: logging in is bounded. */
const LOGIN_TIMEOUT_MS = 2_000;
/** A size is a detail of `status`: a server slow to measure loses its size, not its status. */
const SIZE_TIMEOUT_MS = 2_000;

/**
 * One look at running servers, for `services list` and `status`: each server is logged in to
 * once, however many of the looked-at services it holds, and that session measures their tenants.
 * Sessions of their own, not the laboratory's kept ones: a look must not prepare a server for
 * tenants (spare databases). Close it when the look is done.
 */
export class ServerVisits {
  private readonly sessions = new Map<string, Promise<TenantAdmin>>();

  /** Why the running `server` does not answer its administrator at `at` now; null when it does. */
  async problem(server: ServerRecord, at: Endpoint): Promise<string | null> {
    try {
      await this.session(server, at);
      return null;
    } catch (error) {
      return `it does not answer: ${(error as Error).message}`;
    }
  }

  /**
   * How much `tenant` of the running `server` holds now; null when its kind or the server cannot
   * tell (in time, or at all).
   */
  async size(server: ServerRecord, at: Endpoint, tenant: Tenant): Promise<TenantSize | null> {
    try {
      const admin = await this.session(server, at);
      if (!admin.size) return null;
      const dedicated = server.provisionType === "independent";
      return await pTimeout(admin.size(tenant, { dedicated }), { milliseconds: SIZE_TIMEOUT_MS });
    } catch {
      return null;
    }
  }

  /** Ends the sessions; one still busy measuring is let go rather than waited for. */
  async close(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(
      sessions.map((session) =>
        session
          .then((admin) => pTimeout(admin.close(), { milliseconds: LOGIN_TIMEOUT_MS }))
          .catch(() => undefined),
      ),
    );
  }

  private session(server: ServerRecord, at: Endpoint): Promise<TenantAdmin> {
    const key = `${server.id}@${at.host}:${at.port}`;
    let session = this.sessions.get(key);
    if (!session) {
      const opening = serviceKind(server.kind).openAdmin({ ...server.admin, ...at }, { communal: false });
      // One that opens after the bound is closed as soon as it does.
      opening.catch(() => undefined);
      session = pTimeout(opening, { milliseconds: LOGIN_TIMEOUT_MS });
      session.catch(() => opening.then((admin) => admin.close()).catch(() => undefined));
      this.sessions.set(key, session);
    }
    return session;
  }
}
