import { chmod, mkdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isWritable, openState } from "../../src/state/index.js";
import { runCli } from "../support/cli.js";
import { scratchDir } from "../support/project.js";

const mode = async (path: string) => (await stat(path)).mode & 0o777;

/** A state.json in `dir` naming a local store at `path` (relative to dir). */
async function stateJson(dir: string, service: "file" | "directory", path: string): Promise<string> {
  const file = join(dir, "state.json");
  await writeFile(file, JSON.stringify({ provider: "local", service, options: { path } }));
  return file;
}

// State holds administrator URLs with passwords (/services/external/<kind>/<app>): an app running
// as an account of its own must not be able to read it.
describe("state files are the laboratory's account's only", () => {
  it("a value set on a file or directory store is written 0600, in directories 0700", async () => {
    const dir = await scratchDir();
    await mkdir(join(dir, "tree"));
    for (const [service, path] of [
      ["file", "values.json"],
      ["directory", "tree"],
    ] as const) {
      const { store } = await openState({ statePath: await stateJson(dir, service, path), env: {} });
      if (!isWritable(store)) throw new Error(`${service} store must be writable`);
      await store.write("/services/external/postgresql/default", { url: "postgresql://admin:pw@db" });
    }
    expect(await mode(join(dir, "values.json"))).toBe(0o600);
    expect(await mode(join(dir, "tree", "services", "external"))).toBe(0o700);
    expect(await mode(join(dir, "tree", "services", "external", "postgresql", "default"))).toBe(0o600);
  });

  describe.runIf(process.getuid?.() === 0)("as root, where apps run as accounts of their own", () => {
    it("state.json and the store inside the home are tightened; one outside it is warned about", async () => {
      const home = await scratchDir();
      await stateJson(home, "directory", "state");
      const value = join(home, "state", "services", "external", "postgresql", "default");
      await mkdir(join(value, ".."), { recursive: true, mode: 0o755 });
      await writeFile(value, '{"url":"postgresql://admin:pw@db"}', { mode: 0o644 });
      await chmod(join(home, "state.json"), 0o644);

      const inside = await openState({ env: { LABTEST_HOME: home } });
      expect(inside.warnings).toEqual([]);
      expect(await mode(join(home, "state.json"))).toBe(0o600);
      expect(await mode(join(home, "state"))).toBe(0o700);
      expect(await mode(join(home, "state", "services", "external"))).toBe(0o700);
      expect(await mode(value)).toBe(0o600);

      const elsewhere = await scratchDir();
      const outsideFile = await stateJson(elsewhere, "file", "values.json");
      await writeFile(join(elsewhere, "values.json"), "{}", { mode: 0o644 });
      await chmod(outsideFile, 0o640);
      const outside = await openState({ statePath: outsideFile, env: { LABTEST_HOME: home } });
      // Files outside the home may be shared with other tools: said, not changed.
      expect(await mode(join(elsewhere, "values.json"))).toBe(0o644);
      expect(outside.warnings).toEqual([
        expect.stringMatching(
          new RegExp(
            `^${join(elsewhere, "values.json")} is readable by every account \\(0644\\).*chmod o-rwx`,
          ),
        ),
      ]);
      const check = await runCli(["--state", outsideFile, "state", "check"], elsewhere, {
        ...process.env,
        LABTEST_HOME: home,
      });
      expect(check).toMatchObject({ code: 0, stderr: `labtest: warning: ${outside.warnings[0]}\n` });
    });

    it("the S3 store's copies of values in the home (its cache, LabTest's mirror that aws s3 sync fills) are tightened", async () => {
      const home = await scratchDir();
      await writeFile(
        join(home, "state.json"),
        JSON.stringify({ provider: "aws", service: "s3", options: { bucket: "state", cache: true } }),
        { mode: 0o600 },
      );
      const synced = join(home, "cache", "state-s3-mirror", "services", "external", "postgresql", "default");
      await mkdir(join(synced, ".."), { recursive: true, mode: 0o755 });
      await writeFile(synced, '{"url":"postgresql://admin:pw@db"}', { mode: 0o644 });

      expect((await openState({ env: { LABTEST_HOME: home } })).warnings).toEqual([]);
      expect(await mode(synced)).toBe(0o600);
      expect(await mode(join(home, "cache", "state-s3-mirror"))).toBe(0o700);
    });
  });
});
