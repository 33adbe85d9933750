import { LabtestError } from "../errors.js";
import type { Requests } from "./protocol.js";
import { type RequestKind, ROUTES, type Scope, scopeAllows } from "./wire.js";

/** Who asks a laboratory over a network: a token's or an SSH key's name, and what it may do. */
export interface Identity {
  name: string;
  scope: Scope;
  /** The apps it may touch; empty: every app. */
  apps: string[];
}

/** Exit code of a refused identity (sysexits EX_NOPERM). */
export const EXIT_REFUSED = 77;

/** No identity, or one the laboratory does not accept (unknown, expired, revoked). HTTP 401. */
export class AuthenticationError extends LabtestError {
  readonly status = 401;

  constructor(summary: string, fix: string) {
    super(summary, [{ where: "credentials", what: summary, fix }], { exitCode: EXIT_REFUSED });
  }
}

/** An identity asking for more than it may. HTTP 403. */
export class PermissionError extends LabtestError {
  readonly status = 403;

  constructor(identity: Identity, what: string, fix: string) {
    super(`${identity.name} may not ${what}`, [{ where: identity.name, what, fix }], {
      exitCode: EXIT_REFUSED,
    });
  }
}

/**
 * Whether `identity` may make `request`; throws a PermissionError naming what is missing. A
 * request of no app in particular (list, services list without an app) is allowed to an
 * app-limited identity: the laboratory then answers with its apps only (see `visibleTo`).
 */
export function authorize<K extends RequestKind>(identity: Identity, kind: K, request: Requests[K]): void {
  const route = ROUTES[kind];
  if (!scopeAllows(identity.scope, route.scope))
    throw new PermissionError(
      identity,
      `${kind}: it needs the ${route.scope} scope, and has ${identity.scope}`,
      `ask an administrator of the laboratory for a token with --scope ${route.scope}`,
    );
  const app = route.app(request);
  if (app !== undefined && !mayTouch(identity, app))
    throw new PermissionError(
      identity,
      `${kind} of app ${app}: it may touch ${identity.apps.join(", ")} only`,
      `use a token made with --app ${app}`,
    );
}

/** Whether `identity` may see or change `app`. */
export function mayTouch(identity: Identity, app: string): boolean {
  return identity.apps.length === 0 || identity.apps.includes(app);
}

/** Of a listing, what `identity` may see: the entries of its apps. */
export function visibleTo<T extends { app: string }>(identity: Identity, entries: T[]): T[] {
  return entries.filter((entry) => mayTouch(identity, entry.app));
}

/** Tells who asks from the credentials a request came with (a bearer token). */
export interface Authenticator {
  /** The identity `credential` stands for; an AuthenticationError when there is none or it is not accepted. */
  authenticate(credential: string | undefined): Promise<Identity>;
}

/** One request that changed (or could change, or revealed credentials of) the laboratory. */
export interface AuditEntry {
  /** ISO 8601. */
  at: string;
  /** The identity's name; a local command's: the system user's. */
  who: string;
  /** The request kind (create, delete, tokenCreate, …), or a change only the laboratory's own user makes (an SSH key's). */
  what: RequestKind | "keyAdd" | "keyRemove";
  /** What it was about: app/experiment, a token's name, a state key. */
  target: string;
  /** "ok", or the error's type and summary. */
  result: string;
  /** Where it came from: an address, "ssh", "local". */
  from: string;
}

/** Where audit entries go. */
export interface AuditSink {
  record(entry: AuditEntry): Promise<void>;
}
