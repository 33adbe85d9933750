import { EXIT_BUG, LabtestError, type Problem } from "../errors.js";
import type { Laboratory } from "./laboratory.js";
import type { EventSink, Requests } from "./protocol.js";
import { MAX_BUNDLE_BYTES } from "./protocol-constants.js";

/**
 * How the Laboratory's requests travel over HTTPS (and, framed the same, over SSH): one table
 * that the server and the client both read, so a request kind is added in one place.
 */

/** What a token (or an SSH key) may do: each scope includes the ones before it. */
export const SCOPES = ["read", "deploy", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

export type RequestKind = keyof Requests;

/** The largest body a request takes unless its route says more: requests with initial data carry whole database dumps. */
export const BODY_LIMIT = 64 * 1024 * 1024;

export interface Route<K extends RequestKind> {
  method: "GET" | "POST" | "PUT" | "DELETE";
  /** Under /api/v1; `{field}` is taken from the request's field of that name. */
  path: string;
  /** The least scope that may ask it. */
  scope: Scope;
  /**
   * Whether the answer is a stream of progress or output events before the result (NDJSON);
   * otherwise the result is the body.
   */
  streams: boolean;
  /** The largest body it takes, in bytes, when it is larger than BODY_LIMIT. */
  bodyLimit?: number;
  /** The app the request concerns, for tokens limited to some apps; undefined: none in particular. */
  app: (request: Requests[K]) => string | undefined;
  /** Carries the request out on a laboratory (the server's embedded one). */
  run: (lab: Laboratory, request: Requests[K], events: EventSink, signal: AbortSignal) => Promise<unknown>;
}

const projectApp = (request: { project: { config: { config: { app_name: string } } } }) =>
  request.project.config.config.app_name;
const noApp = () => undefined;

export const ROUTES: { [K in RequestKind]: Route<K> } = {
  list: {
    method: "GET",
    path: "/experiments",
    scope: "read",
    streams: false,
    app: (r) => r.app,
    run: (lab, r) => lab.list(r),
  },
  create: {
    method: "POST",
    path: "/apps/{app}/experiments",
    scope: "deploy",
    streams: true,
    app: projectApp,
    run: (lab, r, events) => lab.create(r, events),
  },
  update: {
    method: "PUT",
    path: "/apps/{app}/experiments/{name}",
    scope: "deploy",
    streams: true,
    app: projectApp,
    run: (lab, r, events) => lab.update(r, events),
  },
  codeHave: {
    method: "GET",
    path: "/apps/{app}/code",
    scope: "deploy",
    streams: false,
    app: (r) => r.app,
    run: (lab, r) => lab.codeHave(r),
  },
  codePush: {
    method: "POST",
    path: "/apps/{app}/code",
    scope: "deploy",
    streams: false,
    // The bundle travels as base64 in JSON: 4 characters for 3 bytes, and the rest of the request.
    bodyLimit: Math.ceil((MAX_BUNDLE_BYTES * 4) / 3) + 64 * 1024,
    app: (r) => r.app,
    run: (lab, r) => lab.codePush(r),
  },
  // Streams: it may wait its turn, and says for whom (and whose update it cancels).
  delete: {
    method: "DELETE",
    path: "/apps/{app}/experiments/{name}",
    scope: "deploy",
    streams: true,
    app: (r) => r.app,
    run: (lab, r, events) => lab.delete(r, events),
  },
  status: {
    method: "POST",
    path: "/apps/{app}/experiments/{name}/status",
    scope: "read",
    streams: false,
    app: projectApp,
    run: (lab, r) => lab.status(r),
  },
  logs: {
    method: "POST",
    path: "/apps/{app}/experiments/{name}/logs",
    scope: "read",
    streams: true,
    app: projectApp,
    run: (lab, r, events, signal) => lab.logs(r, events, signal),
  },
  exec: {
    method: "POST",
    path: "/apps/{app}/experiments/{name}/exec",
    scope: "deploy",
    streams: true,
    app: projectApp,
    run: (lab, r, events, signal) => lab.exec(r, events, signal),
  },
  servicesUp: {
    method: "POST",
    path: "/apps/{app}/experiments/{experiment}/services",
    scope: "deploy",
    streams: false,
    app: projectApp,
    run: (lab, r) => lab.servicesUp(r),
  },
  servicesDown: {
    method: "DELETE",
    path: "/apps/{app}/experiments/{experiment}/services",
    scope: "deploy",
    streams: false,
    app: (r) => r.app,
    run: (lab, r) => lab.servicesDown(r),
  },
  servicesList: {
    method: "GET",
    path: "/services",
    scope: "read",
    streams: false,
    app: (r) => r.app,
    run: (lab, r) => lab.servicesList(r),
  },
  // The services' credentials: those who may deploy the app may see them, as they may exec in it.
  servicesEnv: {
    method: "POST",
    path: "/apps/{app}/experiments/{experiment}/services/env",
    scope: "deploy",
    streams: false,
    app: projectApp,
    run: (lab, r) => lab.servicesEnv(r),
  },
  stateGet: {
    method: "GET",
    path: "/state",
    scope: "read",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.stateGet(r),
  },
  stateCheck: {
    method: "GET",
    path: "/state/check",
    scope: "admin",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.stateCheck(r),
  },
  stateSet: {
    method: "PUT",
    path: "/state",
    scope: "admin",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.stateSet(r),
  },
  stateUnset: {
    method: "DELETE",
    path: "/state",
    scope: "admin",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.stateUnset(r),
  },
  secretsInit: {
    method: "POST",
    path: "/secrets/init",
    scope: "admin",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.secretsInit(r),
  },
  secretsRecipients: {
    method: "GET",
    path: "/secrets/recipients",
    scope: "read",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.secretsRecipients(r),
  },
  gc: { method: "POST", path: "/gc", scope: "admin", streams: false, app: noApp, run: (lab, r) => lab.gc(r) },
  servers: {
    method: "GET",
    path: "/servers",
    scope: "read",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.servers(r),
  },
  retireServers: {
    method: "POST",
    path: "/servers/retire",
    scope: "admin",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.retireServers(r),
  },
  tokenCreate: {
    method: "POST",
    path: "/tokens",
    scope: "admin",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.tokenCreate(r),
  },
  tokenList: {
    method: "GET",
    path: "/tokens",
    scope: "admin",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.tokenList(r),
  },
  tokenRevoke: {
    method: "DELETE",
    path: "/tokens/{name}",
    scope: "admin",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.tokenRevoke(r),
  },
  audit: {
    method: "GET",
    path: "/audit",
    scope: "admin",
    streams: false,
    app: noApp,
    run: (lab, r) => lab.audit(r),
  },
};

/** The path of a request, its `{field}`s filled in (each one URL-encoded). */
export function requestPath<K extends RequestKind>(kind: K, request: Requests[K]): string {
  const fields: Record<string, unknown> = { ...request, app: ROUTES[kind].app(request) };
  return `/api/v1${ROUTES[kind].path.replace(/\{(\w+)\}/g, (_, field: string) =>
    encodeURIComponent(String(fields[field] ?? "")),
  )}`;
}

/** Whether `granted` includes `needed`. */
export function scopeAllows(granted: Scope, needed: Scope): boolean {
  return SCOPES.indexOf(granted) >= SCOPES.indexOf(needed);
}

/** One line of a streamed answer: an event, then the result or an error. */
export type StreamLine = { event: Parameters<EventSink>[0] } | { result: unknown } | { error: WireError };

/** An error as it crosses the wire: what `--json` prints locally, and the exit code it has. */
export interface WireError {
  type: string;
  /** The summary and the problems, as the CLI prints them. */
  message: string;
  summary: string;
  problems: Problem[];
  exitCode: number;
}

/** An error for the wire; anything but a LabtestError is a bug, said without its stack. */
export function wireError(error: unknown): WireError {
  if (error instanceof LabtestError)
    return {
      type: error.name,
      message: error.message,
      summary: error.summary,
      problems: error.problems,
      exitCode: error.exitCode,
    };
  const summary = `the laboratory hit a bug in labtest (${(error as Error)?.message ?? String(error)}); its log has the details`;
  return {
    type: "InternalError",
    message: summary,
    summary,
    problems: [],
    exitCode: EXIT_BUG,
  };
}

/** An error a laboratory answered with, as the client raises it: the same message, problems and exit code. */
export class LaboratoryError extends LabtestError {
  constructor(wire: WireError) {
    super(wire.summary, wire.problems, { exitCode: wire.exitCode });
    this.name = wire.type;
  }
}
