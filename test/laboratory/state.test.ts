import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, onTestFinished, test } from "vitest";
import { UsageError } from "../../src/errors.js";
import { EmbeddedLaboratory, PROTOCOL_VERSION as v } from "../../src/laboratory/index.js";
import { scratchDir } from "../support/project.js";

/** A request as it crosses a wire: only what JSON carries arrives. */
const wire = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

async function laboratory(state: object) {
  const home = await scratchDir("labtest-lab-");
  const statePath = join(home, "state.json");
  await writeFile(statePath, JSON.stringify(state));
  await writeFile(join(home, "s.yml"), "{}\n");
  const lab = new EmbeddedLaboratory({ env: { ...process.env, LABTEST_HOME: home }, cwd: home, statePath });
  onTestFinished(() => lab.close());
  return { lab, statePath };
}

test("an administrator checks, sets and unsets the laboratory's state through plain requests", async () => {
  const { lab, statePath } = await laboratory({
    provider: "local",
    service: "file",
    options: { path: "s.yml" },
  });
  expect(await lab.stateCheck(wire({ v }))).toEqual({
    file: statePath,
    provider: "local",
    service: "file",
    reachable: true,
    warnings: [],
  });
  await lab.stateSet(wire({ v, key: "/services/postgresql/default", value: { version: "15" } }));
  expect(await lab.stateGet(wire({ v, key: "/services/postgresql/hello" }))).toMatchObject({
    found: true,
    answeredBy: "/services/postgresql/default",
    value: { version: "15" },
  });
  expect(await lab.stateUnset(wire({ v, key: "/services/postgresql/default" }))).toEqual({ removed: true });
  expect(await lab.stateUnset(wire({ v, key: "/services/postgresql/default" }))).toEqual({ removed: false });
  // A request without a value, or with a key that is no state key, changes nothing.
  await expect(lab.stateSet(wire({ v, key: "/a" }) as never)).rejects.toThrow(UsageError);
  await expect(lab.stateSet(wire({ v, key: "no-slash", value: 1 }))).rejects.toThrow(/no-slash/);
  expect((await lab.stateGet(wire({ v, key: "/a" }))).found).toBe(false);
});

test("a store labtest does not write is refused with what to do instead", async () => {
  const { lab } = await laboratory({ provider: "aws", service: "s3", options: { bucket: "b" } });
  await expect(lab.stateSet(wire({ v, key: "/a", value: 1 }))).rejects.toThrow(
    /labtest cannot write aws\/s3 state[\s\S]*write it with the store's own tools/,
  );
});
