import { experimentName } from "../config/names.js";
import type { ServiceConfig } from "../config/resolve.js";
import type { Docker } from "../lab/docker.js";
import { randomPassword } from "../lab/passwords.js";
import { Registry } from "../lab/registry.js";
import { Secrets } from "../secrets/index.js";
import type { StateStore } from "../state/index.js";
import { ProvisionError } from "./errors.js";
import { serviceKind } from "./kinds/index.js";
import type { Owner } from "./model.js";
import { serviceProvider } from "./providers/index.js";
import type { ServerSpec } from "./providers/provider.js";
import { ownerName, Records, type ServiceRecord, serviceLock } from "./records.js";
import { Servers } from "./servers.js";
import { readiness, serverSpec } from "./spec.js";

/**
 * The SQL a service's `options.initial_data` names (`path`), asked only for a service being
 * created. Whoever holds the files reads them: the client its working copy's, the laboratory
 * its checkout's.
 */
export type InitialData = (service: string, path: string) => Promise<string>;

/** The services an experiment asks for. */
export interface ExperimentServices {
  app: string;
  experiment: string;
  services: Record<string, ServiceConfig>;
  initialData?: InitialData;
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
  readonly records: Records;
  readonly servers: Servers;
  private readonly secrets: Secrets;

  constructor(private readonly options: ProvisionOptions) {
    this.records = new Records(new Registry(options.home));
    this.servers = new Servers(this.records, options.docker);
    this.secrets = options.secrets ?? new Secrets({ state: options.state, home: options.home });
  }

  get registry(): Registry {
    return this.records.registry;
  }

  /**
   * Checks everything about one service that input can get wrong (options, initial data, the
   * shared target, the copy source) without changing anything: `up` runs only once every
   * service of a request has passed.
   */
  async prepare(request: ExperimentServices, name: string): Promise<PreparedService> {
    const config = request.services[name] as ServiceConfig;
    const owner: Owner = { app: request.app, experiment: request.experiment, service: name };
    const existing = await this.records.service(owner);
    if (existing) checkUnchanged(existing, config);
    if (config.provision_type === "shared")
      return { owner, config, spec: null, script: null, source: await this.sharedTarget(owner, config) };
    checkOptions(owner, config);
    const provider = await this.servers.provider(config.provider);
    const { formerId, ...configured } = await serverSpec(
      this.options.state,
      this.registry.id,
      owner,
      config,
      provider,
    );
    const spec = {
      ...configured,
      id: await this.recordedId(configured.id, formerId),
      environment: await this.secrets.reveal(
        configured.environment,
        (key) => `labtest.services.${name}.options.environment.${key}`,
      ),
    };
    await provider.check(spec);
    // Initial data and copies are for creation: a service already up keeps its data.
    const creating = existing?.status !== "ready";
    const path = config.options.initial_data;
    const script = creating && path ? await initialData(request, name, path) : null;
    const source = creating && config.options.copy_from ? await this.copySource(owner, config) : null;
    return { owner, config, spec, script, source };
  }

  /**
   * The name a server is recorded under: its own, or the one an earlier labtest gave it (a
   * running server keeps its name, its data and its tenants; removed, it comes back renamed).
   */
  private async recordedId(id: string, formerId: string | null): Promise<string> {
    if (!formerId || (await this.records.server(id))) return id;
    return (await this.records.server(formerId)) ? formerId : id;
  }

  /** Brings a prepared service up (idempotently: a second call returns the same credentials). */
  async up(prepared: PreparedService): Promise<ServiceRecord> {
    const { owner, config, spec, script, source } = prepared;
    return this.registry.withLock(serviceLock(owner), async () => {
      const existing = await this.records.service(owner);
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
      if (!existing) await this.records.saveService(record);
      const server = await this.servers.ensure(spec, config.provider);
      // Joining the experiment's network (a new bridge on docker) overlaps with the server's boot.
      const [appEndpoint] = await Promise.all([
        this.servers.provider(config.provider).then((provider) => provider.attach(server, owner)),
        this.servers.admins.open(server, readiness(config.options)).then(async (admin) => {
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
      await this.records.saveService(ready);
      return ready;
    });
  }

  /**
   * Takes one service down: drops its tenant, and for an independent service its server (a
   * service others share is the caller's to refuse, see Services.assertUnshared).
   */
  async down(
    owner: Owner,
    only: (record: ServiceRecord) => boolean = () => true,
  ): Promise<ServiceRecord | undefined> {
    return this.registry.withLock(serviceLock(owner), async () => {
      const record = await this.records.service(owner);
      if (!record || !only(record)) return undefined;
      if (record.provisionType !== "shared") {
        const server = await this.records.server(record.server);
        if (server && record.provisionType === "independent") {
          await this.servers.destroy(server);
        } else if (server) {
          const running = await this.servers.restarted(server);
          await (await this.servers.admins.open(running)).drop(record.tenant);
        }
      }
      await this.records.removeService(owner);
      return record;
    });
  }

  private async upShared(
    owner: Owner,
    target: ServiceRecord,
    existing: ServiceRecord | undefined,
  ): Promise<ServiceRecord> {
    const server = await this.records.server(target.server);
    if (!server)
      throw new ProvisionError(`the server of ${ownerName(target.owner)} is gone`, [
        {
          where: ownerName(target.owner),
          what: "its record names a server the laboratory no longer has",
          fix: `bring ${ownerName(target.owner)} up again`,
        },
      ]);
    const running = await this.servers.restarted(server);
    await this.servers.admins.open(running);
    const appEndpoint = await (await this.servers.provider(target.provider)).attach(running, owner);
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
    await this.records.saveService(record);
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
    const candidates = (await this.records.services(app, experiment)).filter((r) => r.status === "ready");
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
      const final = await this.records.service(target.shared);
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
    const recorded = await this.records.server(source.server);
    if (!module.dump || !recorded)
      throw new ProvisionError(`cannot copy ${ownerName(source.owner)}: its server is gone`, [
        {
          where: `copy_from: ${ownerName(source.owner)}`,
          what: "no server holds its data any more",
          fix: `labtest services up -e ${source.owner.experiment} in its app, or leave copy_from out`,
        },
      ]);
    const server = await this.servers.restarted(recorded);
    return module.dump(await (await this.servers.provider(source.provider)).tools(server), source.tenant);
  }

  /** The tenant `copy_from` names: the same service of another experiment. */
  private async copySource(owner: Owner, config: ServiceConfig): Promise<ServiceRecord> {
    const from: Owner = { ...owner, experiment: experimentName(config.options.copy_from ?? "") };
    const where = `service ${owner.service}: options.copy_from`;
    if (!serviceKind(config.service).dump)
      throw new ProvisionError(`copy_from is for SQL databases, not ${config.service}`, [
        { where, what: `${config.service} has no database to copy`, fix: "remove copy_from" },
      ]);
    const source = await this.records.service(from);
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
}

/** The initial data of a service being created, from whoever holds the request's files. */
function initialData(request: ExperimentServices, service: string, path: string): Promise<string> {
  if (!request.initialData)
    throw new ProvisionError(`the initial data of service ${service} was not sent`, [
      {
        where: `service ${service}: options.initial_data`,
        what: `${path} is read where the configuration lies, and the request carries no contents for it`,
        fix: "send the file's contents with the request (labtest services up does)",
      },
    ]);
  return request.initialData(service, path);
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
  if (config.options.initial_data && !serviceKind(config.service).dump)
    throw new ProvisionError(`initial_data is for SQL databases, not ${config.service}`, [
      { where, what: "there is no SQL to load into it", fix: "remove options.initial_data" },
    ]);
  if (!serviceProvider(config.provider).createsServers && config.options.ephemeral)
    throw new ProvisionError(`an ${config.provider} server's durability is not labtest's to change`, [
      { where, what: `options.ephemeral with provider ${config.provider}`, fix: "remove options.ephemeral" },
    ]);
}
