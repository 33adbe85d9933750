import pRetry, { AbortError } from "p-retry";
import pTimeout from "p-timeout";
import { experimentName } from "../config/names.js";
import type { ServiceConfig } from "../config/resolve.js";
import type { Provider, ProvisionType, ServiceKind } from "../config/schema.js";
import { type Problem, UsageError } from "../errors.js";
import { type Docker, engineUnreachable } from "../lab/docker.js";
import type { Sweep } from "../lab/garbage.js";
import { randomPassword } from "../lab/passwords.js";
import { Registry } from "../lab/registry.js";
import { Secrets } from "../secrets/index.js";
import type { StateStore } from "../state/index.js";
import { ProvisionError } from "./errors.js";
import { serviceKind, type TenantAdmin } from "./kinds/index.js";
import type { Endpoint, Owner, Tenant } from "./model.js";
import { dockerProvider } from "./providers/docker.js";
import { externalProvider } from "./providers/external.js";
import { localProvider } from "./providers/local.js";
import type { ServerProvider, ServerRecord, ServerSpec, ServerState } from "./providers/provider.js";
import { DEFAULT_READY_TIMEOUT_MS, initialData, type Readiness, readiness, serverSpec } from "./spec.js";

const ATTEMPT_TIMEOUT_MS = 2_000;

/** An experiment's service as the laboratory records it. */
export interface ServiceRecord {
  owner: Owner;
  kind: ServiceKind;
  provider: Provider;
  provisionType: ProvisionType;
  /** The server it lives on; for shared, the target's. */
  server: string;
  /** For shared: the experiment's service whose tenant is reused. */
  shared: Owner | null;
  /** Its tenant; for shared, a copy of the target's. */
  tenant: Tenant;
  /** Where the experiment's apps reach it. */
  appEndpoint: Endpoint | null;
  status: "creating" | "ready";
  createdAt: string;
}

/** How a service's server fares now (see Provisioner.liveness). */
export interface Liveness {
  status: "ready" | "stopped" | "unreachable";
  /** Where the laboratory host reaches it now; null when it cannot. */
  endpoint: Endpoint | null;
  problem: string | null;
}

/** The services an experiment asks for. */
export interface ExperimentServices {
  app: string;
  experiment: string;
  services: Record<string, ServiceConfig>;
  /** Where relative paths of the configuration (initial_data) start. */
  directory: string;
  /** Files the configuration names must be inside this directory (a branch's checkout), links resolved. */
  within?: string;
}

/** A service checked and ready to be brought up: its server, data to load, the tenant it copies or shares. */
export interface PreparedService {
  owner: Owner;
  config: ServiceConfig;
  /** null for a shared service. */
  spec: ServerSpec | null;
  script: string | null;
  /** The tenant copied (copy_from) or, for a shared service, the one reused. */
  source: ServiceRecord | null;
}

export interface ProvisionOptions {
  /** The laboratory's home (records, local servers' data). */
  home: string;
  /** Administrator defaults. */
  state: StateStore;
  docker?: Docker;
  /** Reveals ENC[…] values in services' environments (default: from state /secrets). */
  secrets?: Secrets;
}

/**
 * Communal, independent and shared provisioning, written once over every kind and provider: a
 * tenant on a server, the server being the laboratory's (communal), the experiment's own
 * (independent), or another experiment's tenant reused (shared).
 */
export class Provisioner {
  readonly registry: Registry;
  private readonly providers: Record<Exclude<Provider, "aws">, ServerProvider>;
  /** Administrator sessions kept open, one per running server: tenants are created through them. */
  private readonly admins = new Map<string, Promise<TenantAdmin>>();

  private readonly secrets: Secrets;

  constructor(private readonly options: ProvisionOptions) {
    this.registry = new Registry(options.home);
    this.secrets = options.secrets ?? new Secrets({ state: options.state, home: options.home });
    this.providers = {
      docker: dockerProvider(this.registry, options.docker),
      local: localProvider(this.registry),
      external: externalProvider(),
    };
  }

  /**
   * Checks everything about one service that input can get wrong (options, initial data, the
   * shared target, the copy source) without changing anything: `up` runs only once every
   * service of a request has passed.
   */
  async prepare(request: ExperimentServices, name: string): Promise<PreparedService> {
    const config = request.services[name] as ServiceConfig;
    const owner: Owner = { app: request.app, experiment: request.experiment, service: name };
    const existing = await this.record(owner);
    if (existing) checkUnchanged(existing, config);
    if (config.provision_type === "shared")
      return { owner, config, spec: null, script: null, source: await this.sharedTarget(owner, config) };
    checkOptions(owner, config);
    const { formerId, ...configured } = await serverSpec(this.options.state, this.registry.id, owner, config);
    const spec = {
      ...configured,
      id: await this.recordedId(configured.id, formerId),
      environment: await this.secrets.reveal(
        configured.environment,
        (key) => `labtest.services.${name}.options.environment.${key}`,
      ),
    };
    await this.provider(config.provider).check(spec);
    // Initial data and copies are for creation: a service already up keeps its data.
    const creating = existing?.status !== "ready";
    const script =
      creating && config.options.initial_data
        ? await initialData(config.options.initial_data, request.directory, name, request.within)
        : null;
    const source = creating && config.options.copy_from ? await this.copySource(owner, config) : null;
    return { owner, config, spec, script, source };
  }

  /**
   * The name a server is recorded under: its own, or the one an earlier labtest gave it (a
   * running server keeps its name, its data and its tenants; removed, it comes back renamed).
   */
  private async recordedId(id: string, formerId: string | null): Promise<string> {
    if (!formerId || (await this.server(id))) return id;
    return (await this.server(formerId)) ? formerId : id;
  }

  /** Brings a prepared service up (idempotently: a second call returns the same credentials). */
  async up(prepared: PreparedService): Promise<ServiceRecord> {
    const { owner, config, spec, script, source } = prepared;
    return this.registry.withLock(serviceLock(owner), async () => {
      const existing = await this.record(owner);
      if (!spec) return this.upShared(owner, source as ServiceRecord, existing);
      const module = serviceKind(config.service);
      const record: ServiceRecord = existing ?? {
        owner,
        kind: config.service,
        provider: config.provider,
        provisionType: config.provision_type,
        server: spec.id,
        shared: null,
        tenant: {
          ...module.tenantNames(owner.app, owner.experiment, owner.service),
          password: randomPassword(),
        },
        appEndpoint: null,
        status: "creating",
        createdAt: new Date().toISOString(),
      };
      // Recorded before anything exists, so a crash from here on leaves something down can find.
      if (!existing) await this.saveRecord(record);
      const server = await this.ensureServer(spec, config.provider);
      // Joining the experiment's network (a new bridge on docker) overlaps with the server's boot.
      const [appEndpoint] = await Promise.all([
        this.provider(config.provider).attach(server, owner),
        this.admin(server, config.provider, readiness(config.options)).then(async (admin) => {
          // An attempt that stopped half-way may have left a tenant without all its data: start over.
          if (existing?.status === "creating") await admin.drop(record.tenant);
          const sameServer = source?.server === server.id;
          const outcome = await admin.create(record.tenant, {
            copyFrom: sameServer ? source?.tenant : undefined,
            connectionLimit: spec.tenantConnectionLimit,
          });
          if (outcome === "created" && source) await admin.load?.(record.tenant, await this.dump(source));
          if (outcome !== "existed" && script !== null) await admin.load?.(record.tenant, script);
        }),
      ]);
      const ready: ServiceRecord = { ...record, appEndpoint, status: "ready" };
      await this.saveRecord(ready);
      return ready;
    });
  }

  /**
   * Takes one service down: drops its tenant, and for an independent service its server. A
   * service that others share is kept unless `force`.
   */
  /** Rejects when other experiments use the service of `owner` (provision type shared). */
  async assertUnshared(owner: Owner): Promise<void> {
    const dependants = (await this.dependants(owner)).map(ownerName);
    if (dependants.length > 0)
      throw new ProvisionError(`service ${ownerName(owner)} is shared by other experiments`, [
        {
          where: ownerName(owner),
          what: `used by ${dependants.join(", ")}`,
          fix: "take those down first, or pass --force to take it down anyway (they lose the service)",
        },
      ]);
  }

  async down(
    owner: Owner,
    force: boolean,
    only: (record: ServiceRecord) => boolean = () => true,
  ): Promise<ServiceRecord | undefined> {
    return this.registry.withLock(serviceLock(owner), async () => {
      const record = await this.record(owner);
      if (!record || !only(record)) return undefined;
      if (!force) await this.assertUnshared(owner);
      if (record.provisionType !== "shared") {
        const server = await this.server(record.server);
        if (server && record.provisionType === "independent") {
          await this.destroyServer(server);
        } else if (server) {
          const running = await this.restartedServer(server);
          await (await this.admin(running, record.provider)).drop(record.tenant);
        }
      }
      await this.registry.remove("services", owner.app, owner.experiment, owner.service);
      return record;
    });
  }

  /**
   * Cleans, through `sweep`, what crashes left: services stuck half-created (their command is
   * gone: its lock is not held), dedicated servers no service uses, unrecorded objects and the
   * lock directories of killed commands past the grace period.
   */
  async collectGarbage(sweep: Sweep): Promise<void> {
    for (const record of await this.records()) {
      if (record.status !== "creating" || (await this.registry.held(serviceLock(record.owner)))) continue;
      await sweep.remove(`service ${ownerName(record.owner)}`, "left half-created", async () => {
        const removed = await this.down(record.owner, true, (r) => r.status === "creating");
        return removed !== undefined;
      });
    }
    // Servers are listed before services: a server is recorded only after its service is.
    const servers = await this.servers();
    const services = await this.records();
    const used = new Set(services.map((r) => r.server));
    for (const server of servers) {
      if (server.provisionType !== "independent" || used.has(server.id)) continue;
      await sweep.remove(`server ${server.id}`, "no service uses it", () =>
        this.registry.withLock(`server-${server.id}`, () => this.destroyServer(server)),
      );
    }
    const known = new Set(
      servers.filter((s) => s.provisionType === "communal" || used.has(s.id)).map((s) => s.id),
    );
    const experiments = new Set(services.map((r) => `${r.owner.app}/${r.owner.experiment}`));
    for (const provider of Object.values(this.providers)) await provider.sweep(known, experiments, sweep);
    await this.registry.sweepLocks(sweep);
  }

  /**
   * Stops a server (keeping its data: the next command that needs it starts it again) or
   * removes it with its data. Refused while experiments' services are on it, unless `force`.
   */
  async retireServer(id: string, how: "stop" | "remove", force: boolean): Promise<void> {
    await this.registry.withLock(`server-${id}`, async () => {
      const server = await this.server(id);
      if (!server) throw unknownServer(id);
      const users = (await this.records()).filter((r) => r.server === id);
      if (users.length > 0 && !force) throw inUse(server, users, how);
      if (how === "remove") return this.destroyServer(server);
      await this.forgetAdmin(server);
      await this.provider(server.provider).stop(server);
    });
  }

  /** Whether a recorded server runs now. */
  async running(server: ServerRecord): Promise<boolean> {
    return !(await this.provider(server.provider).stopped(server));
  }

  /**
   * How a recorded server fares now for `owner`'s service: running and reachable ("ready"),
   * stopped, or unreachable (its engine away, off the experiment's network), with why and where
   * the laboratory host reaches it now.
   */
  async liveness(server: ServerRecord, owner: Owner): Promise<Liveness> {
    try {
      const { running, endpoint, problem } = await this.serverState(server, owner);
      if (!running) return { status: "stopped", endpoint, problem: problem ?? "its server is not running" };
      return { status: problem ? "unreachable" : "ready", endpoint, problem };
    } catch (error) {
      return {
        status: "unreachable",
        endpoint: null,
        problem: engineUnreachable(error) ?? (error as Error).message,
      };
    }
  }

  private async serverState(server: ServerRecord, owner: Owner): Promise<ServerState> {
    const provider = this.provider(server.provider);
    if (provider.state) return provider.state(server, owner);
    const running = !(await provider.stopped(server));
    return { running, endpoint: running ? server.admin : null, problem: null };
  }

  /** Why a running server does not answer its administrator at `at` now (one readiness check); null when it does. */
  async answers(server: ServerRecord, at: Endpoint): Promise<string | null> {
    const opening = serviceKind(server.kind).openAdmin({ ...server.admin, ...at }, { communal: false });
    try {
      await (await pTimeout(opening, { milliseconds: ATTEMPT_TIMEOUT_MS })).close();
      return null;
    } catch (error) {
      opening.then((admin) => admin.close()).catch(() => undefined);
      return `it does not answer: ${(error as Error).message}`;
    }
  }

  /** After an experiment's last service is gone, providers undo what they set up for it (networks). */
  async releaseExperiment(app: string, experiment: string): Promise<void> {
    if ((await this.registry.list("services", app, experiment)).length > 0) return;
    for (const provider of Object.values(this.providers)) await provider.releaseExperiment(app, experiment);
  }

  async record(owner: Owner): Promise<ServiceRecord | undefined> {
    return this.registry.read<ServiceRecord>("services", owner.app, owner.experiment, owner.service);
  }

  async records(app?: string, experiment?: string): Promise<ServiceRecord[]> {
    const scope = [app, experiment].filter((s): s is string => s !== undefined);
    return this.registry.list<ServiceRecord>("services", ...scope);
  }

  /** Every server the laboratory has recorded. */
  servers(): Promise<ServerRecord[]> {
    return this.registry.children<ServerRecord>("servers");
  }

  async server(id: string): Promise<ServerRecord | undefined> {
    return this.registry.read<ServerRecord>("servers", id);
  }

  /** The last log lines of a recorded server. */
  async serverLogs(id: string): Promise<string> {
    const server = await this.server(id);
    return server ? this.provider(server.provider).logs(server) : "";
  }

  /** The experiments' services that share `owner`'s tenant. */
  async dependants(owner: Owner): Promise<Owner[]> {
    return (await this.records())
      .filter((r) => r.shared && ownerName(r.shared) === ownerName(owner))
      .map((r) => r.owner);
  }

  /** Resolves when the administrator sessions' background work is done. */
  async settled(): Promise<void> {
    await Promise.all(
      [...this.admins.values()].map((a) => a.then((admin) => admin.settled?.()).catch(() => undefined)),
    );
  }

  async close(): Promise<void> {
    const admins = [...this.admins.values()];
    this.admins.clear();
    await Promise.all(admins.map((a) => a.then((admin) => admin.close()).catch(() => undefined)));
  }

  private async upShared(
    owner: Owner,
    target: ServiceRecord,
    existing: ServiceRecord | undefined,
  ): Promise<ServiceRecord> {
    const server = await this.server(target.server);
    if (!server)
      throw new ProvisionError(`the server of ${ownerName(target.owner)} is gone`, [
        {
          where: ownerName(target.owner),
          what: "its record names a server the laboratory no longer has",
          fix: `bring ${ownerName(target.owner)} up again`,
        },
      ]);
    const running = await this.restartedServer(server);
    await this.admin(running, target.provider);
    const appEndpoint = await this.provider(target.provider).attach(running, owner);
    const record: ServiceRecord = {
      owner,
      kind: target.kind,
      provider: target.provider,
      provisionType: "shared",
      server: target.server,
      shared: target.owner,
      tenant: target.tenant,
      appEndpoint,
      status: "ready",
      createdAt: existing?.createdAt ?? new Date().toISOString(),
    };
    await this.saveRecord(record);
    return record;
  }

  /**
   * The service a shared one reuses: the target experiment's service of the same name, else
   * its only service of the same kind. A shared target is followed to what it shares.
   */
  private async sharedTarget(owner: Owner, config: ServiceConfig): Promise<ServiceRecord> {
    const app = config.shared_app_name ?? owner.app;
    const experiment = config.shared_experiment_name ?? "";
    const where = `service ${owner.service}: shared_experiment_name`;
    const candidates = (await this.records(app, experiment)).filter((r) => r.status === "ready");
    const sameKind = candidates.filter((r) => r.kind === config.service);
    const target =
      sameKind.find((r) => r.owner.service === owner.service) ??
      (sameKind.length === 1 ? sameKind[0] : undefined);
    if (!target) {
      const what =
        candidates.length === 0
          ? `experiment ${experiment} of app ${app} has no services up on this laboratory`
          : sameKind.length === 0
            ? `experiment ${experiment} of app ${app} has no ${config.service} service (it has ${candidates.map((r) => `${r.owner.service} (${r.kind})`).join(", ")})`
            : `experiment ${experiment} of app ${app} has several ${config.service} services (${sameKind.map((r) => r.owner.service).join(", ")}) and none is named ${owner.service}`;
      throw new ProvisionError(`cannot share ${config.service} from ${app}/${experiment}`, [
        { where, what, fix: "bring the target experiment's services up first, or name a service it has" },
      ]);
    }
    if (target.shared) {
      const final = await this.record(target.shared);
      if (!final)
        throw new ProvisionError(
          `${ownerName(target.owner)} shares ${ownerName(target.shared)}, which is gone`,
        );
      return final;
    }
    return target;
  }

  /** The data of a tenant as an SQL script, made by its server's own dump program. */
  private async dump(source: ServiceRecord): Promise<string> {
    const module = serviceKind(source.kind);
    const recorded = await this.server(source.server);
    if (!module.dump || !recorded)
      throw new ProvisionError(`cannot copy ${ownerName(source.owner)}: its server is gone`);
    const server = await this.restartedServer(recorded);
    return module.dump(await this.provider(source.provider).tools(server), source.tenant);
  }

  /** The tenant `copy_from` names: the same service of another experiment. */
  private async copySource(owner: Owner, config: ServiceConfig): Promise<ServiceRecord> {
    const from: Owner = { ...owner, experiment: experimentName(config.options.copy_from ?? "") };
    const where = `service ${owner.service}: options.copy_from`;
    if (!["postgresql", "mysql", "mariadb"].includes(config.service))
      throw new ProvisionError(`copy_from is for SQL databases, not ${config.service}`, [
        { where, what: `${config.service} has no database to copy`, fix: "remove copy_from" },
      ]);
    const source = await this.record(from);
    if (source?.status !== "ready")
      throw new ProvisionError(`cannot copy ${ownerName(from)}: it is not up`, [
        {
          where,
          what: `experiment ${from.experiment} has no ${owner.service} service up`,
          fix: `bring ${from.experiment} up first, or fix the name`,
        },
      ]);
    if (source.kind !== config.service)
      throw new ProvisionError(
        `cannot copy ${ownerName(from)}: it is ${source.kind}, not ${config.service}`,
        [
          {
            where,
            what: "a database is copied into one of the same kind",
            fix: "name an experiment whose service is the same kind",
          },
        ],
      );
    return source;
  }

  /** Creates, starts or finds a server, under its lock; its record is kept up to date. */
  private async ensureServer(spec: ServerSpec, provider: Provider): Promise<ServerRecord> {
    return this.registry.withLock(`server-${spec.id}`, async () => {
      const save = (record: ServerRecord) => this.registry.write(record, "servers", record.id);
      const record = await this.provider(provider).ensure(spec, await this.server(spec.id), save);
      await save(record);
      return record;
    });
  }

  /** A recorded server, found again (started if it stopped) without its configuration at hand. */
  private restartedServer(recorded: ServerRecord): Promise<ServerRecord> {
    return this.ensureServer(previousSpec(recorded), recorded.provider);
  }

  /** Stops and deletes a server with its data, and forgets it. */
  private async destroyServer(server: ServerRecord): Promise<void> {
    await this.forgetAdmin(server);
    await this.provider(server.provider).remove(server);
    await this.registry.remove("servers", server.id);
  }

  /** An administrator session on a server, opened once it answers (which is the readiness check). */
  private admin(
    server: ServerRecord,
    provider: Provider,
    bound: Readiness = { timeoutMs: DEFAULT_READY_TIMEOUT_MS, attempts: null },
  ): Promise<TenantAdmin> {
    const key = `${server.id}@${server.admin.host}:${server.admin.port}`;
    let admin = this.admins.get(key);
    if (!admin) {
      admin = this.waitForAdmin(server, this.provider(provider), bound);
      admin.catch(() => this.admins.delete(key));
      this.admins.set(key, admin);
    }
    return admin;
  }

  private async waitForAdmin(
    server: ServerRecord,
    provider: ServerProvider,
    bound: Readiness,
  ): Promise<TenantAdmin> {
    const module = serviceKind(server.kind);
    let lastError: unknown;
    try {
      return await pRetry(async () => {
        try {
          // A client can hang on a server that resets connections while it starts; each try is bounded.
          return await pTimeout(
            module.openAdmin(server.admin, {
              communal: server.provisionType === "communal",
              tools: () => provider.tools(server),
            }),
            {
              milliseconds: ATTEMPT_TIMEOUT_MS,
            },
          );
        } catch (error) {
          lastError = error;
          if (await provider.stopped(server)) throw new AbortError("the server stopped");
          throw error;
        }
      }, retrySchedule(bound));
    } catch (error) {
      const problems: Problem[] = [
        {
          where: `server ${server.id}`,
          what: `last answer: ${(lastError as Error)?.message ?? String(error)}`,
          fix: longerWait(bound),
        },
        { where: "its last log lines", what: `\n${await provider.logs(server)}` },
      ];
      throw new ProvisionError(`${server.kind} server ${server.id} did not become ready`, problems, {
        cause: error,
      });
    }
  }

  private async forgetAdmin(server: ServerRecord): Promise<void> {
    for (const [key, admin] of this.admins)
      if (key.startsWith(`${server.id}@`)) {
        this.admins.delete(key);
        await admin.then((a) => a.close()).catch(() => undefined);
      }
  }

  private provider(provider: Provider): ServerProvider {
    if (provider === "aws") throw new ProvisionError("provider aws is not available yet");
    return this.providers[provider];
  }

  private saveRecord(record: ServiceRecord): Promise<void> {
    const { app, experiment, service } = record.owner;
    return this.registry.write(record, "services", app, experiment, service);
  }
}

/**
 * When to try a new server again: often, until the timeout; or, with a number of attempts, after
 * waits that double and together fill the timeout (as LabTest did).
 */
function retrySchedule({ timeoutMs, attempts }: Readiness) {
  if (attempts === null)
    return { retries: 100_000, minTimeout: 25, maxTimeout: 100, factor: 1.2, maxRetryTime: timeoutMs };
  const first = attempts > 1 ? timeoutMs / (2 ** (attempts - 1) - 1) : timeoutMs;
  return {
    retries: attempts - 1,
    minTimeout: first,
    maxTimeout: timeoutMs,
    factor: 2,
    maxRetryTime: timeoutMs,
  };
}

function longerWait({ timeoutMs, attempts }: Readiness): string {
  const more = attempts === null ? "" : ` or wait_attempts (now ${attempts})`;
  return `if it only needs longer, raise the service's options.wait_timeout (now ${timeoutMs / 1000} s)${more}`;
}

/** `app/experiment/service`: how the CLI and errors name an experiment's service. */
export function ownerName(owner: Owner): string {
  return `${owner.app}/${owner.experiment}/${owner.service}`;
}

function serviceLock(owner: Owner): string {
  return `service-${owner.app}-${owner.experiment}-${owner.service}`;
}

/** The error for an id no recorded server has. */
export function unknownServer(id: string): UsageError {
  return new UsageError(`no server ${id} on this laboratory`, [
    { where: id, what: "no server is recorded by that id", fix: "labtest servers list shows the servers" },
  ]);
}

/** The experiments' services on a server, which stopping or removing it would take from them. */
function inUse(server: ServerRecord, users: ServiceRecord[], how: "stop" | "remove"): ProvisionError {
  const loss =
    how === "stop" ? "their apps cannot reach it until a command starts it again" : "they lose their data";
  const tenants = tenantCount(users);
  return new ProvisionError(`server ${server.id} has ${tenants} tenant${tenants === 1 ? "" : "s"}`, [
    {
      where: `server ${server.id}`,
      what: `used by ${users.map((r) => ownerName(r.owner)).join(", ")}`,
      fix: `take those services down first (labtest services down, labtest delete), or pass --force to ${how} it anyway (${loss})`,
    },
  ]);
}

/** The tenants among a server's services: experiments sharing another's are not counted again. */
export function tenantCount(users: ServiceRecord[]): number {
  return users.filter((r) => r.provisionType !== "shared").length;
}

/** A recorded server, to be found or restarted without its configuration at hand. */
function previousSpec(record: ServerRecord): ServerSpec {
  const details = record.details;
  return {
    id: record.id,
    kind: record.kind,
    module: serviceKind(record.kind),
    provisionType: record.provisionType,
    owner: record.owner,
    image: typeof details.image === "string" ? details.image : null,
    version: null,
    command: null,
    environment: {},
    ephemeral: typeof details.dataDirectory === "string" && details.dataDirectory.startsWith("/dev/shm/"),
    url: null,
    tenantConnectionLimit: null,
  };
}

/** A service already up keeps its kind, provider and provision type until it is taken down. */
function checkUnchanged(record: ServiceRecord, config: ServiceConfig): void {
  const was = `${record.kind} on ${record.provider}, ${record.provisionType}`;
  const now = `${config.service} on ${config.provider}, ${config.provision_type}`;
  if (was !== now)
    throw new ProvisionError(
      `service ${ownerName(record.owner)} is up as ${was}; the configuration now says ${now}`,
      [
        {
          where: ownerName(record.owner),
          what: "a service cannot change kind, provider or provision type in place",
          fix: `run labtest services down ${record.owner.service} first (its data is lost)`,
        },
      ],
    );
}

function checkOptions(owner: Owner, config: ServiceConfig): void {
  const where = `service ${owner.service}`;
  if (config.options.initial_data && !["postgresql", "mysql", "mariadb"].includes(config.service))
    throw new ProvisionError(`initial_data is for SQL databases, not ${config.service}`, [
      { where, what: "there is no SQL to load into it", fix: "remove options.initial_data" },
    ]);
  if (config.provider === "external" && config.options.ephemeral)
    throw new ProvisionError("an external server's durability is not labtest's to change", [
      { where, what: "options.ephemeral with provider external", fix: "remove options.ephemeral" },
    ]);
}
