import getPort from "get-port";
import { expect, test } from "vitest";
import { EmbeddedLaboratory } from "../../src/laboratory/index.js";
import { runCli } from "../support/cli.js";
import { experimentLab, nodeAppRepo, viaRouter } from "../support/experiments.js";
import { laptopEnv, login, servedLaboratory } from "../support/remote.js";

/** An app that answers with its EXPERIMENT_URL and the forwarding headers the router gave it. */
const ECHO = `require("http").createServer((q, s) => s.end(JSON.stringify({
  url: process.env.EXPERIMENT_URL,
  proto: q.headers["x-forwarded-proto"],
  for: q.headers["x-forwarded-for"],
}))).listen(process.env.PORT);
`;

test("behind a TLS proxy: the public base set on lab start gives the URLs, and the proxy on loopback is trusted", async () => {
  const lab = await experimentLab();
  const repo = await nodeAppRepo(ECHO);
  // The port is the one lab start keeps, not the environment's.
  const { LABTEST_ROUTER_PORT: _, ...inherited } = process.env;
  const env = { ...inherited, LABTEST_HOME: lab.home };
  const cli = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);
  const port = String(lab.routerPort);

  expect(await cli("lab", "start", "--public", "ftp")).toMatchObject({
    code: 2,
    stderr: expect.stringContaining(
      "'ftp' is not a scheme with an optional port (https, https:8443, http:80)",
    ),
  });
  expect(await cli("lab", "start", "--trust-proxy", "proxy.example.com")).toMatchObject({
    code: 2,
    stderr: expect.stringContaining("'proxy.example.com' is not an IP address or a subnet"),
  });
  expect((await cli("lab", "status")).stdout).toBe("router not running\n");

  const started = await cli("lab", "start", "--port", port, "--public", "https");
  expect(started.stdout, started.stderr).toMatch(
    new RegExp(
      `^router running on localhost port ${port} \\(pid \\d+\\), serving https://<host>/, trusting X-Forwarded-\\* from 127\\.0\\.0\\.0/8, ::1\\n$`,
    ),
  );
  const created = await cli("create");
  expect(created, created.stderr).toMatchObject({
    code: 0,
    stdout: "hello/main is running at https://hello-main.localhost/\n",
  });
  expect((await cli("list")).stdout).toContain(" https://hello-main.localhost/ ");
  const proxied = await viaRouter(lab.routerPort, "hello-main.localhost", {
    "x-forwarded-proto": "https",
    "x-forwarded-for": "203.0.113.9",
  });
  expect(JSON.parse(proxied.body)).toEqual({
    url: "https://hello-main.localhost",
    proto: "https",
    for: "203.0.113.9, 127.0.0.1",
  });

  // Trusting nobody: the router restarts, and what a client claims is replaced again.
  const distrusting = await cli("lab", "start", "--trust-proxy", "none");
  expect(distrusting.stdout).toContain("serving https://<host>/, trusting X-Forwarded-* from nobody\n");
  const direct = await viaRouter(lab.routerPort, "hello-main.localhost", { "x-forwarded-proto": "https" });
  expect(JSON.parse(direct.body)).toMatchObject({ proto: "http", for: "127.0.0.1" });

  // Back to the router's own URLs.
  const plain = await cli("lab", "start", "--public", "direct");
  expect(plain.stdout).toMatch(new RegExp(`^router running on localhost port ${port} \\(pid \\d+\\)\\n$`));
  expect((await cli("list")).stdout).toContain(` http://hello-main.localhost:${port}/ `);
}, 120_000);

test("a laboratory served for hours follows the port and public base its administrator sets with lab start meanwhile", async () => {
  const lab = await experimentLab();
  const repo = await nodeAppRepo(ECHO);
  const { LABTEST_ROUTER_PORT: _, ...inherited } = process.env;
  const env = { ...inherited, LABTEST_HOME: lab.home };
  const admin = (...argv: string[]) => runCli(["--state", lab.statePath, ...argv], repo, env);
  const first = String(lab.routerPort);
  expect((await admin("lab", "start", "--port", first)).code).toBe(0);

  // serve's laboratory, open from before the administrator's change to after it.
  const laboratory = new EmbeddedLaboratory({ env, cwd: lab.home, statePath: lab.statePath });
  const { server, tokens, fingerprint } = await servedLaboratory(lab.home, laboratory);
  const laptop = { ...(await laptopEnv()), LABTEST_HOST: server.url };
  const token = tokens.create({ name: "dev", scope: "deploy" }).token;
  expect((await login(server, laptop, token, "--fingerprint", fingerprint)).code).toBe(0);
  const remote = (...argv: string[]) => runCli(argv, repo, laptop);
  const before = await remote("create");
  expect(before, before.stderr).toMatchObject({
    code: 0,
    stdout: `hello/main is running at http://hello-main.localhost:${first}/\n`,
  });

  const second = String(await getPort({ host: "127.0.0.1" }));
  expect((await admin("lab", "start", "--port", second, "--public", "https")).code).toBe(0);
  const after = await remote("create", "--name", "other");
  expect(after, after.stderr).toMatchObject({
    code: 0,
    stdout: "hello/other is running at https://hello-other.localhost/\n",
  });
  expect((await admin("lab", "status")).stdout).toContain(`router running on localhost port ${second} `);
  expect((await viaRouter(Number(second), "hello-main.localhost")).status).toBe(200);
}, 120_000);
