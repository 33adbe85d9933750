import { resourceName, shortHash } from "../config/names.js";
import type { ServiceConfig } from "../config/resolve.js";
import { type StateStore, serviceDefaults } from "../state/index.js";
import { ProvisionError } from "./errors.js";
import { serviceKind } from "./kinds/index.js";
import type { Owner } from "./model.js";
import type { CommunalIdentity, ServerProvider, ServerSpec } from "./providers/provider.js";

/** A server's spec, with the name an earlier labtest gave the same server (null: the same name). */
export type ConfiguredServer = ServerSpec & { formerId: string | null };

/**
 * The server a service needs: the configuration's options over the administrator's state
 * defaults for its provider and kind (`/services/<provider>/<kind>/<app>`). A communal server
 * is named by the version it runs and a hash of what makes it distinct (kind, what its
 * `provider` tells its servers apart by, durability) within `laboratory`.
 */
export async function serverSpec(
  state: StateStore,
  laboratory: string,
  owner: Owner,
  config: ServiceConfig,
  provider: ServerProvider,
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
  if (base.provisionType === "independent")
    // The laboratory's id keeps two laboratories on one engine from wanting one container name.
    return {
      ...base,
      id: resourceName(owner.app, owner.experiment, owner.service, laboratory),
      formerId: null,
    };
  const spec = { ...base, id: "" };
  const { distinct, version, formerVersion } = provider.communalIdentity?.(spec) ?? byVersion(spec);
  const hash = shortHash(
    `${laboratory}|${config.provider}|${distinct}|${ephemeral ? "ephemeral" : "durable"}`,
  );
  const named = (shown: string) => resourceName("communal", config.service, shown, hash);
  const id = named(version);
  const formerId = named(formerVersion);
  return { ...base, id, formerId: formerId === id ? null : formerId };
}

/** A communal server told apart and named by its version alone. */
function byVersion(spec: ServerSpec): CommunalIdentity {
  const version = spec.version ?? "default";
  return { distinct: version, version, formerVersion: version };
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
