// examples/flask-notes, a Flask + SQLAlchemy app on Debian's Python packages, as a new user runs
// it: create, a note written through the URL labtest prints, update, delete.
import { appendFile, cp, readFile, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, test } from "vitest";
import { LABELS } from "../../src/lab/labels.js";
import { runCli } from "../support/cli.js";
import { docker, localImage } from "../support/docker.js";
import { commit, experimentLab, setConfig } from "../support/experiments.js";
import { gitRepo } from "../support/project.js";

const EXAMPLE = join(import.meta.dirname, "../../examples/flask-notes");

/**
 * A repository holding the example on branch main; for the docker runtime changed as its
 * configuration's comment says, its image built on the local stand-in for debian:bookworm-slim.
 */
async function flaskRepo(runtime: "local" | "docker"): Promise<string> {
  const repo = await gitRepo("flask-notes");
  await cp(EXAMPLE, repo, { recursive: true });
  if (runtime === "docker") {
    await setConfig(repo, (text) =>
      text
        .replace(/ {2}start_command: .*\n/, "  runtime: docker\n")
        .replaceAll("provider: local", "provider: docker"),
    );
    const dockerfile = join(repo, "Dockerfile");
    const text = await readFile(dockerfile, "utf8");
    await writeFile(dockerfile, text.replace(/^FROM .*/m, `FROM ${localImage("python")}`));
  }
  await commit(repo, "the Flask notes app");
  return repo;
}

/** A request to `url` the way a browser sends it: to the router, with the URL's host; JSON answers parsed. */
function browse(url: string, method = "GET", body = ""): Promise<{ status: number; body: unknown }> {
  const { host, port, pathname } = new URL(url);
  return new Promise((resolve, reject) => {
    const sent = request(
      { host: "127.0.0.1", port, path: pathname, method, headers: { host }, agent: false },
      (response) => {
        let text = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          text += chunk;
        });
        response.on("end", () => {
          const json = response.headers["content-type"]?.startsWith("application/json");
          resolve({ status: response.statusCode ?? 0, body: json ? JSON.parse(text) : text });
        });
      },
    );
    sent.on("error", reject);
    sent.end(body);
  });
}

/** Whether a client can still log in with `url` (the tenant's role and database exist). */
async function reachable(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url });
  return client.connect().then(
    () => client.end().then(() => true),
    () => false,
  );
}

describe.each(["local", "docker"] as const)("the Flask example on the %s runtime", (runtime) => {
  test("create serves it at the printed URL, a POST writes a note, update keeps it, delete leaves nothing", async () => {
    const lab = await experimentLab();
    const repo = await flaskRepo(runtime);
    const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
    const cli = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);

    const created = await cli("create");
    expect(created.code, created.stderr).toBe(0);
    const url = /is running at (\S+)/.exec(created.stdout)?.[1] ?? "";
    expect(url).toBe(`http://flask-notes-main.localhost:${lab.routerPort}/`);
    expect(await browse(url, "POST", "buy milk")).toEqual({ status: 201, body: { id: 1, body: "buy milk" } });
    const [first] = lab.experiments.registry.list();
    expect(await browse(url)).toEqual({
      status: 200,
      body: { release: first?.release, notes: [{ id: 1, body: "buy milk" }] },
    });

    await appendFile(join(repo, "app.py"), "# the second release\n");
    await commit(repo, "a second release");
    const updated = await cli("update", "main");
    expect(updated.code, updated.stderr).toBe(0);
    const [second] = lab.experiments.registry.list();
    expect(second?.release).not.toBe(first?.release);
    expect(await browse(url)).toEqual({
      status: 200,
      body: { release: second?.release, notes: [{ id: 1, body: "buy milk" }] },
    });

    const database = await lab.services.environment("flask-notes", "main", {}, { hostReachable: true });
    expect(await reachable(database.DATABASE_URL ?? "")).toBe(true);
    expect(await cli("delete", "main")).toMatchObject({ code: 0, stdout: "deleted flask-notes/main\n" });
    expect(await browse(url)).toMatchObject({ status: 404 });
    expect(lab.experiments.registry.list()).toEqual([]);
    expect(await lab.services.list("flask-notes")).toEqual([]);
    expect(await reachable(database.DATABASE_URL ?? "")).toBe(false);
    const filters = { label: [`${LABELS.laboratory}=${lab.registry.id}`, `${LABELS.experiment}=main`] };
    expect(await docker.listContainers({ all: true, filters })).toEqual([]);
    expect(await docker.listImages({ filters })).toEqual([]);
    expect(await docker.listNetworks({ filters })).toEqual([]);
  });
});
