import type { Provider, ServiceKind } from "../../config/schema.js";
import type { Docker } from "../../lab/docker.js";
import type { Sweep } from "../../lab/garbage.js";
import type { Registry } from "../../lab/registry.js";
import type { ServerTools, ServiceKindModule } from "../kinds/kind.js";
import type { AdminAccess, Endpoint, Owner } from "../model.js";

/** What to run: one server of a kind, communal (for every experiment) or dedicated to one. */
export interface ServerSpec {
  /** Stable name of the server on the laboratory (container name, data directory). */
  id: string;
  kind: ServiceKind;
  module: ServiceKindModule;
  provisionType: "communal" | "independent";
  /** The experiment's service a dedicated server belongs to; null for a communal one. */
  owner: Owner | null;
  /** Options of the configuration merged over the state defaults of the provider and kind. */
  image: string | null;
  version: string | null;
  command: string[] | null;
  environment: Record<string, string>;
  ephemeral: boolean;
  /** The admin URL of an external server. */
  url: string | null;
  /** Connections each tenant may hold (communal servers; state `tenant_connection_limit`); null: unlimited. */
  tenantConnectionLimit: number | null;
}

/** A server as the laboratory records it, between commands. */
export interface ServerRecord {
  id: string;
  provider: Provider;
  kind: ServiceKind;
  provisionType: "communal" | "independent";
  owner: Owner | null;
  /** Administrator access from the laboratory host. */
  admin: AdminAccess;
  /** Provider-specific handles: container and volume, or process and data directory. */
  details: Record<string, string | number | boolean | null>;
  createdAt: string;
}

/** How a server fares now, for one experiment's service on it. */
export interface ServerState {
  running: boolean;
  /** Where the laboratory host reaches it now; null when it cannot. */
  endpoint: Endpoint | null;
  /** Why it cannot serve the experiment (gone, stopped, off the experiment's network); null when it can. */
  problem: string | null;
}

/** What a communal server is told apart and named by (see ServerProvider.communalIdentity). */
export interface CommunalIdentity {
  /** What makes two of its servers of one kind different servers (an image, an admin URL, a version). */
  distinct: string;
  /** The version its name shows. */
  version: string;
  /** The version an earlier labtest named the same server by. */
  formerVersion: string;
}

/** What a provider needs of the laboratory it serves. */
export interface ProviderContext {
  registry: Registry;
  docker?: Docker;
}

/**
 * A provider as the registry (providers/index.ts) knows it: what it can run, read by the
 * configuration's schema, and its implementation, loaded on first use (engine clients are heavy).
 */
export interface ServiceProviderModule {
  /**
   * Whether it makes servers of its own; one that does not makes tenants on a server the
   * administrator names, so it serves communal services only and has no durability to set.
   */
  createsServers: boolean;
  /** Whether it can run a server of the kind (it has the kind's recipe for it). */
  offers(kind: ServiceKindModule): boolean;
  open(context: ProviderContext): Promise<ServerProvider>;
  /** A provider configurations may name that this labtest cannot run yet: never suggested. */
  planned?: true;
}

/** Where servers run. Providers start and stop servers; tenants are the kind's business. */
export interface ServerProvider {
  /** How its communal servers are told apart and named; without it, by their version (or "default"). */
  communalIdentity?(spec: ServerSpec): CommunalIdentity;
  /** Fails, changing nothing, when the server could not be made here (a missing program, image or URL). */
  check(spec: ServerSpec): Promise<void>;
  /**
   * Makes the server exist and run (creating, starting or finding it), calling `save` as soon
   * as there is something to record, so a crash leaves nothing unrecorded. Readiness is
   * awaited by the caller.
   */
  ensure(
    spec: ServerSpec,
    previous: ServerRecord | undefined,
    save: (r: ServerRecord) => Promise<void>,
  ): Promise<ServerRecord>;
  /** Stops a server, keeping its data: `ensure` starts it again. */
  stop(record: ServerRecord): Promise<void>;
  /** Stops and deletes a server and its data. */
  remove(record: ServerRecord): Promise<void>;
  /** Makes the server reachable by the experiment's apps; returns the endpoint they use. */
  attach(record: ServerRecord, owner: Owner): Promise<Endpoint>;
  /** Undoes `attach` for a whole experiment once it has no services left (its network, …). */
  releaseExperiment(app: string, experiment: string): Promise<void>;
  /** Runs the server's own client programs (pg_dump, mariadb-dump) where they reach it. */
  tools(record: ServerRecord): Promise<ServerTools>;
  /** The server's last log lines, to explain why it did not become ready. */
  logs(record: ServerRecord): Promise<string>;
  /** Whether the server has stopped for good (so waiting for it is pointless). */
  stopped(record: ServerRecord): Promise<boolean>;
  /**
   * How the server fares now for `owner`'s experiment, where its address can change behind the
   * laboratory's back (a container's published port); without it, `stopped` and the record tell.
   */
  state?(record: ServerRecord, owner: Owner | null): Promise<ServerState>;
  /**
   * Removes, through `sweep`, what the laboratory made and no longer accounts for (left by a
   * crash between creating something and recording it): servers not in `servers`, networks of
   * experiments not in `experiments` (`app/experiment`). Only what is past the sweep's grace
   * period, so work in progress is never taken.
   */
  sweep(servers: ReadonlySet<string>, experiments: ReadonlySet<string>, sweep: Sweep): Promise<void>;
}

/**
 * A kind's recipe for a provider. The configuration's schema refuses a kind its provider does
 * not offer, so a missing one is labtest's bug, not the user's.
 */
export function kindRecipe<R extends "container" | "native">(
  kind: ServiceKind,
  module: ServiceKindModule,
  which: R,
): NonNullable<ServiceKindModule[R]> {
  const found = module[which];
  if (!found) throw new Error(`${kind} has no ${which} recipe, yet it reached a provider that needs one`);
  return found;
}
