import type { IncomingMessage } from "node:http";
import { Agent, request as httpsRequest } from "node:https";
import { LabtestError } from "../errors.js";
import type { Credential } from "./credentials.js";
import type { Laboratory } from "./laboratory.js";
import {
  CONNECT_TIMEOUT_MS,
  IdentityChangedError,
  isUntrustedCertificate,
  presentedCertificate,
  unreachable,
} from "./pinning.js";
import type { EventSink, Requests } from "./protocol.js";
import {
  LaboratoryError,
  type RequestKind,
  ROUTES,
  requestPath,
  type StreamLine,
  type WireError,
} from "./wire.js";

/** What a laboratory answers a request of kind K with: what the Laboratory method resolves to. */
type Answer<K extends RequestKind> = Awaited<ReturnType<Laboratory[K]>>;

/**
 * A laboratory across HTTPS (see wire.ts for how each request travels). Only the certificate
 * authority pinned at login is trusted, and the server's name is checked against its certificate.
 */
export class HttpsLaboratory implements Laboratory {
  private readonly origin: URL;
  private readonly agent: Agent;

  constructor(private readonly credential: Credential) {
    this.origin = new URL(credential.url);
    this.agent = new Agent({ ca: [credential.ca], keepAlive: true });
  }

  create(request: Requests["create"], events?: EventSink) {
    return this.call("create", request, events);
  }
  update(request: Requests["update"], events?: EventSink) {
    return this.call("update", request, events);
  }
  codeHave(request: Requests["codeHave"]) {
    return this.call("codeHave", request);
  }
  codePush(request: Requests["codePush"]) {
    return this.call("codePush", request);
  }
  delete(request: Requests["delete"]) {
    return this.call("delete", request);
  }
  list(request: Requests["list"]) {
    return this.call("list", request);
  }
  status(request: Requests["status"]) {
    return this.call("status", request);
  }
  logs(request: Requests["logs"], events: EventSink, signal?: AbortSignal) {
    return this.call("logs", request, events, signal);
  }
  exec(request: Requests["exec"], events: EventSink) {
    return this.call("exec", request, events);
  }
  servicesUp(request: Requests["servicesUp"]) {
    return this.call("servicesUp", request);
  }
  servicesDown(request: Requests["servicesDown"]) {
    return this.call("servicesDown", request);
  }
  servicesList(request: Requests["servicesList"]) {
    return this.call("servicesList", request);
  }
  servicesEnv(request: Requests["servicesEnv"]) {
    return this.call("servicesEnv", request);
  }
  stateGet(request: Requests["stateGet"]) {
    return this.call("stateGet", request);
  }
  stateCheck(request: Requests["stateCheck"]) {
    return this.call("stateCheck", request);
  }
  async stateSet(request: Requests["stateSet"]) {
    await this.call("stateSet", request);
  }
  stateUnset(request: Requests["stateUnset"]) {
    return this.call("stateUnset", request);
  }
  secretsInit(request: Requests["secretsInit"]) {
    return this.call("secretsInit", request);
  }
  secretsRecipients(request: Requests["secretsRecipients"]) {
    return this.call("secretsRecipients", request);
  }
  gc(request: Requests["gc"]) {
    return this.call("gc", request);
  }
  servers(request: Requests["servers"]) {
    return this.call("servers", request);
  }
  retireServers(request: Requests["retireServers"]) {
    return this.call("retireServers", request);
  }
  tokenCreate(request: Requests["tokenCreate"]) {
    return this.call("tokenCreate", request);
  }
  tokenList(request: Requests["tokenList"]) {
    return this.call("tokenList", request);
  }
  tokenRevoke(request: Requests["tokenRevoke"]) {
    return this.call("tokenRevoke", request);
  }
  audit(request: Requests["audit"]) {
    return this.call("audit", request);
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  /**
   * Sends one request as ROUTES says and reads its answer: the body, or — when it streams — its
   * events fed to `events` as each line arrives, then the result. When `signal` aborts, the
   * connection closes (the laboratory stops, e.g. following logs) and the call resolves.
   */
  private call<K extends RequestKind>(
    kind: K,
    request: Requests[K],
    events?: EventSink,
    signal?: AbortSignal,
  ): Promise<Answer<K>> {
    const route = ROUTES[kind];
    const url = new URL(requestPath(kind, request), this.origin);
    if (route.method === "GET")
      for (const [field, value] of Object.entries(request))
        if (field !== "v" && value !== undefined) url.searchParams.set(field, String(value));
    const body = route.method === "GET" ? undefined : JSON.stringify(request);
    return new Promise<Answer<K>>((resolve, reject) => {
      const stopped = () => resolve(undefined as Answer<K>);
      if (signal?.aborted) return stopped();
      const sent = httpsRequest(url, {
        method: route.method,
        agent: this.agent,
        headers: {
          authorization: `Bearer ${this.credential.token}`,
          accept: route.streams ? "application/x-ndjson" : "application/json",
          ...(body === undefined
            ? {}
            : { "content-type": "application/json", "content-length": Buffer.byteLength(body) }),
        },
      });
      const abort = () => {
        sent.destroy();
        stopped();
      };
      signal?.addEventListener("abort", abort, { once: true });
      const settle =
        <A extends unknown[]>(then: (...args: A) => void) =>
        (...args: A) => {
          signal?.removeEventListener("abort", abort);
          then(...args);
        };
      const done = settle(resolve);
      const fail = settle(reject);
      const connected = this.limitConnecting(sent);
      sent.on("error", (error) => {
        if (signal?.aborted) return;
        this.connectionError(kind, error, connected()).then(fail, fail);
      });
      sent.on("response", (response) => {
        response.setEncoding("utf8");
        const answer =
          response.statusCode === 200 && route.streams
            ? this.readStream(kind, response, events)
            : this.readBody(kind, response);
        answer.then(
          (result) => done(result as Answer<K>),
          (error: unknown) => !signal?.aborted && fail(error),
        );
      });
      sent.end(body);
    });
  }

  /** A whole answer: the result when 200, else the error the laboratory answered with. */
  private readBody(kind: RequestKind, response: IncomingMessage): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let text = "";
      response.on("data", (chunk: string) => {
        text += chunk;
      });
      response.on("end", () => {
        const answer = response.statusCode === 200 ? parseJson(text || "{}") : undefined;
        if (answer !== undefined) resolve(answer);
        else reject(this.answeredError(kind, response.statusCode ?? 0, text));
      });
      response.on("aborted", () => reject(this.lost(kind)));
    });
  }

  /** A streamed answer: each event to `events` as its line arrives, then the result or the error. */
  private readStream(kind: RequestKind, response: IncomingMessage, events?: EventSink): Promise<unknown> {
    return new Promise((resolve, reject) => {
      let pending = "";
      let ended = false;
      const take = (line: string) => {
        if (!line.trim() || ended) return;
        const parsed = parseJson(line) as StreamLine | undefined;
        if (parsed !== undefined && "event" in parsed) return events?.(parsed.event);
        ended = true;
        if (parsed === undefined) {
          response.destroy();
          reject(this.answeredError(kind, 200, line));
        } else if ("result" in parsed) resolve(parsed.result);
        else reject(new LaboratoryError(parsed.error));
      };
      response.on("data", (chunk: string) => {
        const lines = (pending + chunk).split("\n");
        pending = lines.pop() ?? "";
        for (const line of lines) take(line);
      });
      response.on("end", () => {
        take(pending);
        if (!ended) reject(this.lost(kind));
      });
      response.on("aborted", () => reject(this.lost(kind)));
    });
  }

  /**
   * Every network wait has its bound: making the connection may take CONNECT_TIMEOUT_MS, the
   * answer as long as the operation (a create, logs --follow). Returns whether it was made.
   */
  private limitConnecting(sent: ReturnType<typeof httpsRequest>): () => boolean {
    let connected = false;
    sent.once("socket", (socket) => {
      if (!socket.connecting) {
        connected = true;
        return;
      }
      const timer = setTimeout(
        () => sent.destroy(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })),
        CONNECT_TIMEOUT_MS,
      );
      socket.once("secureConnect", () => {
        connected = true;
        clearTimeout(timer);
      });
      socket.once("close", () => clearTimeout(timer));
    });
    return () => connected;
  }

  private async connectionError(
    kind: RequestKind,
    error: Error,
    afterConnecting: boolean,
  ): Promise<LabtestError> {
    if (isUntrustedCertificate(error)) {
      const presented = await presentedCertificate(this.origin).catch(() => undefined);
      return new IdentityChangedError(
        this.origin.origin,
        this.credential.fingerprint,
        presented?.fingerprint,
        error.message,
      );
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (afterConnecting || code === "ECONNRESET" || code === "EPIPE") return this.lost(kind, error);
    return unreachable(this.origin, error);
  }

  private lost(kind: RequestKind, cause?: unknown): LabtestError {
    const where = this.origin.origin;
    return new LabtestError(
      `the connection to the laboratory at ${where} was lost during ${kind}`,
      [
        {
          where,
          what: "the connection closed before the laboratory's answer arrived",
          fix: `labtest list shows what the laboratory did; run it again once ${where} answers`,
        },
      ],
      { cause },
    );
  }

  /** A refusal or failure answered by the laboratory, raised as the local laboratory would have raised it. */
  private answeredError(kind: RequestKind, status: number, text: string): LabtestError {
    const wire = (() => {
      try {
        return (JSON.parse(text) as { error?: WireError }).error;
      } catch {
        return undefined;
      }
    })();
    if (wire?.type && typeof wire.exitCode === "number") return new LaboratoryError(wire);
    const where = this.origin.origin;
    return new LabtestError(`the laboratory at ${where} answered ${kind} with HTTP ${status}`, [
      {
        where,
        what: text.trim().slice(0, 300) || "an empty answer",
        fix: "check that the address is a labtest laboratory (labtest serve) of this labtest's version",
      },
    ]);
  }
}

/** A JSON answer, or a line of a streamed one; undefined when it is not JSON (not a laboratory answering). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
