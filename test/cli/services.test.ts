import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { describe, expect, it } from "vitest";
import { runCli } from "../support/cli.js";
import { writeAndRead } from "../support/clients.js";
import { testLaboratory } from "../support/laboratory.js";
import { gitRepo } from "../support/project.js";

const CONFIG = `labtest:
  app_name: shop
  environment:
    REDIS_PREFIX: "custom:"
    DB_CONNECTION_STRING: $DATABASE_URL
    CACHE: "\${REDIS_URL}/0"
    PUBLIC_URL: $EXPERIMENT_URL
    LINK: http://$VIRTUAL_HOST/cart
    NAMED: $APP_NAME-$EXPERIMENT
    BASE: /srv
    UPLOADS: $BASE/uploads
  services:
    db: { provider: local, service: postgresql }
    cache: { provider: local, service: redis, provision_type: independent }
`;

describe("labtest services", () => {
  it("up, env, list and down an experiment named after the branch; up twice gives the same credentials", async () => {
    const lab = await testLaboratory();
    const repo = await gitRepo("shop");
    await execa("git", ["-C", repo, "checkout", "-q", "-b", "feature/Cart"]);
    await writeFile(join(repo, ".labtest.yml"), CONFIG);
    const env = { ...process.env, LABTEST_HOME: lab.home };
    const cli = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);

    const up = await cli("services", "up");
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toMatch(/^shop\/feature-cart-[0-9a-f]{6}\/db: postgresql on local, communal, ready/m);
    expect(up.stdout).toMatch(/\/cache: redis on local, independent, ready/);
    const first = JSON.parse((await cli("--json", "services", "env")).stdout) as Record<string, string>;
    expect(up.stdout).not.toContain(first.DB_PASSWORD);

    const again = await cli("--json", "services", "up");
    expect(again.code).toBe(0);
    expect(JSON.parse((await cli("--json", "services", "env")).stdout)).toEqual(first);
    expect(first.REDIS_PREFIX).toBe("custom:");
    // Apps that read their own names get the services' variables through environment.
    expect(first.DB_CONNECTION_STRING).toBe(first.DATABASE_URL);
    expect(first.CACHE).toBe(`${first.REDIS_URL}/0`);
    // The experiment's own variables expand as they will for its app, which is not created yet:
    // its host is the one host_name_pattern gives it; an entry expands from the entries before it.
    const experiment = up.stdout.match(/^shop\/(feature-cart-[0-9a-f]{6})\//)?.[1];
    expect(first).toMatchObject({
      PUBLIC_URL: `http://shop-${experiment}.localhost:8080`,
      LINK: `http://shop-${experiment}.localhost/cart`,
      NAMED: `shop-${experiment}`,
      UPLOADS: "/srv/uploads",
    });
    expect(await writeAndRead("postgresql", first, "DB", "from the CLI's env")).toBe("from the CLI's env");
    const sourced = await cli("services", "env");
    expect(sourced.stdout).toContain(`DATABASE_URL=${first.DATABASE_URL}\n`);

    const list = await cli("services", "list", "--app", "shop");
    expect(list.stdout.trim().split("\n")).toHaveLength(2);

    const down = await cli("services", "down");
    expect(down).toMatchObject({ code: 0 });
    expect(down.stdout).toMatch(/^removed cache, db of feature-cart-/);
    expect((await cli("services", "list")).stdout).toBe("no services of shop\n");
  });

  it("a service that is not configured is a usage error, and nothing is created", async () => {
    const lab = await testLaboratory();
    const repo = await gitRepo("shop");
    await writeFile(join(repo, ".labtest.yml"), CONFIG);
    const env = { ...process.env, LABTEST_HOME: lab.home };
    const result = await runCli(["--state", lab.statePath, "services", "up", "dbb", "-e", "main"], repo, env);
    expect(result).toMatchObject({ code: 2, stdout: "" });
    expect(result.stderr).toBe(
      "labtest: no configured service named dbb\n  - service names: the configured services are: db, cache\n      fix: name one of them\n",
    );
    expect(await lab.services.list()).toEqual([]);
  });
});
