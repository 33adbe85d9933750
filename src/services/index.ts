import pMap from "p-map";
import { type BranchFiles, readInitialData } from "../config/initial-data.js";
import type { LoadedConfig } from "../config/resolve.js";
import { UsageError } from "../errors.js";
import { type Removal, Sweep } from "../lab/garbage.js";
import { serviceEnvironment } from "./env.js";
import { ProvisionError } from "./errors.js";
import { collectGarbage } from "./gc.js";
import { serviceKind } from "./kinds/index.js";
import type { Connection, Endpoint, Owner, TenantSize } from "./model.js";
import {
  type ExperimentServices,
  type InitialData,
  Provisioner,
  type ProvisionOptions,
} from "./provision.js";
import { ownerName, type Records, type ServiceRecord, tenantCount } from "./records.js";
import { type Liveness, type Servers, unknownServer } from "./servers.js";
import { ServerVisits } from "./visits.js";

export type { Removal } from "../lab/garbage.js";
export { serviceEnvironment } from "./env.js";
export { ProvisionError } from "./errors.js";
export type { Connection, Endpoint, Owner, Tenant, TenantSize } from "./model.js";
export type { ExperimentServices, InitialData, ProvisionOptions } from "./provision.js";
export type { ServiceRecord } from "./records.js";

/** A server as `servers list` shows it: no credentials. */
export interface ServerStatus {
  id: string;
  kind: string;
  provider: string;
  provisionType: "communal" | "independent";
  /** Experiments' databases (or prefixes) on it; services sharing one are not counted again. */
  tenants: number;
  /** The `app/experiment/service`s on it, sharing ones included. */
  usedBy: string[];
  state: "running" | "stopped";
  createdAt: string;
}

/** A service as `services list` shows it: no credentials. */
export interface ServiceStatus {
  app: string;
  experiment: string;
  name: string;
  kind: string;
  provider: string;
  provisionType: string;
  server: string;
  /**
   * As recorded ("creating"), or how its server fares now: "ready", "stopped" (gone or not
   * running) or "unreachable" (its engine away, off the experiment's network, not answering).
   */
  status: "creating" | Liveness["status"];
  /** Why it is not ready, when it is not. */
  problem: string | null;
  /** For shared: `app/experiment/service` reused. */
  shares: string | null;
  /** The `app/experiment/service`s sharing this one. */
  sharedBy: string[];
  /** Where the experiment's apps reach it, and where the laboratory host does. */
  appEndpoint: Endpoint | null;
  hostEndpoint: Endpoint | null;
  /**
   * Only when sizes were asked for (`status NAME`: it costs a login per server): how much its
   * tenant holds; null when its kind or server cannot tell now.
   */
  size?: TenantSize | null;
}

/** How closely `list` looks at services' servers (see Services.list). */
export interface ServiceLook {
  ping?: boolean;
  sizes?: boolean;
}

/**
 * The services part of an experiment's configuration, for an experiment name, with its
 * initial data read next to the configuration; `branch`, for a branch's own configuration: the
 * files it may name (its checkout, and the laboratory's directories the state allows).
 */
export function experimentServices(
  loaded: LoadedConfig,
  experiment: string,
  branch?: BranchFiles,
): ExperimentServices {
  return {
    app: loaded.config.app_name,
    experiment,
    services: loaded.config.services,
    initialData: (service, path) => readInitialData(path, loaded.directory, service, branch),
  };
}

/** Initial data a client sent with its request (the contents of its files), by service name. */
export function sentInitialData(contents: Record<string, string>): InitialData {
  return async (service, path) => {
    const script = contents[service];
    if (script === undefined)
      throw new ProvisionError(`the initial data of service ${service} was not sent`, [
        {
          where: `service ${service}: options.initial_data`,
          what: `the request carries no contents for ${path}`,
          fix: "use a labtest client of the laboratory's version: it sends the files' contents",
        },
      ]);
    return script;
  };
}

/**
 * The backing services of experiments on a laboratory: bring them up, take them down, list
 * them and hand out their connections. Close it to release the administrator sessions it keeps.
 */
export class Services {
  private readonly provisioner: Provisioner;
  private readonly records: Records;
  /** The laboratory's servers and their administrator sessions. */
  private readonly fleet: Servers;

  constructor(options: ProvisionOptions) {
    this.provisioner = new Provisioner(options);
    this.records = this.provisioner.records;
    this.fleet = this.provisioner.servers;
  }

  /**
   * Brings services up (all of the request's, or `names`), in parallel. Every service is
   * checked first; if any has a problem, nothing is created.
   */
  async up(request: ExperimentServices, names?: string[]): Promise<ServiceStatus[]> {
    const selected = selectNames(Object.keys(request.services), names, "configured");
    const prepared = await Promise.all(selected.map((name) => this.provisioner.prepare(request, name)));
    const records = await settleAll(prepared.map((p) => this.provisioner.up(p)));
    return this.statuses(records, await this.records.services());
  }

  /**
   * Takes an experiment's services down (all recorded ones, or `names`): tenants dropped,
   * dedicated servers and their data removed. Refuses for a service others share, unless `force`.
   */
  async down(
    app: string,
    experiment: string,
    options: { names?: string[]; force?: boolean } = {},
  ): Promise<string[]> {
    const recorded = (await this.records.services(app, experiment)).map((r) => r.owner.service);
    const selected = options.names ? selectNames(recorded, options.names, "up") : recorded;
    const owners = selected.map((service): Owner => ({ app, experiment, service }));
    if (!options.force) await this.assertUnshared(app, experiment, selected);
    const removed = await settleAll(owners.map((owner) => this.provisioner.down(owner)));
    await this.fleet.releaseExperiment(app, experiment);
    return removed.filter((r): r is ServiceRecord => r !== undefined).map((r) => r.owner.service);
  }

  /**
   * Rejects, naming them, when other experiments share services of this one (all, or `names`):
   * taking it down would take theirs. The one check of every way services are taken down.
   */
  async assertUnshared(app: string, experiment: string, names?: string[]): Promise<void> {
    const recorded = (await this.records.services(app, experiment)).map((r) => r.owner.service);
    for (const service of names ?? recorded) {
      const owner: Owner = { app, experiment, service };
      const dependants = (await this.records.dependants(owner)).map(ownerName);
      if (dependants.length > 0)
        throw new ProvisionError(`service ${ownerName(owner)} is shared by other experiments`, [
          {
            where: ownerName(owner),
            what: `used by ${dependants.join(", ")}`,
            fix: "take those down first, or pass --force to take it down anyway (they lose the service)",
          },
        ]);
    }
  }

  /**
   * The services recorded on the laboratory, optionally of one app or experiment, as their
   * servers fare now; with `ping`, a running server must also answer its administrator, and with
   * `sizes` as well, say how much each tenant holds.
   */
  async list(app?: string, experiment?: string, look: ServiceLook = {}): Promise<ServiceStatus[]> {
    // Every record is read once, whatever the scope: a service's sharers may be of any app.
    const all = await this.records.services();
    const inScope = (r: ServiceRecord) =>
      (app === undefined || r.owner.app === app) &&
      (experiment === undefined || r.owner.experiment === experiment);
    return this.statuses(all.filter(inScope), all, look);
  }

  /** The connections of an experiment's ready services; `hostReachable` gives the laboratory host's view. */
  async connections(
    app: string,
    experiment: string,
    options: { hostReachable?: boolean } = {},
  ): Promise<Record<string, Connection>> {
    const records = (await this.records.services(app, experiment)).filter((r) => r.status === "ready");
    const entries = await Promise.all(
      records.map(async (record): Promise<[string, Connection]> => {
        const endpoint = options.hostReachable ? await this.hostEndpoint(record) : record.appEndpoint;
        if (!endpoint)
          throw new UsageError(`service ${ownerName(record.owner)} is not reachable`, [
            {
              where: ownerName(record.owner),
              what: "it has no address the app can reach",
              fix: `labtest services up -e ${record.owner.experiment} starts (or recreates) its server`,
            },
          ]);
        const module = serviceKind(record.kind);
        return [
          record.owner.service,
          { kind: record.kind, ...endpoint, ...record.tenant, url: module.url(endpoint, record.tenant) },
        ];
      }),
    );
    return Object.fromEntries(entries);
  }

  /** The environment an experiment's app receives: its services' variables, then `explicit` over them. */
  async environment(
    app: string,
    experiment: string,
    explicit: Record<string, string> = {},
    options: { hostReachable?: boolean; known?: Record<string, string> } = {},
  ): Promise<Record<string, string>> {
    return serviceEnvironment(await this.connections(app, experiment, options), explicit, options.known);
  }

  /**
   * Removes what crashes left behind (half-created services, servers and Docker objects or
   * data directories no record accounts for, killed commands' locks); objects younger than
   * `graceMs` are left to the command that may still be creating them. Returns what it removed
   * and why, or with `dryRun` what it would remove, removing nothing.
   */
  async collectGarbage(graceMs = 5 * 60_000, options: { dryRun?: boolean } = {}): Promise<Removal[]> {
    const sweep = new Sweep(graceMs, options.dryRun);
    await collectGarbage(this.provisioner, sweep);
    return sweep.removals;
  }

  /** The servers recorded on the laboratory (or the one of `id`), with their tenants and state. */
  async servers(id?: string): Promise<ServerStatus[]> {
    const [servers, records] = await Promise.all([this.records.servers(), this.records.services()]);
    const shown = id === undefined ? servers : servers.filter((s) => s.id === id);
    if (id !== undefined && shown.length === 0) throw unknownServer(id);
    return pMap(
      shown,
      async (server) => {
        const users = records.filter((r) => r.server === server.id);
        return {
          id: server.id,
          kind: server.kind,
          provider: server.provider,
          provisionType: server.provisionType,
          tenants: tenantCount(users),
          usedBy: users.map((r) => ownerName(r.owner)),
          state: (await this.fleet.running(server)) ? "running" : "stopped",
          createdAt: server.createdAt,
        } satisfies ServerStatus;
      },
      // Each look asks a process table or the Docker Engine.
      { concurrency: 8 },
    );
  }

  /**
   * Stops a server, keeping its data (the next command that needs it starts it again). Refused
   * while experiments' services are on it, unless `force`.
   */
  stopServer(id: string, options: { force?: boolean } = {}): Promise<void> {
    return this.fleet.retire(id, "stop", options.force === true);
  }

  /** Removes a server with its data. Refused while experiments' services are on it, unless `force`. */
  removeServer(id: string, options: { force?: boolean } = {}): Promise<void> {
    return this.fleet.retire(id, "remove", options.force === true);
  }

  /** The last log lines of the server behind an experiment's service. */
  async serverLogs(app: string, experiment: string, service: string): Promise<string> {
    const record = await this.records.service({ app, experiment, service });
    if (!record)
      throw new UsageError(`no service ${service} of ${app}/${experiment}`, [
        {
          where: "--service",
          what: "not up on this laboratory",
          fix: "labtest services list shows the services",
        },
      ]);
    return this.fleet.logs(record.server);
  }

  /** Resolves when background work (spare databases being prepared) is done. */
  settled(): Promise<void> {
    return this.fleet.admins.settled();
  }

  close(): Promise<void> {
    return this.fleet.admins.close();
  }

  /** Where the laboratory host reaches a service's server now; an error saying why when it cannot. */
  private async hostEndpoint(record: ServiceRecord): Promise<Endpoint> {
    const server = await this.records.server(record.server);
    const { endpoint, problem } = server
      ? await this.fleet.liveness(server, record.owner)
      : { endpoint: null, problem: "its server's record is gone" };
    if (endpoint) return endpoint;
    throw new ProvisionError(
      `service ${ownerName(record.owner)} cannot be reached from the laboratory host`,
      [
        {
          where: ownerName(record.owner),
          what: problem ?? "its server publishes no address",
          fix: `labtest services up -e ${record.owner.experiment} starts (or recreates) its server`,
        },
      ],
    );
  }

  /**
   * How `records` stand, among `all` the laboratory's (whose sharers they are): each file is
   * read once for the lot, so that hundreds of experiments do not open thousands of files.
   */
  private async statuses(
    records: ServiceRecord[],
    all: ServiceRecord[],
    look: ServiceLook = {},
  ): Promise<ServiceStatus[]> {
    const servers = new Map((await this.records.servers()).map((s) => [s.id, s]));
    const sharers = new Map<string, string[]>();
    for (const r of all) {
      if (!r.shared) continue;
      const target = ownerName(r.shared);
      sharers.set(target, [...(sharers.get(target) ?? []), ownerName(r.owner)]);
    }
    const visits = new ServerVisits();
    try {
      return await pMap(
        records,
        async (record): Promise<ServiceStatus> => {
          const server = servers.get(record.server);
          const live: Liveness = !server
            ? { status: "stopped", endpoint: null, problem: "its server's record is gone" }
            : await this.fleet.liveness(server, record.owner);
          const visited = look.ping && server && live.status === "ready" && live.endpoint;
          const silent = visited && (await visits.problem(server, visited));
          const size =
            look.sizes && visited && !silent ? await visits.size(server, visited, record.tenant) : null;
          return {
            app: record.owner.app,
            experiment: record.owner.experiment,
            name: record.owner.service,
            kind: record.kind,
            provider: record.provider,
            provisionType: record.provisionType,
            server: record.server,
            ...(record.status === "creating"
              ? { status: "creating", problem: null }
              : { status: silent ? "unreachable" : live.status, problem: silent || live.problem }),
            shares: record.shared ? ownerName(record.shared) : null,
            sharedBy: sharers.get(ownerName(record.owner)) ?? [],
            appEndpoint: record.appEndpoint,
            hostEndpoint: live.endpoint,
            ...(look.sizes ? { size } : {}),
          };
        },
        // Each look asks a process table or the Docker Engine.
        { concurrency: 8 },
      );
    } finally {
      await visits.close();
    }
  }
}

function selectNames(known: string[], names: string[] | undefined, what: string): string[] {
  if (!names || names.length === 0) return known;
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0)
    throw new UsageError(`no ${what} service named ${unknown.join(", ")}`, [
      {
        where: "service names",
        what: `the ${what} services are: ${known.join(", ") || "none"}`,
        fix: "name one of them",
      },
    ]);
  return [...new Set(names)];
}

/** Waits for every promise; then rethrows the first failure (none is left running unobserved). */
async function settleAll<T>(promises: Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<T>).value);
}
