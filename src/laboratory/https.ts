import type { IncomingMessage } from "node:http";
import { Agent, request as httpsRequest } from "node:https";
import { LabtestError } from "../errors.js";
import { parseJson, readAnswerStream } from "./answer-stream.js";
import type { Credential } from "./credentials.js";
import {
  CONNECT_TIMEOUT_MS,
  IdentityChangedError,
  isUntrustedCertificate,
  presentedCertificate,
  unreachable,
} from "./pinning.js";
import type { EventSink, Requests } from "./protocol.js";
import { type Answer, RemoteLaboratory } from "./remote.js";
import { LaboratoryError, type RequestKind, ROUTES, requestPath, type WireError } from "./wire.js";

/**
 * A laboratory across HTTPS (see wire.ts for how each request travels). Only the certificate
 * authority pinned at login is trusted, and the server's name is checked against its certificate.
 */
export class HttpsLaboratory extends RemoteLaboratory {
  private readonly origin: URL;
  private readonly agent: Agent;

  constructor(private readonly credential: Credential) {
    super();
    this.origin = new URL(credential.url);
    this.agent = new Agent({ ca: [credential.ca], keepAlive: true });
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  /**
   * Sends one request as ROUTES says and reads its answer: the body, or — when it streams — its
   * events fed to `events` as each line arrives, then the result. When `signal` aborts, the
   * connection closes (the laboratory stops, e.g. following logs) and the call resolves.
   */
  protected call<K extends RequestKind>(
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
            ? readAnswerStream(response, events, {
                lost: (cause) => this.lost(kind, cause),
                garbled: (line) => this.answeredError(kind, 200, line),
              })
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
    const wire = (parseJson(text) as { error?: WireError } | null | undefined)?.error;
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
