import { expect, onTestFinished, test } from "vitest";
import { loadConfig } from "../../src/config/resolve.js";
import { EmbeddedLaboratory, PROTOCOL_VERSION } from "../../src/laboratory/index.js";
import { ROUTES, requestPath, type WireError } from "../../src/laboratory/wire.js";
import { exampleRepo } from "../support/experiments.js";
import { testLaboratory } from "../support/laboratory.js";
import { ask, testServer } from "./support.js";

async function embedded() {
  const lab = await testLaboratory();
  const laboratory = new EmbeddedLaboratory({
    env: { ...process.env, LABTEST_HOME: lab.home },
    cwd: lab.home,
    statePath: lab.statePath,
  });
  onTestFinished(() => laboratory.close());
  return { lab, laboratory };
}

test("the OpenAPI document lists every route of the wire table; a listing answers 200 with JSON", async () => {
  const { lab, laboratory } = await embedded();
  const { server, ca, tokens } = await testServer(lab.home, laboratory);
  const openapi = await ask(`${server.url}/api/v1/openapi.json`, ca);
  expect(openapi.status).toBe(200);
  const paths = (
    JSON.parse(openapi.body) as { paths: Record<string, Record<string, { operationId?: string }>> }
  ).paths;
  for (const [kind, route] of Object.entries(ROUTES))
    expect(paths[`/api/v1${route.path}`]?.[route.method.toLowerCase()]?.operationId, kind).toBe(kind);

  const listed = await ask(`${server.url}/api/v1/experiments?app=hello`, ca, { token: tokens.admin });
  expect(listed.status).toBe(200);
  expect(listed.headers["content-type"]).toMatch(/^application\/json/);
  expect(JSON.parse(listed.body)).toEqual([]);
});

test("refusals answer with their status and a WireError: 401 without a good token, 403 outside the scope, 400 with problems, 404, then 429 for an address that keeps failing", async () => {
  const { lab, laboratory } = await embedded();
  const { server, ca, tokens, audit } = await testServer(lab.home, laboratory, {
    failedLogins: { failures: 3, seconds: 60 },
  });
  const repo = await exampleRepo();
  const project = { config: await loadConfig({ cwd: repo }), subdirectory: "" };
  const create = { v: PROTOCOL_VERSION, project, branch: "main" };
  const url = `${server.url}${requestPath("create", create)}`;
  const errorOf = (answer: { body: string }) => (JSON.parse(answer.body) as { error: WireError }).error;

  const forbidden = await ask(url, ca, { method: "POST", token: tokens.read, body: create });
  expect(forbidden.status).toBe(403);
  expect(errorOf(forbidden)).toMatchObject({ type: "PermissionError", exitCode: 77 });
  expect(errorOf(forbidden).summary).toMatch(/reader may not create: it needs the deploy scope/);
  const otherApp = await ask(url, ca, { method: "POST", token: tokens.shop, body: create });
  expect(otherApp.status).toBe(403);
  expect(errorOf(otherApp).summary).toMatch(/shop-ci may not create of app hello/);

  const bad = await ask(url, ca, {
    method: "POST",
    token: tokens.admin,
    body: { v: PROTOCOL_VERSION, branch: "" },
  });
  expect(bad.status).toBe(400);
  expect(errorOf(bad)).toMatchObject({ type: "UsageError", exitCode: 2 });
  expect(errorOf(bad).problems.map((p) => p.where)).toEqual(expect.arrayContaining(["project", "branch"]));
  const nowhere = await ask(`${server.url}/api/v1/nowhere`, ca, { token: tokens.admin });
  expect(nowhere.status).toBe(404);
  expect(errorOf(nowhere).summary).toMatch(/the laboratory has no GET \/api\/v1\/nowhere/);
  // The refusals of a deploy request are in the audit log, as every other attempt to change.
  expect(audit.map((entry) => [entry.who, entry.what, entry.result.split(":")[0]])).toEqual([
    ["reader", "create", "PermissionError"],
    ["shop-ci", "create", "PermissionError"],
  ]);

  const list = `${server.url}/api/v1/experiments`;
  expect((await ask(list, ca)).status).toBe(401);
  expect(errorOf(await ask(list, ca, { token: "lt_not-a-token" }))).toMatchObject({
    type: "AuthenticationError",
    exitCode: 77,
  });
  expect((await ask(list, ca, { token: "lt_still-not" })).status).toBe(401);
  const limited = await ask(list, ca, { token: tokens.admin });
  expect(limited.status).toBe(429);
  expect(Number(limited.headers["retry-after"])).toBeGreaterThan(0);
  expect(errorOf(limited).summary).toMatch(/too many failed authentications from 127\.0\.0\.1/);
});
