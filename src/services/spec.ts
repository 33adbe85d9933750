import { readdir, readFile, stat } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { resourceName, shortHash } from "../config/names.js";
import type { ServiceConfig } from "../config/resolve.js";
import { imageTag } from "../config/schema.js";
import { resolvesInside } from "../lab/confine.js";
import { type StateStore, serviceDefaults } from "../state/index.js";
import { ProvisionError } from "./errors.js";
import { serviceKind } from "./kinds/index.js";
import type { Owner } from "./model.js";
import { imageReference } from "./providers/docker.js";
import type { ServerSpec } from "./providers/provider.js";

/** A server's spec, with the name an earlier labtest gave the same server (null: the same name). */
export type ConfiguredServer = ServerSpec & { formerId: string | null };

/**
 * The server a service needs: the configuration's options over the administrator's state
 * defaults for its provider and kind (`/services/<provider>/<kind>/<app>`). A communal server
 * is named by the version it runs and a hash of what makes it distinct (kind, image or version,
 * durability) within `laboratory`.
 */
export async function serverSpec(
  state: StateStore,
  laboratory: string,
  owner: Owner,
  config: ServiceConfig,
): Promise<ConfiguredServer> {
  const module = serviceKind(config.service);
  const defaults = await serviceDefaults(state, config.provider, config.service, owner.app);
  const text = (value: unknown) =>
    typeof value === "string" || typeof value === "number" ? String(value) : null;
  const options = config.options;
  const command = options.command ?? (defaults.command as string | string[] | undefined);
  const ephemeral = options.ephemeral ?? defaults.ephemeral === true;
  const base = {
    kind: config.service,
    module,
    owner: config.provision_type === "independent" ? owner : null,
    provisionType: config.provision_type === "independent" ? ("independent" as const) : ("communal" as const),
    image: options.image ?? text(defaults.image),
    version: options.version ?? text(defaults.version),
    command: typeof command === "string" ? command.split(/\s+/).filter(Boolean) : (command ?? null),
    environment: {
      ...Object.fromEntries(
        Object.entries((defaults.environment as Record<string, unknown> | undefined) ?? {}).map(([k, v]) => [
          k,
          String(v),
        ]),
      ),
      ...options.environment,
    },
    ephemeral,
    url: text(defaults.url),
    // The administrator's to set, never the tenant's own configuration: it protects the others.
    tenantConnectionLimit:
      config.provision_type === "independent" ? null : connectionLimit(defaults.tenant_connection_limit),
  };
  if (config.provider === "aws")
    throw new ProvisionError("provider aws is not available yet", [
      {
        where: `service ${owner.service}`,
        what: "RDS and ElastiCache come later",
        fix: "use provider: docker, local or external",
      },
    ]);
  if (base.provisionType === "independent")
    // The laboratory's id keeps two laboratories on one engine from wanting one container name.
    return {
      ...base,
      id: resourceName(owner.app, owner.experiment, owner.service, laboratory),
      formerId: null,
    };
  const image = config.provider === "docker" ? imageReference({ ...base, id: "" }) : null;
  const distinct =
    image ??
    (config.provider === "external"
      ? (base.url ?? "").replace(/\/\/[^@/]*@/, "//")
      : (base.version ?? "default"));
  const hash = shortHash(
    `${laboratory}|${config.provider}|${distinct}|${ephemeral ? "ephemeral" : "durable"}`,
  );
  const named = (version: string) => resourceName("communal", config.service, version, hash);
  // An image's tag says what it runs: the version option only tags an image that has none.
  const id = named((image && imageTag(image)) ?? base.version ?? "default");
  // Earlier, a docker server was named for the version option or the kind's default version.
  const formerId = named(base.version ?? (image ? module.container.version : "default"));
  return { ...base, id, formerId: formerId === id ? null : formerId };
}

/** How long, and how many times, labtest tries to reach a new server before giving up. */
export interface Readiness {
  timeoutMs: number;
  /** null: as often as it can until the timeout (every 25 to 100 ms). */
  attempts: number | null;
}

/** How long a new server may take to answer when its options do not say (MariaDB initialises for a while on a small machine). */
export const DEFAULT_READY_TIMEOUT_MS = 120_000;

/** The bound of a service's readiness: its `wait_timeout` (seconds) and `wait_attempts`, else the default. */
export function readiness(options: ServiceConfig["options"]): Readiness {
  return {
    timeoutMs: options.wait_timeout === undefined ? DEFAULT_READY_TIMEOUT_MS : options.wait_timeout * 1000,
    attempts: options.wait_attempts ?? null,
  };
}

/** Connections per communal tenant when state sets none: a fifth of PostgreSQL's default 100. */
export const DEFAULT_TENANT_CONNECTION_LIMIT = 20;

function connectionLimit(value: unknown): number | null {
  if (value === undefined) return DEFAULT_TENANT_CONNECTION_LIMIT;
  if (value === null || value === 0 || value === -1) return null;
  if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
  throw new ProvisionError("tenant_connection_limit in state is not a connection count", [
    {
      where: "state: /services/<provider>/<service>/<app>: tenant_connection_limit",
      what: `expected a positive whole number (or null for no limit), got ${JSON.stringify(value)}`,
      fix: "set it with labtest state set",
    },
  ]);
}

/**
 * The SQL of `options.initial_data`: a file, or a directory whose newest file is taken (as
 * LabTest did, so a nightly dump dropped into the directory is picked up).
 */
export async function initialData(
  path: string,
  directory: string,
  service: string,
  within?: string,
): Promise<string> {
  const where = `service ${service}: options.initial_data`;
  const full = isAbsolute(path) ? path : join(directory, path);
  const info = await stat(full).catch(() => undefined);
  if (!info)
    throw new ProvisionError(`initial data ${full} does not exist`, [
      {
        where,
        what: `no file or directory at ${full}`,
        fix: "point it at an SQL dump, relative to the configuration file",
      },
    ]);
  let file = full;
  if (info.isDirectory()) {
    const files = await Promise.all(
      (await readdir(full)).map(async (name) => ({ name, info: await stat(join(full, name)) })),
    );
    const newest = files.filter((f) => f.info.isFile()).sort((a, b) => b.info.mtimeMs - a.info.mtimeMs)[0];
    if (!newest)
      throw new ProvisionError(`initial data directory ${full} is empty`, [
        { where, what: "no file to load", fix: "put an SQL dump in it" },
      ]);
    file = join(full, newest.name);
  }
  if (within && !(await resolvesInside(within, file)))
    throw new ProvisionError(`initial data ${file} is outside the branch's checkout`, [
      {
        where,
        what: "a branch's configuration may load only files of its own checkout (links are followed)",
        fix: "commit the dump to the branch, or load it with labtest services up from your working copy",
      },
    ]);
  return readFile(file, "utf8");
}
