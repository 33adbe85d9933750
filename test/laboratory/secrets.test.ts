import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect, onTestFinished, test } from "vitest";
import { EmbeddedLaboratory, PROTOCOL_VERSION as v } from "../../src/laboratory/index.js";
import { SECRETS_KEY, SecretError, Secrets } from "../../src/secrets/index.js";
import { openState } from "../../src/state/index.js";
import { scratchDir } from "../support/project.js";

/** What crosses a wire: only what JSON carries arrives. */
const wire = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

test("a client encrypts with what the laboratory sends, and only the laboratory reveals it", async () => {
  const home = await scratchDir("labtest-lab-");
  const statePath = join(home, "state.json");
  await writeFile(
    statePath,
    JSON.stringify({ provider: "local", service: "file", options: { path: "values.json" } }),
  );
  await writeFile(join(home, "values.json"), "{}");
  const laboratory = new EmbeddedLaboratory({
    env: { ...process.env, LABTEST_HOME: home },
    cwd: home,
    statePath,
  });
  onTestFinished(() => laboratory.close());

  // Before the administrator puts /secrets in state, the client is told how to get it there.
  await expect(laboratory.secretsRecipients(wire({ v }))).rejects.toThrow(SecretError);

  const initialised = wire(await laboratory.secretsInit(wire({ v })));
  expect(initialised.created).toBe(true);
  expect(initialised.state[SECRETS_KEY]).toEqual({
    provider: "local",
    service: "age",
    options: { recipients: [initialised.recipient] },
  });
  expect(wire(await laboratory.secretsInit(wire({ v })))).toMatchObject({
    recipient: initialised.recipient,
    created: false,
  });
  await writeFile(join(home, "values.json"), JSON.stringify(initialised.state));

  // A laptop with a labtest home of its own and no identity: it encrypts, it cannot decrypt.
  const config = wire(await laboratory.secretsRecipients(wire({ v })));
  const laptop = new Secrets({ config, home: await scratchDir("labtest-laptop-") });
  const encrypted = await laptop.encryptAssignment("API_TOKEN=tok-3f9a1c77e2");
  expect(encrypted).toMatch(/^API_TOKEN=ENC\[[A-Za-z0-9+/=]+\]$/);
  const value = encrypted.slice("API_TOKEN=".length);
  await expect(laptop.reveal({ API_TOKEN: value }, (key) => key)).rejects.toThrow(/no age identity/);

  const state = await openState({ env: {}, cwd: home, statePath });
  onTestFinished(() => state.store.close());
  const atLaboratory = new Secrets({ state: state.store, home });
  expect(await atLaboratory.reveal({ API_TOKEN: value }, (key) => key)).toEqual({
    API_TOKEN: "tok-3f9a1c77e2",
  });
});

test("what a client was sent is checked before it encrypts with it", async () => {
  const laptop = new Secrets({
    config: { provider: "local", service: "age", options: { recipients: [] } },
    home: await scratchDir("labtest-laptop-"),
  });
  await expect(laptop.encrypt("a value long enough")).rejects.toThrow(
    /state \/secrets does not name a secret provider/,
  );
});
