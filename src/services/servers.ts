import type { Provider } from "../config/schema.js";
import { UsageError } from "../errors.js";
import { type Docker, engineUnreachable } from "../lab/docker.js";
import type { Sweep } from "../lab/garbage.js";
import type { Registry } from "../lab/registry.js";
import { AdminSessions } from "./admins.js";
import { ProvisionError } from "./errors.js";
import { serviceKind } from "./kinds/index.js";
import type { Endpoint, Owner } from "./model.js";
import { PROVIDER_NAMES, serviceProvider } from "./providers/index.js";
import type { ServerProvider, ServerRecord, ServerSpec, ServerState } from "./providers/provider.js";
import { ownerName, type Records, type ServiceRecord, tenantCount } from "./records.js";

/** How a service's server fares now (see Servers.liveness). */
export interface Liveness {
  status: "ready" | "stopped" | "unreachable";
  /** Where the laboratory host reaches it now; null when it cannot. */
  endpoint: Endpoint | null;
  problem: string | null;
}

/**
 * The laboratory's servers over every provider: made, found again, stopped and removed under
 * their locks, with their records and administrator sessions kept in step.
 */
export class Servers {
  readonly admins = new AdminSessions((server) => this.provider(server.provider));
  private readonly opened = new Map<Provider, Promise<ServerProvider>>();

  constructor(
    private readonly records: Records,
    private readonly docker?: Docker,
  ) {}

  /** A provider of the registry, opened on first use. */
  provider(name: Provider): Promise<ServerProvider> {
    let provider = this.opened.get(name);
    if (!provider) {
      provider = serviceProvider(name).open({ registry: this.registry, docker: this.docker });
      this.opened.set(name, provider);
    }
    return provider;
  }

  /** Creates, starts or finds a server, under its lock; its record is kept up to date. */
  ensure(spec: ServerSpec, provider: Provider): Promise<ServerRecord> {
    return this.registry.withLock(`server-${spec.id}`, async () => {
      const save = (record: ServerRecord) => this.records.saveServer(record);
      const record = await (await this.provider(provider)).ensure(
        spec,
        await this.records.server(spec.id),
        save,
      );
      await save(record);
      return record;
    });
  }

  /** A recorded server, found again (started if it stopped) without its configuration at hand. */
  restarted(recorded: ServerRecord): Promise<ServerRecord> {
    return this.ensure(previousSpec(recorded), recorded.provider);
  }

  /** Stops and deletes a server with its data, and forgets it. */
  async destroy(server: ServerRecord): Promise<void> {
    await this.admins.forget(server);
    await (await this.provider(server.provider)).remove(server);
    await this.records.removeServer(server.id);
  }

  /**
   * Stops a server (keeping its data: the next command that needs it starts it again) or
   * removes it with its data. Refused while experiments' services are on it, unless `force`.
   */
  async retire(id: string, how: "stop" | "remove", force: boolean): Promise<void> {
    await this.registry.withLock(`server-${id}`, async () => {
      const server = await this.records.server(id);
      if (!server) throw unknownServer(id);
      const users = (await this.records.services()).filter((r) => r.server === id);
      if (users.length > 0 && !force) throw inUse(server, users, how);
      if (how === "remove") return this.destroy(server);
      await this.admins.forget(server);
      await (await this.provider(server.provider)).stop(server);
    });
  }

  /** Whether a recorded server runs now. */
  async running(server: ServerRecord): Promise<boolean> {
    return !(await (await this.provider(server.provider)).stopped(server));
  }

  /**
   * How a recorded server fares now for `owner`'s service: running and reachable ("ready"),
   * stopped, or unreachable (its engine away, off the experiment's network), with why and where
   * the laboratory host reaches it now.
   */
  async liveness(server: ServerRecord, owner: Owner): Promise<Liveness> {
    try {
      const { running, endpoint, problem } = await this.state(server, owner);
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

  /** The last log lines of a recorded server. */
  async logs(id: string): Promise<string> {
    const server = await this.records.server(id);
    return server ? (await this.provider(server.provider)).logs(server) : "";
  }

  /** After an experiment's last service is gone, providers undo what they set up for it (networks). */
  async releaseExperiment(app: string, experiment: string): Promise<void> {
    if ((await this.records.services(app, experiment)).length > 0) return;
    for (const provider of await this.all()) await provider.releaseExperiment(app, experiment);
  }

  /** Every provider's sweep of what it made and `servers` and `experiments` do not account for. */
  async sweep(servers: ReadonlySet<string>, experiments: ReadonlySet<string>, sweep: Sweep): Promise<void> {
    for (const provider of await this.all()) await provider.sweep(servers, experiments, sweep);
  }

  private all(): Promise<ServerProvider[]> {
    return Promise.all(PROVIDER_NAMES.map((name) => this.provider(name)));
  }

  private get registry(): Registry {
    return this.records.registry;
  }

  private async state(server: ServerRecord, owner: Owner): Promise<ServerState> {
    const provider = await this.provider(server.provider);
    if (provider.state) return provider.state(server, owner);
    const running = !(await provider.stopped(server));
    return { running, endpoint: running ? server.admin : null, problem: null };
  }
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
