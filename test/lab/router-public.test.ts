import { expect, test } from "vitest";
import { runCli } from "../support/cli.js";
import { experimentLab, nodeAppRepo, viaRouter } from "../support/experiments.js";

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
