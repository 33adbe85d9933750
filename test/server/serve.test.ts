import { chown, readFile } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { execa } from "execa";
import getPort from "get-port";
import { expect, onTestFinished, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { codeSource } from "../../src/laboratory/code.js";
import { HttpsLaboratory } from "../../src/laboratory/https.js";
import { PROTOCOL_VERSION } from "../../src/laboratory/index.js";
import { requestPath, type StreamLine } from "../../src/laboratory/wire.js";
import { certificateFingerprint, initLaboratoryTls } from "../../src/server/tls.js";
import { TokenStore } from "../../src/server/tokens.js";
import { exampleRepo, experimentLab, viaRouter } from "../support/experiments.js";
import { scratchDir } from "../support/project.js";

const BIN = join(import.meta.dirname, "../../bin/labtest.js");

/**
 * POSTs `body` and calls `line` with each line of the streamed answer as it arrives; resolves to
 * the status and every line once the stream ends.
 */
function streamed(
  url: string,
  ca: string,
  token: string,
  body: unknown,
  line: (line: StreamLine) => void,
): Promise<{ status: number; type: string | undefined; lines: StreamLine[] }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        ca,
        agent: false,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      },
      (response) => {
        const lines: StreamLine[] = [];
        let pending = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          pending += chunk;
          const whole = pending.split("\n");
          pending = whole.pop() ?? "";
          for (const text of whole) {
            const parsed = JSON.parse(text) as StreamLine;
            lines.push(parsed);
            line(parsed);
          }
        });
        response.on("error", reject);
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, type: response.headers["content-type"], lines }),
        );
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

test("labtest serve as its own process: a create streams its steps then its result, the router serves the experiment, and a SIGTERM during the create lets it finish", async () => {
  const lab = await experimentLab();
  const repo = await exampleRepo();
  const { files } = await initLaboratoryTls(lab.home);
  const store = new TokenStore(lab.home);
  const { token } = store.create({ name: "ci", scope: "deploy" });
  store.close();
  const port = await getPort({ host: "127.0.0.1" });
  const env = { ...process.env, LABTEST_HOME: lab.home, LABTEST_ROUTER_PORT: String(lab.routerPort) };
  const serve = execa(
    process.execPath,
    [BIN, "--state", lab.statePath, "serve", "--listen", `127.0.0.1:${port}`],
    // The SIGTERM below must not turn into execa's SIGKILL 5 s later: the create takes longer.
    { env, cwd: lab.home, reject: false, all: true, forceKillAfterDelay: false },
  );
  onTestFinished(() => void serve.kill("SIGKILL"));
  await new Promise<void>((resolve, reject) => {
    serve.stdout?.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("the laboratory's API on")) resolve();
    });
    void serve.then((ended) => reject(new Error(`serve ended: ${ended.all}`)));
  });

  const ca = await readFile(files.ca, "utf8");
  const url = `https://127.0.0.1:${port}`;
  const loaded = await loadConfig({ cwd: repo });
  // The repository is a path on this "laptop": its branch is pushed to the laboratory first.
  const client = new HttpsLaboratory({ url, token, ca, fingerprint: certificateFingerprint(ca) });
  onTestFinished(() => client.close());
  const code = await codeSource(client, loaded, "main", { embedded: false });
  expect(code?.kind).toBe("pushed");
  const create = { v: PROTOCOL_VERSION, project: { config: loaded, subdirectory: "" }, branch: "main", code };
  let stopped = false;
  const answer = await streamed(`${url}${requestPath("create", create)}`, ca, token, create, () => {
    if (stopped) return;
    stopped = true;
    serve.kill("SIGTERM");
  });

  expect(answer.status).toBe(200);
  expect(answer.type).toBe("application/x-ndjson");
  const last = answer.lines.at(-1);
  expect(last, JSON.stringify(last)).toHaveProperty("result");
  const result = (last as { result: { app: string; name: string; status: string; host: string } }).result;
  expect(result).toMatchObject({ app: "hello", name: "main", status: "running" });
  const steps = answer.lines.slice(0, -1);
  expect(steps.length).toBeGreaterThan(1);
  expect(steps.every((line) => "event" in line && line.event.type === "step")).toBe(true);

  const ended = await serve;
  expect(ended.exitCode, ended.all).toBe(0);
  expect(ended.stdout).toMatch(
    /stopping \(SIGTERM\)[\s\S]*POST \/api\/v1\/apps\/hello\/experiments 200 [\s\S]*stopped/,
  );
  expect(ended.all).not.toContain(token);
  expect((await viaRouter(lab.routerPort, result.host)).status).toBe(200);
});

test.runIf(process.getuid?.() === 0)(
  "labtest serve run by an ordinary user says first that its apps run as that user, who can read the laboratory",
  async () => {
    const home = await scratchDir();
    await chown(home, 65534, 65534);
    // Without a certificate serve stops right after its start: what it said first is enough.
    const serve = await execa(
      "runuser",
      ["-u", "nobody", "--", process.execPath, BIN, "serve", "--listen", "127.0.0.1:0"],
      { env: { ...process.env, LABTEST_HOME: home, HOME: home }, cwd: home, reject: false },
    );
    expect(serve.stderr.split("\n")[0]).toMatch(
      /^labtest serve: warning: not running as root, so every app runs as nobody, .*can read its home \(the age identity/,
    );
  },
);
