import { expect, onTestFinished, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { ensureRouter, stopRouter } from "../../src/lab/router-control.js";
import { commit, experimentLab } from "../support/experiments.js";
import { gitRepo, scratchDir, writeFiles } from "../support/project.js";

/** An app without services that logs every request it gets; `/` never answers, `/healthz` does. */
async function tinyRepo(): Promise<string> {
  const repo = await gitRepo("tiny");
  await writeFiles(repo, {
    "server.js": `const http = require("node:http");
http
  .createServer((request, response) => {
    const via = request.headers["x-forwarded-host"];
    console.log(\`\${request.method} \${request.url}\${via ? \` via \${via}\` : ""}\`);
    if (request.url !== "/") response.end("tiny is healthy\\n");
  })
  .listen(Number(process.env.PORT));
`,
    ".labtest.yml": "labtest:\n  start_command: node server.js\n  health_check_path: /healthz\n",
  });
  await commit(repo, "a tiny app");
  return repo;
}

/** Another laboratory's router, on `port`, stopped when the test ends. */
async function otherLaboratory(port: number): Promise<string> {
  const home = await scratchDir("labtest-other-");
  onTestFinished(() => stopRouter(home).then(() => undefined));
  await ensureRouter(home, port);
  return home;
}

test("create and update ask the app for its health_check_path, directly and through the router, never for /", async () => {
  const lab = await experimentLab({ answerTimeoutMs: 10_000 });
  const loaded = await loadConfig({ cwd: await tinyRepo() });
  const created = await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" });
  await lab.experiments.update({ config: loaded, subdirectory: "" }, "main");
  const requests = (await lab.experiments.logs("tiny", "main"))
    .split("\n")
    .filter((line) => line.startsWith("GET"));
  expect(new Set(requests)).toEqual(
    new Set(["GET /healthz", `GET /healthz via ${created.host}:${lab.routerPort}`]),
  );
  // Once for create, once for update.
  expect(requests.filter((line) => line.includes(" via "))).toHaveLength(2);
});

test("create and update on a port where another laboratory's router runs fail, naming it, and leave nothing", async () => {
  const lab = await experimentLab({ answerTimeoutMs: 10_000 });
  const loaded = await loadConfig({ cwd: await tinyRepo() });
  const other = await otherLaboratory(lab.routerPort);

  const refused = await lab.experiments
    .create({ config: loaded, subdirectory: "" }, { branch: "main" })
    .catch((error: Error) => error);
  expect(refused).toBeInstanceOf(Error);
  expect((refused as Error).message).toContain(
    `port ${lab.routerPort} is taken by the router of another laboratory`,
  );
  expect((refused as Error).message).toContain(other);
  expect(await lab.experiments.list()).toEqual([]);

  await stopRouter(other);
  const created = await lab.experiments.create({ config: loaded, subdirectory: "" }, { branch: "main" });
  expect(created.status).toBe("running");
  await stopRouter(lab.home);
  await ensureRouter(other, lab.routerPort);
  const updating = await lab.experiments
    .update({ config: loaded, subdirectory: "" }, "main")
    .catch((error: Error) => error);
  expect((updating as Error).message).toContain(other);
});
