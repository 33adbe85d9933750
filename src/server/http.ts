import type { AddressInfo } from "node:net";
import fastifySwagger from "@fastify/swagger";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
} from "fastify-type-provider-zod";
import type { z } from "zod";
import { LabtestError, UsageError } from "../errors.js";
import {
  type AuditSink,
  AuthenticationError,
  type Authenticator,
  type Identity,
} from "../laboratory/identity.js";
import type { Laboratory } from "../laboratory/laboratory.js";
import {
  type EventSink,
  PROTOCOL_VERSION,
  parseRequest,
  type Requests,
  requestSchemas,
} from "../laboratory/protocol.js";
import { BODY_LIMIT, type RequestKind, ROUTES, type Route } from "../laboratory/wire.js";
import { answerBody, sendError, sendStream } from "./answers.js";
import { auditedLaboratory, authorizeRecorded } from "./audit.js";
import { type FailedLoginLimit, FailedLogins } from "./failed-logins.js";

export interface LaboratoryServerOptions {
  /** The laboratory the requests are carried out on: the home's embedded one. */
  laboratory: Laboratory;
  /** Port 0: any free port. */
  listen: { host: string; port: number };
  /** PEM: the server's certificate (with its chain) and its key. */
  tls: { cert: string; key: string };
  authenticator: Authenticator;
  audit: AuditSink;
  /** Where the server writes one line per request, and the details of a bug. */
  log: (line: string) => void;
  failedLogins?: FailedLoginLimit;
}

export interface LaboratoryServer {
  url: string;
  port: number;
  /**
   * Stops taking requests and waits for those in flight, `graceMs` at most (then they are cut:
   * what they leave is for gc). Streams that only watch (logs --follow) end at once.
   */
  close(graceMs?: number): Promise<void>;
}

const OPENAPI_PATH = "/api/v1/openapi.json";
const DEFAULT_GRACE_MS = 60_000;

interface InFlight {
  kind: RequestKind;
  controller: AbortController;
}

/** Serves the Laboratory's requests over HTTPS, as wire.ts's ROUTES lays them out. */
export async function startLaboratoryServer(options: LaboratoryServerOptions): Promise<LaboratoryServer> {
  const app = Fastify({ https: options.tls, bodyLimit: BODY_LIMIT, logger: false });
  const inFlight = new Set<InFlight>();
  const identities = new WeakMap<FastifyRequest, Identity>();
  const failedLogins = new FailedLogins(options.failedLogins);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(fastifySwagger, {
    openapi: {
      info: { title: "labtest laboratory", version: String(PROTOCOL_VERSION) },
      components: { securitySchemes: { token: { type: "http", scheme: "bearer" } } },
      security: [{ token: [] }],
    },
    transform: jsonSchemaTransform,
  });

  app.addHook("onRequest", async (request) => {
    if (request.url === OPENAPI_PATH) return;
    await failedLogins.check(request.ip);
    try {
      identities.set(request, await options.authenticator.authenticate(bearerToken(request)));
    } catch (error) {
      if (error instanceof AuthenticationError) await failedLogins.failed(request.ip);
      throw error;
    }
  });
  app.addHook("onResponse", async (request, reply) => {
    const who = identities.get(request)?.name ?? "-";
    const path = request.url.split("?")[0];
    options.log(
      `${request.ip} ${who} ${request.method} ${path} ${reply.statusCode} ${Math.round(reply.elapsedTime)}ms`,
    );
  });
  app.setErrorHandler((error, request, reply) => {
    const known = requestError(error, request);
    if (!(known instanceof LabtestError)) logBug(options, request, known);
    return sendError(reply, known);
  });
  app.setNotFoundHandler((request, reply) =>
    sendError(
      reply,
      new RequestError(404, `the laboratory has no ${request.method} ${request.url.split("?")[0]}`, [
        {
          where: "request",
          what: "no such route",
          fix: `use a labtest of the laboratory's version (protocol ${PROTOCOL_VERSION}); ${OPENAPI_PATH} lists the routes`,
        },
      ]),
    ),
  );
  app.get(OPENAPI_PATH, { schema: { hide: true } }, () => app.swagger());

  const served: Served = { options, identities, inFlight };
  for (const kind of Object.keys(ROUTES) as RequestKind[]) addRoute(app, kind, served);

  await app.listen({ host: options.listen.host, port: options.listen.port });
  const { port } = app.server.address() as AddressInfo;
  const host = options.listen.host.includes(":") ? `[${options.listen.host}]` : options.listen.host;
  return { url: `https://${host}:${port}`, port, close: (graceMs) => shutDown(app, inFlight, graceMs) };
}

/** What the routes share: the server's options, who asked each request, and what is in flight. */
interface Served {
  options: LaboratoryServerOptions;
  identities: WeakMap<FastifyRequest, Identity>;
  inFlight: Set<InFlight>;
}

/** Serves one request kind at its route: checks it, authorizes it, runs it and answers. */
function addRoute<K extends RequestKind>(app: FastifyInstance, kind: K, served: Served): void {
  const { options, identities, inFlight } = served;
  const route: Route<K> = ROUTES[kind];
  const schema = requestSchemas[kind] as z.ZodObject;
  app.route({
    method: route.method,
    url: `/api/v1${route.path.replace(/\{(\w+)\}/g, ":$1")}`,
    config: { kind },
    ...(route.bodyLimit ? { bodyLimit: route.bodyLimit } : {}),
    schema: {
      operationId: kind,
      ...(route.method === "GET" ? { querystring: schema.omit({ v: true }) } : { body: schema }),
    },
    handler: async (request, reply) => {
      const identity = identities.get(request) as Identity;
      const asked = requestOf(kind, request);
      checkPath(kind, asked, request.params as Record<string, string>);
      // Refused before any answer, so a stream's 200 is never sent for a request that may not run.
      await authorizeRecorded(identity, kind, asked, options.audit, request.ip);
      const lab = auditedLaboratory(options.laboratory, identity, options.audit, request.ip);
      const operation: InFlight = { kind, controller: new AbortController() };
      // A client that goes away ends what it watched (logs --follow); 'close' also follows a finished answer.
      reply.raw.on("close", () => operation.controller.abort());
      inFlight.add(operation);
      const run = async (events: EventSink) => {
        try {
          return await route.run(lab, asked, events, operation.controller.signal);
        } catch (error) {
          if (!(error instanceof LabtestError)) logBug(options, request, error);
          throw error;
        } finally {
          inFlight.delete(operation);
        }
      };
      if (route.streams) return sendStream(reply, framingOf(kind, request), run);
      return reply.send(answerBody(await run(() => undefined)));
    },
  });
}

async function shutDown(app: FastifyInstance, inFlight: Set<InFlight>, graceMs = DEFAULT_GRACE_MS) {
  for (const operation of inFlight) if (ROUTES[operation.kind].scope === "read") operation.controller.abort();
  const cut = setTimeout(() => {
    for (const operation of inFlight) operation.controller.abort();
    app.server.closeAllConnections();
  }, graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}

function bearerToken(request: FastifyRequest): string | undefined {
  const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? "");
  return match?.[1];
}

/** The request object of `kind`: the body, or for GET the query's fields and the protocol version. */
function requestOf<K extends RequestKind>(kind: K, request: FastifyRequest): Requests[K] {
  if (ROUTES[kind].method === "GET")
    return { ...(request.query as object), v: PROTOCOL_VERSION } as Requests[K];
  return request.body as Requests[K];
}

/** The path's fields must be the request's: a token allowed on the path's app is checked against the body's. */
function checkPath<K extends RequestKind>(kind: K, request: Requests[K], params: Record<string, string>) {
  const fields: Record<string, unknown> = { ...request, app: ROUTES[kind].app(request) };
  const wrong = Object.entries(params).filter(([field, value]) => String(fields[field] ?? "") !== value);
  if (wrong.length > 0)
    throw new UsageError(
      `the path and the body of this ${kind} request disagree`,
      wrong.map(([field, value]) => ({
        where: `path {${field}}`,
        what: `is ${value}, and the request says ${String(fields[field] ?? "nothing")}`,
        fix: "send the request to the path wire.ts's requestPath gives",
      })),
    );
}

function framingOf(kind: RequestKind, request: FastifyRequest): "ndjson" | "sse" {
  return kind === "logs" && request.headers.accept?.includes("text/event-stream") ? "sse" : "ndjson";
}

/** An error of the request itself, as the HTTP layer found it (too large, not JSON, …), with its status. */
class RequestError extends UsageError {
  constructor(
    readonly status: number,
    summary: string,
    problems: ConstructorParameters<typeof UsageError>[1] = [],
  ) {
    super(summary, problems);
  }
}

/** What went wrong with a request, as the client should hear it. */
function requestError(error: unknown, request: FastifyRequest): unknown {
  if (error instanceof LabtestError) return error;
  const kind = (request.routeOptions.config as { kind?: RequestKind }).kind;
  if (kind && hasZodFastifySchemaValidationErrors(error)) {
    // The same words the embedded laboratory uses for the same mistake.
    try {
      parseRequest(kind, requestOf(kind, request));
    } catch (refused) {
      return refused;
    }
  }
  const status = (error as { statusCode?: unknown }).statusCode;
  if (typeof status === "number" && status >= 400 && status < 500)
    return new RequestError(status, `the laboratory cannot take this request: ${(error as Error).message}`);
  return error;
}

function logBug(options: LaboratoryServerOptions, request: FastifyRequest, error: unknown): void {
  options.log(
    `${request.method} ${request.url.split("?")[0]}: bug: ${(error as Error)?.stack ?? String(error)}`,
  );
}
