import { expect, onTestFinished, test } from "vitest";
import { EmbeddedLaboratory } from "../../src/laboratory/index.js";
import { ROUTES } from "../../src/laboratory/wire.js";
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
  const { server, ca } = await testServer(lab.home, laboratory);
  const openapi = await ask(`${server.url}/api/v1/openapi.json`, ca);
  expect(openapi.status).toBe(200);
  const paths = (
    JSON.parse(openapi.body) as { paths: Record<string, Record<string, { operationId?: string }>> }
  ).paths;
  for (const [kind, route] of Object.entries(ROUTES))
    expect(paths[`/api/v1${route.path}`]?.[route.method.toLowerCase()]?.operationId, kind).toBe(kind);

  const listed = await ask(`${server.url}/api/v1/experiments?app=hello`, ca, { token: "admin-token" });
  expect(listed.status).toBe(200);
  expect(listed.headers["content-type"]).toMatch(/^application\/json/);
  expect(JSON.parse(listed.body)).toEqual([]);
});
