import { mkdirSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import type Database from "better-sqlite3";
import { labtestHome } from "../lab/home.js";
import { openDatabase, preparedStatements } from "../lab/sqlite.js";
import {
  type AuditEntry,
  type AuditSink,
  authorize,
  type Identity,
  mayTouch,
  PermissionError,
  visibleTo,
} from "../laboratory/identity.js";
import type { Laboratory } from "../laboratory/laboratory.js";
import { parseRequest, type Requests, requestSchemas } from "../laboratory/protocol.js";
import { type RequestKind, ROUTES, scopeAllows, wireError } from "../laboratory/wire.js";

const MIGRATIONS = [
  `CREATE TABLE audit (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at TEXT NOT NULL,
     who TEXT NOT NULL,
     what TEXT NOT NULL,
     target TEXT NOT NULL,
     result TEXT NOT NULL,
     origin TEXT NOT NULL
   )`,
  "CREATE INDEX audit_at ON audit (at)",
];

/**
 * The laboratory's audit log, in `<home>/audit.db`. The server, SSH sessions and local commands
 * write it at once: SQLite serialises their writes, and each entry is one row. The database is
 * opened on first use, so a command that records nothing leaves no file behind.
 */
export class AuditLog implements AuditSink {
  readonly file: string;
  private opened: { db: Database.Database; statement: (sql: string) => Database.Statement } | undefined;

  constructor(private readonly home: string) {
    this.file = join(home, "audit.db");
  }

  async record(entry: AuditEntry): Promise<void> {
    this.statement(
      "INSERT INTO audit (at, who, what, target, result, origin) VALUES (@at, @who, @what, @target, @result, @from)",
    ).run(entry);
  }

  /** The entries recorded at or after `since` (ISO 8601; all without it), oldest first. */
  read(since?: string): AuditEntry[] {
    return this.statement(
      "SELECT at, who, what, target, result, origin AS 'from' FROM audit WHERE at >= ? ORDER BY at, id",
    ).all(since ?? "") as AuditEntry[];
  }

  close(): void {
    this.opened?.db.close();
    this.opened = undefined;
  }

  private statement(sql: string): Database.Statement {
    if (!this.opened) {
      mkdirSync(this.home, { recursive: true, mode: 0o711 });
      const db = openDatabase(this.file, MIGRATIONS);
      this.opened = { db, statement: preparedStatements(db) };
    }
    return this.opened.statement(sql);
  }
}

/**
 * `lab` as `identity` may use it, for the server (a token's identity, `from` its address) and
 * for local commands (the system user as an administrator, from "local"): every request is
 * authorized (a PermissionError names what is missing), listings show the identity's apps only,
 * a request that says who asks (and a waiting command is told) says the identity's name, and
 * every request of scope deploy or admin is recorded in `sink` once it has ended — refused and
 * failed ones too, with the error.
 */
export function auditedLaboratory(
  lab: Laboratory,
  identity: Identity,
  sink: AuditSink,
  from: string,
): Laboratory {
  const audited: Record<string, unknown> = { close: () => lab.close() };
  for (const kind of Object.keys(ROUTES) as RequestKind[]) {
    audited[kind] = async (request: unknown, ...rest: unknown[]) => {
      let target = "";
      const asks = async () => {
        // Checked before its app is read from it: a request from a wire may be anything.
        const parsed = askedBy(identity, kind, parseRequest(kind, request));
        target = auditTarget(kind, parsed);
        authorize(identity, kind, parsed);
        if (kind === "tokenCreate") mayGrant(identity, parsed as Requests["tokenCreate"]);
        const method = lab[kind] as (request: unknown, ...rest: unknown[]) => Promise<unknown>;
        const result = await method.call(lab, parsed, ...rest);
        return kind === "list" || kind === "servicesList"
          ? visibleTo(identity, result as { app: string }[])
          : result;
      };
      if (!recorded(kind)) return asks();
      try {
        const result = await asks();
        await record(sink, { who: identity.name, what: kind, target, from }, "ok");
        return result;
      } catch (error) {
        await record(sink, { who: identity.name, what: kind, target, from }, failure(error));
        throw error;
      }
    };
  }
  // Every method of the interface is a request kind (wire.ts's table has them all) or close.
  return audited as unknown as Laboratory;
}

/**
 * Authorizes a request before it runs, as the HTTPS server does before it answers (a stream's
 * 200 is never sent for a request that may not run); a refused one is recorded as
 * auditedLaboratory records the ones it refuses.
 */
export async function authorizeRecorded<K extends RequestKind>(
  identity: Identity,
  kind: K,
  request: Requests[K],
  sink: AuditSink,
  from: string,
): Promise<void> {
  try {
    authorize(identity, kind, request);
  } catch (error) {
    if (recorded(kind))
      await record(
        sink,
        { who: identity.name, what: kind, target: auditTarget(kind, request), from },
        failure(error),
      );
    throw error;
  }
}

/** Whether requests of `kind` go to the audit log: those of scope deploy or admin. */
function recorded(kind: RequestKind): boolean {
  return scopeAllows(ROUTES[kind].scope, "deploy");
}

/** Records a request's end: "ok", or how it failed (see `failure`). */
async function record(
  sink: AuditSink,
  entry: Omit<AuditEntry, "at" | "result">,
  result: string,
): Promise<void> {
  await sink.record({ at: new Date().toISOString(), ...entry, result });
}

/** An error as the audit log says it: its type and summary. */
function failure(error: unknown): string {
  const { type, summary } = wireError(error);
  return `${type}: ${summary}`;
}

/**
 * `request` as `identity` asks it: a field `who` (create, update, delete: see protocol.ts) is the
 * identity's name whatever the client sent, so that a client cannot say it is someone else.
 */
function askedBy<K extends RequestKind>(identity: Identity, kind: K, request: Requests[K]): Requests[K] {
  return "who" in requestSchemas[kind].shape ? { ...request, who: identity.name } : request;
}

/**
 * Refuses a token wider than its maker: an administrator limited to some apps would otherwise
 * make itself a token for every app.
 */
function mayGrant(identity: Identity, { apps = [] }: Requests["tokenCreate"]): void {
  const beyond = apps.length === 0 ? ["every app"] : apps.filter((app) => !mayTouch(identity, app));
  if (identity.apps.length > 0 && beyond.length > 0)
    throw new PermissionError(
      identity,
      `tokenCreate for ${beyond.join(", ")}: it may touch ${identity.apps.join(", ")} only`,
      `name only its apps: ${identity.apps.map((app) => `--app ${app}`).join(" ")}`,
    );
}

/** What a request is about, for the log: its app and experiment, a token's name, a state key, a server. */
function auditTarget<K extends RequestKind>(kind: K, request: Requests[K]): string {
  const { name, experiment, key, id } = request as Record<string, unknown>;
  const parts = [ROUTES[kind].app(request), name ?? experiment ?? key ?? id].filter(
    (part) => part !== undefined,
  );
  return parts.join("/");
}

/**
 * The laboratory of a command run on it: its user (the one sudo was run by, if any) acting as
 * an administrator, its changes recorded in the home's audit log as coming from "local".
 */
export function locallyAudited(lab: Laboratory, env: NodeJS.ProcessEnv): Laboratory {
  const log = new AuditLog(labtestHome(env));
  const user = { name: localUser(env), scope: "admin" as const, apps: [] };
  const audited = auditedLaboratory(lab, user, log, "local");
  return {
    ...audited,
    close: async () => {
      log.close();
      await lab.close();
    },
  };
}

/** Who runs a command on the laboratory, for its audit log: the user sudo was run by, if any. */
export function localUser(env: NodeJS.ProcessEnv): string {
  return env.SUDO_USER || userInfo().username;
}
