import { isAbsolute } from "node:path";
import { z } from "zod";
import { isValidName } from "../config/names.js";
import { repositoryProblem } from "../config/repository.js";
import type { LoadedConfig } from "../config/resolve.js";
import { UsageError } from "../errors.js";
import { MERGE_STRATEGIES } from "../state/lookup.js";
import { MAX_DURATION_SECONDS, PROTOCOL_VERSION } from "./protocol-constants.js";
import { SCOPES } from "./wire.js";

export { MAX_DURATION_SECONDS, PROTOCOL_VERSION };

/**
 * What a client asks of a laboratory, as plain data: every request is JSON as it is, so the
 * embedded laboratory, and a remote one over HTTPS or SSH, take the very same objects. A request
 * names the protocol version it was written for (PROTOCOL_VERSION); a laboratory refuses one it
 * does not speak.
 */
const version = z.literal(PROTOCOL_VERSION);
const name = z.string().min(1);

/** A token's name, which the audit log records as who asked: a plain word, like a key name. */
const tokenName = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9._-]*$/,
    "lowercase letters, digits, '.', '_' and '-', beginning with a letter or digit (e.g. ci-shop)",
  )
  .max(64);

/** A path inside the repository: relative, and not climbing out of it. */
const insideRepository = (path: string) => !isAbsolute(path) && !path.split(/[\\/]/).includes("..");

/**
 * The project as the client read it: its configuration from the working copy (the laboratory
 * reads the branch's own over it, keeping the app's identity and the LABTEST_ variables), and
 * where that configuration sits in its repository ("" at the top): the app runs from the same
 * place in the laboratory's checkouts.
 */
const project = z.object({
  config: z.custom<LoadedConfig>(
    (value) => typeof value === "object" && value !== null && "config" in value && "file" in value,
    "a loaded configuration",
  ),
  subdirectory: z
    .string()
    .refine(insideRepository, "a path inside the repository: relative, without .. (e.g. apps/shop)"),
});

/** An app's name as the laboratory's paths and hosts use it (normalised by the client). */
const appName = z
  .string()
  .refine((app) => isValidName(app), "an app name: lowercase letters, digits and '-'");

/**
 * Where the laboratory takes a release's code from (the client chooses, see code.ts): a repository
 * it clones (a git host's URL), a repository on its own machine (only the embedded laboratory
 * takes one), or a commit pushed first with codePush. Absent: the configuration's code_repo_url.
 */
const code = z.discriminatedUnion("kind", [
  z.object({
    kind: z.literal("url"),
    url: z.string().refine((url) => repositoryProblem(url) === undefined, "a repository git may clone"),
  }),
  z.object({ kind: z.literal("local"), repository: z.string().refine(isAbsolute, "an absolute path") }),
  z.object({
    kind: z.literal("pushed"),
    commit: z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, "a commit id"),
  }),
]);

/** The contents of the configuration's initial_data files, read by the client, by service name. */
const initialData = z.record(z.string(), z.string());

/**
 * Of a request that changes an experiment: how long to wait, in seconds, while another command
 * changes it (default 600; 0: fail at once), and who asks, as a waiting command is told (a
 * server puts its identity's name here, over what the client sent).
 */
const turn = { wait: z.number().min(0).optional(), who: name.optional() };

export const requestSchemas = {
  create: z.object({
    v: version,
    ...turn,
    project,
    branch: name,
    name: name.optional(),
    code: code.optional(),
    initialData: initialData.optional(),
  }),
  update: z.object({
    v: version,
    ...turn,
    project,
    name,
    code: code.optional(),
    initialData: initialData.optional(),
  }),
  /** The branch heads of the app's repository on the laboratory, which a push builds on. */
  codeHave: z.object({ v: version, app: appName }),
  /** A git bundle of the client's branch (base64), fetched into the app's repository on the laboratory. */
  codePush: z.object({ v: version, app: appName, bundle: z.string().min(1) }),
  delete: z.object({ v: version, ...turn, app: name, name }),
  list: z.object({ v: version, app: name.optional() }),
  status: z.object({ v: version, project, name }),
  logs: z.object({ v: version, project, name, service: name.optional(), follow: z.boolean().optional() }),
  exec: z.object({ v: version, project, name, argv: z.array(z.string()).min(1) }),
  servicesUp: z.object({
    v: version,
    project,
    experiment: name,
    names: z.array(name).optional(),
    initialData: initialData.optional(),
  }),
  servicesDown: z.object({
    v: version,
    app: name,
    experiment: name,
    names: z.array(name).optional(),
    force: z.boolean().optional(),
  }),
  servicesList: z.object({ v: version, app: name.optional(), experiment: name.optional() }),
  servicesEnv: z.object({ v: version, project, experiment: name, hostReachable: z.boolean().optional() }),
  stateGet: z.object({ v: version, key: z.string().min(1), merge: z.enum(MERGE_STRATEGIES).optional() }),
  stateCheck: z.object({ v: version }),
  stateSet: z.object({
    v: version,
    key: z.string().min(1),
    value: z.json(),
  }),
  stateUnset: z.object({ v: version, key: z.string().min(1) }),
  secretsInit: z.object({ v: version }),
  secretsRecipients: z.object({ v: version }),
  gc: z.object({ v: version, graceMs: z.number().min(0), dryRun: z.boolean().optional() }),
  servers: z.object({ v: version, id: name.optional() }),
  retireServers: z.object({
    v: version,
    how: z.enum(["stop", "remove"]),
    id: name.optional(),
    force: z.boolean().optional(),
  }),
  tokenCreate: z.object({
    v: version,
    name: tokenName,
    scope: z.enum(SCOPES),
    /** The apps it may touch; none: every app. */
    apps: z.array(name).optional(),
    expiresInSeconds: z.number().int().positive().max(MAX_DURATION_SECONDS).optional(),
  }),
  tokenList: z.object({ v: version }),
  tokenRevoke: z.object({ v: version, name: tokenName }),
  /** The audit log's entries since an ISO 8601 time, or all of them. */
  audit: z.object({ v: version, since: z.iso.datetime().optional() }),
} as const;

export type Requests = { [K in keyof typeof requestSchemas]: z.infer<(typeof requestSchemas)[K]> };
export type Project = z.infer<typeof project>;

/** What a long operation reports while it runs: its steps, and a program's output. */
export type LaboratoryEvent =
  | { type: "step"; text: string }
  | { type: "stdout"; text: string }
  | { type: "stderr"; text: string };

export type EventSink = (event: LaboratoryEvent) => void;

/** Checks a request as a laboratory receives it; a wrong one is the client's error, not the laboratory's. */
export function parseRequest<K extends keyof Requests>(kind: K, request: unknown): Requests[K] {
  const parsed = requestSchemas[kind].safeParse(request);
  if (parsed.success) return parsed.data as Requests[K];
  throw new UsageError(
    `the laboratory cannot take this ${kind} request`,
    parsed.error.issues.map((issue) => ({
      where: issue.path.join(".") || kind,
      what: issue.message,
      fix:
        issue.path[0] === "v"
          ? `this laboratory speaks protocol version ${PROTOCOL_VERSION}: use a labtest of the same version`
          : "correct the request",
    })),
  );
}
