// The PostgreSQL and MySQL variables an app receives, read by the parsers and clients apps use:
// pg-connection-string and node-postgres, SQLAlchemy with psycopg2, Django's dj-database-url,
// Rails' ActiveRecord with ruby-pg, psql, MariaDB's client. Prisma and Go's pgx are not among
// them: Prisma's query engine is a binary it downloads at install (no host serves it here), and
// pgx is a Go module, which no registry we reach provides.
import { execa } from "execa";
import pg from "pg";
import { parseIntoClientConfig } from "pg-connection-string";
import { describe, expect, test } from "vitest";
import type { ServiceRecord } from "../../src/services/index.js";
import { serviceConfig, type TestLaboratory, testLaboratory } from "../support/laboratory.js";

/** Debian's Python (python3-sqlalchemy, python3-psycopg2, python3-dj-database-url), not whatever python3 comes first on PATH. */
const DEBIAN_PYTHON = "/usr/bin/python3";
/** Debian's Ruby (ruby-activerecord, ruby-pg). */
const DEBIAN_RUBY = "/usr/bin/ruby";
/** Where the clients are found, and nothing else of this process's environment. */
const CLIENT_PATH = "/usr/local/bin:/usr/bin:/bin";

/** What a script of `program` printed as JSON, run with `url` as its only variable URL. */
async function printedBy(program: string, args: string[], url: string): Promise<Record<string, unknown>> {
  const { stdout } = await execa(program, args, { env: { URL: url }, extendEnv: false });
  return JSON.parse(stdout);
}

/** What SQLAlchemy reads from `url`, and who it is once connected with it. */
function throughSqlalchemy(url: string): Promise<Record<string, unknown>> {
  const script = `
import json, os
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
url = make_url(os.environ["URL"])
with create_engine(url).connect() as connection:
    database, user = connection.execute(text("SELECT current_database(), current_user")).one()
print(json.dumps({"backend": url.get_backend_name(), "host": url.host, "port": url.port,
  "user": url.username, "password": url.password, "database": url.database,
  "connected": [database, user]}))`;
  return printedBy(DEBIAN_PYTHON, ["-c", script], url);
}

/**
 * What Django's dj-database-url reads from `url`, and who it is once connected with those
 * settings as Django's PostgreSQL backend passes them to psycopg2.
 */
function throughDjangoDatabaseUrl(url: string): Promise<Record<string, unknown>> {
  const script = `
import json, os, dj_database_url, psycopg2
settings = dj_database_url.parse(os.environ["URL"])
connection = psycopg2.connect(dbname=settings["NAME"], user=settings["USER"],
  password=settings["PASSWORD"], host=settings["HOST"], port=settings["PORT"])
with connection.cursor() as cursor:
    cursor.execute("SELECT current_database(), current_user")
    database, user = cursor.fetchone()
connection.close()
print(json.dumps({"engine": settings["ENGINE"], "host": settings["HOST"], "port": settings["PORT"],
  "user": settings["USER"], "password": settings["PASSWORD"], "database": settings["NAME"],
  "connected": [database, user]}))`;
  return printedBy(DEBIAN_PYTHON, ["-c", script], url);
}

/** What Rails' ActiveRecord reads from `url` (as DATABASE_URL), and who it is once connected with it. */
function throughActiveRecord(url: string): Promise<Record<string, unknown>> {
  const script = `
require "active_record"
require "json"
ActiveRecord::Base.establish_connection(ENV.fetch("URL"))
config = ActiveRecord::Base.connection_db_config.configuration_hash
database, user = ActiveRecord::Base.connection.select_rows("SELECT current_database(), current_user").first
puts JSON.generate(adapter: config[:adapter], host: config[:host], port: config[:port],
  user: config[:username], password: config[:password], database: config[:database],
  connected: [database, user])`;
  return printedBy(DEBIAN_RUBY, ["-e", script], url);
}

/** Who node-postgres is, connected with `url` as its connection string. */
async function throughNodePostgres(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query("SELECT current_database() AS d, current_user AS u");
    return [rows[0].d, rows[0].u];
  } finally {
    await client.end();
  }
}

/** The connection `env` gives service `name`: the parts of its URL as its own variables say them. */
function parts(env: Record<string, string>, name: string) {
  return {
    host: env[`${name}_HOST`],
    port: Number(env[`${name}_PORT`]),
    user: env[`${name}_USER`],
    password: env[`${name}_PASSWORD`],
    database: env[`${name}_NAME`],
  };
}

/** Runs a client program with only `env` (and a PATH to find it); resolves to what it printed. */
async function client(program: string, args: string[], env: Record<string, string>): Promise<string> {
  const { stdout } = await execa(program, args, { env: { PATH: CLIENT_PATH, ...env }, extendEnv: false });
  return stdout.trim();
}

/** The experiment `shop/<experiment>`'s services, up, and its app's variables as the laboratory host reaches them. */
async function upEnvironment(
  lab: TestLaboratory,
  experiment: string,
  services: Parameters<TestLaboratory["services"]["up"]>[0]["services"],
  explicit: Record<string, string> = {},
): Promise<Record<string, string>> {
  await lab.services.up({ app: "shop", experiment, services });
  return lab.services.environment("shop", experiment, explicit, { hostReachable: true });
}

describe("PostgreSQL URLs use postgresql://, which every client parses", () => {
  test("communal, independent, shared and external: pg-connection-string, SQLAlchemy, dj-database-url and ActiveRecord read the same connection, and they and node-postgres connect as the tenant", async () => {
    const lab = await testLaboratory();
    const communal = await upEnvironment(lab, "main", { db: serviceConfig("local", "postgresql") });
    const independent = await upEnvironment(lab, "own", {
      db: serviceConfig("local", "postgresql", "independent"),
    });
    const shared = await upEnvironment(lab, "review", {
      db: serviceConfig("local", "postgresql", "shared", { shared_experiment_name: "main" }),
    });
    const [record] = (await lab.registry.list<ServiceRecord>("services")).filter(
      (r) => r.owner.experiment === "main",
    );
    const server = await lab.registry.read<{ admin: { port: number; password: string } }>(
      "servers",
      record?.server ?? "",
    );
    const managed = await testLaboratory({
      "/services/external/postgresql/default": {
        url: `postgresql://postgres:${server?.admin.password}@127.0.0.1:${server?.admin.port}`,
      },
    });
    const external = await upEnvironment(managed, "managed", { db: serviceConfig("external", "postgresql") });

    for (const [provisioning, env] of Object.entries({ communal, independent, shared, external })) {
      const expected = parts(env, "DB");
      const url = env.DATABASE_URL ?? "";
      expect(env.DB_URL, provisioning).toBe(url);
      expect(url, provisioning).toMatch(/^postgresql:\/\//);
      expect(parseIntoClientConfig(url), provisioning).toMatchObject(expected);
      expect(await throughNodePostgres(url), provisioning).toEqual([expected.database, expected.user]);
      expect(await throughSqlalchemy(url), provisioning).toEqual({
        backend: "postgresql",
        ...expected,
        connected: [expected.database, expected.user],
      });
      expect(await throughDjangoDatabaseUrl(url), provisioning).toEqual({
        engine: "django.db.backends.postgresql_psycopg2",
        ...expected,
        connected: [expected.database, expected.user],
      });
      expect(await throughActiveRecord(url), provisioning).toEqual({
        adapter: "postgresql",
        ...expected,
        connected: [expected.database, expected.user],
      });
    }
  });
});

describe("the clients' own variables, for the only service they can mean", () => {
  test("one PostgreSQL and one MariaDB: psql connects as the tenant unasked, mariadb given only the user (its client reads none from the environment)", async () => {
    const lab = await testLaboratory();
    const env = await upEnvironment(lab, "main", {
      db: serviceConfig("local", "postgresql"),
      legacy: serviceConfig("local", "mariadb"),
    });
    const db = parts(env, "DB");
    expect(env).toMatchObject({
      PGHOST: db.host,
      PGPORT: String(db.port),
      PGUSER: db.user,
      PGPASSWORD: db.password,
      PGDATABASE: db.database,
    });
    const libpq = Object.fromEntries(Object.entries(env).filter(([key]) => key.startsWith("PG")));
    expect(await client("psql", ["-Atc", "SELECT current_database(), current_user"], libpq)).toBe(
      `${db.database}|${db.user}`,
    );

    const legacy = parts(env, "LEGACY");
    expect(env).toMatchObject({
      MYSQL_HOST: legacy.host,
      MYSQL_TCP_PORT: String(legacy.port),
      MYSQL_PWD: legacy.password,
    });
    const mysqlEnv = Object.fromEntries(Object.entries(env).filter(([key]) => key.startsWith("MYSQL_")));
    expect(
      await client(
        "mariadb",
        [`--user=${legacy.user}`, "-N", "-e", "SELECT CURRENT_USER()", legacy.database ?? ""],
        mysqlEnv,
      ),
    ).toBe(`${legacy.user}@%`);
  });

  test("two PostgreSQL services: no PG variables (psql cannot guess which), and an app's own PGDATABASE wins over the generated one", async () => {
    const lab = await testLaboratory();
    const two = await upEnvironment(lab, "main", {
      db: serviceConfig("local", "postgresql"),
      reports: serviceConfig("local", "postgresql"),
    });
    expect(Object.keys(two).filter((key) => key.startsWith("PG"))).toEqual([]);

    const own = await upEnvironment(
      lab,
      "other",
      { db: serviceConfig("local", "postgresql") },
      {
        PGDATABASE: "postgres",
      },
    );
    expect(own.PGDATABASE).toBe("postgres");
    expect(own.PGUSER).toBe(own.DB_USER);
  });
});
