import type { Provider, ProvisionType, ServiceKind } from "../config/schema.js";
import type { Registry } from "../lab/registry.js";
import type { Endpoint, Owner, Tenant } from "./model.js";
import type { ServerRecord } from "./providers/provider.js";

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

/** `app/experiment/service`: how the CLI and errors name an experiment's service. */
export function ownerName(owner: Owner): string {
  return `${owner.app}/${owner.experiment}/${owner.service}`;
}

/** The lock a command holds while it changes an experiment's service. */
export function serviceLock(owner: Owner): string {
  return `service-${owner.app}-${owner.experiment}-${owner.service}`;
}

/** The tenants among a server's services: experiments sharing another's are not counted again. */
export function tenantCount(users: ServiceRecord[]): number {
  return users.filter((r) => r.provisionType !== "shared").length;
}

/** What the laboratory records of services and servers, between commands. */
export class Records {
  constructor(readonly registry: Registry) {}

  service(owner: Owner): Promise<ServiceRecord | undefined> {
    return this.registry.read<ServiceRecord>("services", owner.app, owner.experiment, owner.service);
  }

  /** The services recorded, optionally of one app or experiment. */
  services(app?: string, experiment?: string): Promise<ServiceRecord[]> {
    const scope = [app, experiment].filter((s): s is string => s !== undefined);
    return this.registry.list<ServiceRecord>("services", ...scope);
  }

  saveService(record: ServiceRecord): Promise<void> {
    const { app, experiment, service } = record.owner;
    return this.registry.write(record, "services", app, experiment, service);
  }

  removeService(owner: Owner): Promise<void> {
    return this.registry.remove("services", owner.app, owner.experiment, owner.service);
  }

  /** The experiments' services that share `owner`'s tenant. */
  async dependants(owner: Owner): Promise<Owner[]> {
    return (await this.services())
      .filter((r) => r.shared && ownerName(r.shared) === ownerName(owner))
      .map((r) => r.owner);
  }

  /** Every server the laboratory has recorded. */
  servers(): Promise<ServerRecord[]> {
    return this.registry.children<ServerRecord>("servers");
  }

  server(id: string): Promise<ServerRecord | undefined> {
    return this.registry.read<ServerRecord>("servers", id);
  }

  saveServer(record: ServerRecord): Promise<void> {
    return this.registry.write(record, "servers", record.id);
  }

  removeServer(id: string): Promise<void> {
    return this.registry.remove("servers", id);
  }
}
