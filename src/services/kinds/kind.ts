import type { AdminAccess, Connection, Endpoint, Tenant, TenantSize } from "../model.js";

/** How a tenant is made beyond its names. */
export interface TenantOptions {
  /** A tenant of the same server whose data the new one starts with. */
  copyFrom?: Tenant;
  /**
   * The most connections the tenant may hold at once, so one tenant cannot starve the others;
   * null: no limit of its own (a dedicated server). Kinds that cannot limit a user ignore it.
   */
  connectionLimit?: number | null;
}

/** Manages the tenants of one server through a connection the laboratory keeps open. */
export interface TenantAdmin {
  /**
   * Creates the tenant, or brings an existing one back to `tenant` (same password, same
   * grants): calling it twice changes nothing. With `copyFrom` (a tenant of the same server), a
   * new tenant starts as a copy of its data when the server can copy it now ("copied"); else it
   * starts empty ("created") and the caller copies through a dump.
   */
  create(tenant: Tenant, options?: TenantOptions): Promise<"created" | "copied" | "existed">;
  /** Removes the tenant and its data; a tenant that is already gone is not an error. */
  drop(tenant: Tenant): Promise<void>;
  /**
   * How much the tenant holds now; `dedicated`: the server is the tenant's own, so everything
   * on it counts. Null when the server cannot tell one tenant's share. Kinds without it show no size.
   */
  size?(tenant: Tenant, options: { dedicated: boolean }): Promise<TenantSize | null>;
  /** Runs an SQL script (an initial data dump) inside the tenant's database. */
  load?(tenant: Tenant, script: string): Promise<void>;
  /** Resolves when work the session does in the background (keeping spares ready) is done. */
  settled?(): Promise<void>;
  close(): Promise<void>;
}

/** A program of a server's own installation, run where it can reach the server as `admin`. */
export interface ServerTools {
  run: RunProgram;
  /** The administrator's access as seen by those programs. */
  admin: AdminAccess;
}

/** How a kind runs as a container: what the official image expects. */
export interface ContainerRecipe {
  /** The official image repository and the version used when neither config nor state names one. */
  repository: string;
  version: string;
  /** Where the image keeps its data (a named volume, or tmpfs when ephemeral); null: no data. */
  dataDirectory: string | null;
  /** Environment that sets the administrator password on first start. */
  adminEnvironment(password: string): Record<string, string>;
  /**
   * The container's command and entrypoint overrides; `ephemeral` turns durability off.
   * `undefined` keeps the image's own.
   */
  command(options: { ephemeral: boolean; adminPassword: string }): {
    entrypoint?: string[];
    cmd?: string[];
  };
}

/**
 * Runs a program of the server's installation (the laboratory supplies where and as whom); the
 * first of `program`'s names that exists is run. Resolves to its standard output.
 */
export type RunProgram = (
  program: string | readonly string[],
  args: string[],
  options?: { input?: string; env?: Record<string, string> },
) => Promise<string>;

/** How a kind runs as a native process on the laboratory host. */
export interface NativeRecipe {
  /** The Debian package that provides the programs, named in the error when they are missing. */
  debianPackage: string;
  /** The programs needed; each is looked for in `locations`, then in the laboratory's system directories. */
  programs: readonly string[];
  /** Directories searched before the system ones, best first (a version's own directory, a bundled copy). */
  locations?(version: string | null): Promise<string[]>;
  /** How to install the programs when they are missing, beyond the Debian package. */
  installHint?: string;
  /** The system account the server runs as when labtest runs as root (servers refuse root). */
  account: string | null;
  /** Creates the data directory's contents once, with `adminPassword` as the administrator's. */
  initialize?(context: NativeContext, run: RunProgram): Promise<void>;
  /** The server's argv; it must stay in the foreground. */
  serverArgs(context: NativeContext): { program: string; args: string[] };
  /** Work done once after the very first start (e.g. setting a password over the socket). */
  afterFirstStart?(context: NativeContext): Promise<void>;
  /** Variables the server and its programs run with besides labtest's own (where they find its files). */
  environment?(dataDirectory: string): Record<string, string>;
  /** Stops what the server leaves running once it has stopped (a port mapper of its own). */
  afterStop?(dataDirectory: string): Promise<void>;
}

export interface NativeContext {
  dataDirectory: string;
  port: number;
  adminPassword: string;
  ephemeral: boolean;
  /** Absolute paths of the programs of `NativeRecipe.programs`, by name. */
  programs: Record<string, string>;
  /** Writes a file only the server's account can read, removed after initialisation; returns its path. */
  privateFile(name: string, content: string): Promise<string>;
}

/**
 * What a service kind is: its port, how to tell it is ready, how tenants are made and dropped,
 * how a connection is written as a URL, and how it runs in a container or as a process.
 */
export interface ServiceKindModule {
  /** Which family the kind counts towards for the well-known variables (DATABASE_URL, …). */
  family: "sql" | "redis" | "memcached" | "amqp";
  port: number;
  /** The administrator account's name; null where the protocol has none. */
  adminUser: string | null;
  /** The tenant's names for an experiment's service (its password is generated elsewhere). */
  tenantNames(app: string, experiment: string, service: string): Omit<Tenant, "password">;
  /** The client URL of a tenant at an endpoint. */
  url(endpoint: Endpoint, tenant: Tenant): string;
  /** The variables the kind adds under its service's prefix besides URL/HOST/PORT (e.g. PREFIX). */
  extraEnv?(connection: Connection): Record<string, string>;
  /** The well-known variables when it is the only service of its family. */
  wellKnownEnv(connection: Connection): Record<string, string>;
  /**
   * The variables its command-line clients read (libpq's PGHOST, …), so they connect unasked;
   * set only where no other service of the experiment sets the same one.
   */
  clientEnv?(connection: Connection): Record<string, string>;
  /**
   * An SQL script recreating the tenant's data (no owners, no grants), made with the server's
   * tools. A kind with it takes initial_data and copy_from: its TenantAdmin loads such scripts.
   */
  dump?(tools: ServerTools, tenant: Tenant): Promise<string>;
  /**
   * Connects as administrator; fails (quickly) when the server does not answer yet. `communal`:
   * the server will see many tenants come and go (worth preparing for them). `tools`: the
   * server's own programs, for a kind whose tenants are made with them rather than over its protocol.
   */
  openAdmin(
    access: AdminAccess,
    options: { communal: boolean; tools?: () => Promise<ServerTools> },
  ): Promise<TenantAdmin>;
  /** How it runs in a container; without it, providers running containers do not offer the kind. */
  container?: ContainerRecipe;
  /** How it runs as a process of the laboratory host; without it, the local provider does not offer the kind. */
  native?: NativeRecipe;
}
