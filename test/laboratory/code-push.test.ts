import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { execa } from "execa";
import { expect, onTestFinished, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { releaseDelivery } from "../../src/laboratory/code.js";
import { EmbeddedLaboratory, type Laboratory, PROTOCOL_VERSION as v } from "../../src/laboratory/index.js";
import { answeredViaRouter, commit, exampleRepo, experimentLab, setConfig } from "../support/experiments.js";

/** A request as it crosses a wire: only what JSON carries arrives. */
const wire = <T>(request: T): T => JSON.parse(JSON.stringify(request)) as T;

/**
 * A laboratory on another machine, as the client sees it: an embedded one in its own home that
 * takes no paths of the client's, every request round-tripped through JSON; the bundles pushed
 * are recorded (their sizes in bytes).
 */
async function remoteLaboratory() {
  const lab = await experimentLab();
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const embedded = new EmbeddedLaboratory({
    env,
    cwd: lab.home,
    statePath: lab.statePath,
    acceptsLocalPaths: false,
  });
  onTestFinished(() => embedded.close());
  const bundles: number[] = [];
  const laboratory = new Proxy(embedded, {
    get(target, property) {
      const method = Reflect.get(target, property) as unknown;
      if (typeof method !== "function") return method;
      return (request: unknown, ...rest: unknown[]) => {
        if (property === "codePush")
          bundles.push(Buffer.from((request as { bundle: string }).bundle, "base64").length);
        return (method as (...args: unknown[]) => unknown).call(target, wire(request), ...rest);
      };
    },
  }) as Laboratory;
  return { lab, laboratory, bundles };
}

async function head(repo: string): Promise<string> {
  return (await execa("git", ["-C", repo, "rev-parse", "HEAD"])).stdout;
}

test("a repository only on the laptop reaches a remote laboratory as bundles: the whole branch first, then only the new commit", async () => {
  const { lab, laboratory, bundles } = await remoteLaboratory();
  // The laptop's repository: no remote at all, and a megabyte that travels once.
  const repo = await exampleRepo();
  await writeFile(join(repo, "large.bin"), randomBytes(1024 * 1024));
  await commit(repo, "a large file");
  const loaded = await loadConfig({ cwd: repo });
  const project = { config: loaded, subdirectory: "" };

  const first = await releaseDelivery(laboratory, loaded, "main", { embedded: false });
  expect(first.code).toEqual({ kind: "pushed", commit: await head(repo) });
  const created = await laboratory.create({ v, project, branch: "main", ...first });
  expect(created.release).toBe(await head(repo));
  expect(await answeredViaRouter(lab.routerPort, created.host, 20)).toContain("Hello from labtest");
  expect(bundles).toHaveLength(1);
  expect(bundles[0]).toBeGreaterThan(1024 * 1024);

  await setConfig(repo, (text) => text.replace("GREETING=Hello from labtest", "GREETING=Hello again"));
  await commit(repo, "a one-line change");
  const second = await releaseDelivery(laboratory, loaded, "main", { embedded: false });
  expect(second.code).toEqual({ kind: "pushed", commit: await head(repo) });
  const updated = await laboratory.update({ v, project, name: "main", ...second });
  expect(updated.release).toBe(await head(repo));
  expect(bundles).toHaveLength(2);
  expect(bundles[1]).toBeLessThan((bundles[0] ?? 0) / 50);
  expect(await answeredViaRouter(lab.routerPort, updated.host, 20)).toContain("Hello again");
  const status = await laboratory.status({ v, project, name: "main" });
  expect(status?.release).toBe(await head(repo));

  // Nothing new: nothing travels, and the laboratory still runs what was pushed.
  expect((await releaseDelivery(laboratory, loaded, "main", { embedded: false })).code?.kind).toBe("pushed");
  expect(bundles).toHaveLength(2);
});

test("a laboratory on another machine refuses a repository named by a path of the client's", async () => {
  const { laboratory } = await remoteLaboratory();
  const repo = await exampleRepo();
  const loaded = await loadConfig({ cwd: repo });
  const project = { config: loaded, subdirectory: "" };
  for (const code of [
    { kind: "local" as const, repository: repo },
    { kind: "url" as const, url: `file://${repo}` },
  ])
    await expect(laboratory.create({ v, project, branch: "main", code })).rejects.toThrow(
      `this laboratory cannot read the repository`,
    );
  // No source said: the configuration's code_repo_url, here the laptop's path, is refused too.
  await expect(laboratory.create({ v, project, branch: "main" })).rejects.toThrow(
    `this laboratory cannot read the repository ${repo}`,
  );
  expect(await laboratory.list({ v, app: "hello" })).toEqual([]);
});
