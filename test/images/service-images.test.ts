import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import memjs from "memjs";
import mysql from "mysql2/promise";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { localImage, removeRunContainers, startContainer, whenReady } from "../support/docker.js";

// Each locally built image must honour the official image's environment interface, so that the
// code path users run with postgres:16 or mariadb:11 is the one tested here.
describe("service images (real Docker Engine, real clients)", () => {
  afterAll(removeRunContainers);

  it("PostgreSQL: POSTGRES_USER/PASSWORD/DB create the superuser and database; a wrong password is refused", async () => {
    const container = await startContainer(localImage("postgresql"), {
      env: { POSTGRES_PASSWORD: "s3cret'pw", POSTGRES_USER: "smoke", POSTGRES_DB: "smokedb" },
      ports: [5432],
    });
    const connect = (password: string) =>
      new pg.Client({
        host: "127.0.0.1",
        port: container.hostPort(5432),
        user: "smoke",
        password,
        database: "smokedb",
      });
    const client = await whenReady(container, "PostgreSQL", async () => {
      const c = connect("s3cret'pw");
      try {
        await c.connect();
        return c;
      } catch (error) {
        await c.end().catch(() => undefined);
        throw error;
      }
    });
    try {
      await client.query("CREATE TABLE notes (body text)");
      await client.query("INSERT INTO notes VALUES ($1)", ["hello"]);
      const { rows } = await client.query(
        "SELECT current_user, current_database(), (SELECT body FROM notes) AS body",
      );
      expect(rows[0]).toEqual({ current_user: "smoke", current_database: "smokedb", body: "hello" });
    } finally {
      await client.end();
    }
    const intruder = connect("wrong");
    await expect(intruder.connect()).rejects.toThrow(/password authentication failed/);
    await intruder.end().catch(() => undefined);
  });

  it("MariaDB: MYSQL_ROOT_PASSWORD/DATABASE/USER/PASSWORD create root, the database and a user limited to it", async () => {
    const container = await startContainer(localImage("mariadb"), {
      env: {
        MYSQL_ROOT_PASSWORD: "rootpw",
        MYSQL_DATABASE: "smokedb",
        MYSQL_USER: "smoke",
        MYSQL_PASSWORD: "userpw",
      },
      ports: [3306],
    });
    const port = container.hostPort(3306);
    const user = await whenReady(container, "MariaDB", () =>
      mysql.createConnection({
        host: "127.0.0.1",
        port,
        user: "smoke",
        password: "userpw",
        database: "smokedb",
      }),
    );
    try {
      await user.query("CREATE TABLE notes (body text)");
      await user.query("INSERT INTO notes VALUES (?)", ["hello"]);
      const [rows] = await user.query("SELECT body FROM notes");
      expect(rows).toEqual([{ body: "hello" }]);
      await expect(user.query("CREATE DATABASE other")).rejects.toThrow(/Access denied/);
    } finally {
      await user.end();
    }
    const root = await mysql.createConnection({ host: "127.0.0.1", port, user: "root", password: "rootpw" });
    try {
      const [databases] = await root.query("SHOW DATABASES LIKE 'smokedb'");
      expect(databases).toHaveLength(1);
    } finally {
      await root.end();
    }
  });

  it("Redis: answers on 6379 from outside the container, without protected mode", async () => {
    const container = await startContainer(localImage("redis"), { ports: [6379] });
    const redis = await whenReady(container, "Redis", async () => {
      const client = new Redis({
        host: "127.0.0.1",
        port: container.hostPort(6379),
        lazyConnect: true,
        retryStrategy: () => null,
      });
      client.on("error", () => undefined); // connection errors reach us through connect() below
      try {
        await client.connect();
        await client.ping();
        return client;
      } catch (error) {
        client.disconnect();
        throw error;
      }
    });
    try {
      await redis.set("smoke", "hello");
      expect(await redis.get("smoke")).toBe("hello");
    } finally {
      redis.disconnect();
    }
  });

  it("Memcached: stores and returns a value", async () => {
    const container = await startContainer(localImage("memcached"), { ports: [11211] });
    // A fresh client per attempt: memjs can leave a request pending on a connection reset while
    // the server starts, so each attempt is also bounded.
    const client = await whenReady(container, "Memcached", async () => {
      const attempt = memjs.Client.create(`127.0.0.1:${container.hostPort(11211)}`, {
        retries: 0,
        timeout: 1,
        logger: { log: () => undefined }, // refused connections while the server starts are expected
      });
      try {
        await Promise.race([
          attempt.set("smoke", "hello", { expires: 60 }),
          sleep(2_000).then(() => Promise.reject(new Error("no answer within 2 s"))),
        ]);
        return attempt;
      } catch (error) {
        attempt.close();
        throw error;
      }
    });
    try {
      const { value } = await client.get("smoke");
      expect(value?.toString()).toBe("hello");
    } finally {
      client.close();
    }
  });
});
